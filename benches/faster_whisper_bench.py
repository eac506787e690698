"""faster-whisper on the same CTranslate2 weights, for benches/transcribe.rs.

usage: faster_whisper_bench.py CT2_DIR THREADS WAV... ; prints {"wall", "audio", "texts", "peak_rss"} as JSON.
Greedy (beam 1), float32, no VAD filter, warm model (one warm-up clip), decoding excluded.
"""
import json, resource, sys, time, wave

import numpy as np
from faster_whisper import WhisperModel

ct2_dir, threads, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
model = WhisperModel(ct2_dir, device="cpu", compute_type="float32", cpu_threads=threads)

def load(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0

clips = [load(f) for f in files]
def run(samples):
    segments, _ = model.transcribe(samples, beam_size=1, language="en", vad_filter=False)
    return " ".join(s.text.strip() for s in segments)

run(clips[0])
start = time.perf_counter()
texts = [run(c) for c in clips]
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall": wall, "audio": sum(len(c) for c in clips) / 16000.0, "texts": texts, "peak_rss": peak}))
