"""A Python Whisper peer on the same model files, for benches/transcribe.rs.

usage: whisper_peer_bench.py faster-whisper CT2_DIR THREADS float32|int8 WAV...
       whisper_peer_bench.py pywhispercpp GGML_FILE THREADS full|cut WAV...
prints {"wall", "audio", "texts", "peak_rss"} as JSON. Greedy (beam 1, and one sample per
temperature when a segment falls back, as crossmodal decodes), language "en", warm
model (one warm-up clip), decoding excluded; faster-whisper without its VAD filter, in the
compute type asked for (int8 is its fastest on a CPU); pywhispercpp with whisper.cpp's full 30 s
window, or ("cut") with `audio_ctx` set as crossmodal sets it: the clip plus 10 s, rounded up
to 64 frames.
"""
import json, math, resource, sys, time, wave

import numpy as np

backend, model_path, threads, setting, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]

if backend == "faster-whisper":
    from faster_whisper import WhisperModel

    model = WhisperModel(model_path, device="cpu", compute_type=setting, cpu_threads=threads)

    def run(samples):
        segments, _ = model.transcribe(samples, beam_size=1, best_of=1, language="en",
                                     vad_filter=False)
        return " ".join(s.text.strip() for s in segments)
elif backend == "pywhispercpp":
    from pywhispercpp.model import Model

    model = Model(model_path, n_threads=threads, print_progress=False, print_realtime=False,
                  redirect_whispercpp_logs_to=None)

    def audio_ctx(samples):
        if setting != "cut":
            return 0
        frames = math.ceil((len(samples) / 16000.0 + 10.0) * 50)
        return min(1500, -(-frames // 64) * 64)

    def run(samples):
        segments = model.transcribe(samples, language="en", audio_ctx=audio_ctx(samples),
                                    greedy={"best_of": 1})
        return " ".join(s.text.strip() for s in segments)
else:
    sys.exit(f"unknown backend {backend}: faster-whisper or pywhispercpp")


def load(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


clips = [load(f) for f in files]
run(clips[0])
start = time.perf_counter()
texts = [run(c) for c in clips]
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall": wall, "audio": sum(len(c) for c in clips) / 16000.0, "texts": texts, "peak_rss": peak}))
