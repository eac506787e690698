"""pywhispercpp (PyPI; whisper.cpp behind Python) on the same ggml file, for benches/transcribe.rs.

usage: pywhispercpp_bench.py GGML_FILE THREADS WAV... ; prints {"wall", "audio", "texts",
"peak_rss"} as JSON. Greedy, language "en", warm model (one warm-up clip), decoding excluded.
"""
import json, resource, sys, time, wave

import numpy as np
from pywhispercpp.model import Model

ggml, threads, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
model = Model(ggml, n_threads=threads, print_progress=False, print_realtime=False, redirect_whispercpp_logs_to=None)

def load(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0

clips = [load(f) for f in files]
def run(samples):
    segments = model.transcribe(samples, language="en")
    return " ".join(s.text.strip() for s in segments)

run(clips[0])
start = time.perf_counter()
texts = [run(c) for c in clips]
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall": wall, "audio": sum(len(c) for c in clips) / 16000.0, "texts": texts, "peak_rss": peak}))
