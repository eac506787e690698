#!/usr/bin/env python3
"""A long recording of speech with no pause in it, from the public set, for the WER and speed
rows of docs/BENCHMARKS.md ("Every word kept"): each public clip cut to its speech by sox
(`silence 1 0.01 1% reverse silence 1 0.01 1% reverse`), then eight rounds of all twelve back
to back, each round in another order (rotated by five, every other one reversed), 268 s in all:
the recording `tests/speech.rs` builds for `a_long_recording_without_a_pause_keeps_every_word_once`.

    python3 scripts/eval/make-long.py EVAL_DIR OUT_DIR [STEP]

STEP (default 5) is how far each round's order is rotated: other steps give recordings in other
orders, which no setting of the long path was chosen on (the held-aside rows of the table).

Writes OUT_DIR/cut/NAME.wav (each clip cut to its speech), OUT_DIR/long.wav (16 kHz mono,
16-bit) and OUT_DIR/long.txt (the reference text, the clips' texts in the order played).
Needs sox and numpy.
"""

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

ROUNDS = 8


def read(path):
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16_000 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    eval_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    step = int(sys.argv[3]) if len(sys.argv) == 4 else 5
    clips = json.loads((eval_dir / "manifest.json").read_text())["speech"]
    (out / "cut").mkdir(parents=True, exist_ok=True)
    cut = []
    for c in clips:
        src = eval_dir / c["file"]
        dst = out / "cut" / src.name
        subprocess.run(["sox", str(src), str(dst), "silence", "1", "0.01", "1%", "reverse",
                        "silence", "1", "0.01", "1%", "reverse"], check=True)
        cut.append(read(dst))
    samples, reference = [], []
    for r in range(ROUNDS):
        order = [(i + step * r) % len(clips) for i in range(len(clips))]
        if r % 2 == 1:
            order.reverse()
        for i in order:
            samples.append(cut[i])
            reference.append(clips[i]["text"])
    audio = np.concatenate(samples)
    with wave.open(str(out / "long.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(audio.tobytes())
    (out / "long.txt").write_text(" ".join(reference) + "\n")
    print(f"{out / 'long.wav'}: {len(audio) / 16_000:.1f} s")


if __name__ == "__main__":
    main()
