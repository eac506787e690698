#!/usr/bin/env python3
"""The public speech set in noise: every clip mixed with pink noise and with babble made of
*other* public recordings, at 10 dB and 5 dB SNR, deterministically (fixed seed).

    python3 scripts/eval/make-noisy.py EVAL_DIR [OUT_DIR]

EVAL_DIR is the evaluation set (its manifest.json and speech/); OUT_DIR defaults to
EVAL_DIR/noisy. Writes OUT_DIR/{pink,babble}-{10,5}dB/NAME.wav (16 kHz mono, 16-bit) and
OUT_DIR/manifest.json listing each noisy clip with its source's kind and text.

SNR is measured on the speech's active samples: the 30 ms frames of the clean clip within
35 dB of its loudest frame. Babble for a clip is the sum of four other clips of the set
(never the clip itself), each starting at a random offset and looped to the clip's length,
normalised to equal loudness before summing. Needs numpy.
"""

import json
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 16_000
FRAME = 480  # 30 ms
SEED = 20261130
LEVELS_DB = (10, 5)
BABBLE_TALKERS = 4


def read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: expected 16 kHz mono 16-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float64) / 32768.0


def write(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = np.max(np.abs(samples))
    if peak > 0.99:  # keep the mix unclipped; the SNR does not change with the scale
        samples = samples * (0.99 / peak)
    pcm = np.round(samples * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def active_power(samples: np.ndarray) -> float:
    """Mean power of the frames within 35 dB of the loudest one."""
    n = len(samples) // FRAME
    frames = samples[: n * FRAME].reshape(n, FRAME)
    power = np.mean(frames**2, axis=1)
    active = power[power >= power.max() * 10 ** (-35 / 10)]
    return float(np.mean(active))


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise: white noise shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return noise / np.sqrt(np.mean(noise**2))


def babble(n: int, others: list, rng: np.random.Generator) -> np.ndarray:
    picked = rng.choice(len(others), size=min(BABBLE_TALKERS, len(others)), replace=False)
    mix = np.zeros(n)
    for i in picked:
        talker = others[i] / np.sqrt(active_power(others[i]))
        start = int(rng.integers(0, len(talker)))
        looped = np.tile(np.roll(talker, -start), n // len(talker) + 1)[:n]
        mix += looped
    return mix / np.sqrt(np.mean(mix**2))


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    eval_dir = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else eval_dir / "noisy"
    manifest = json.loads((eval_dir / "manifest.json").read_text())
    clips = manifest["speech"]
    audio = {c["file"]: read(eval_dir / c["file"]) for c in clips}
    rng = np.random.default_rng(SEED)
    listed = []
    for clip in clips:
        speech = audio[clip["file"]]
        others = [a for f, a in audio.items() if f != clip["file"]]
        target = active_power(speech)
        for kind in ("pink", "babble"):
            noise = pink(len(speech), rng) if kind == "pink" else babble(len(speech), others, rng)
            for snr in LEVELS_DB:
                scaled = noise * np.sqrt(target / 10 ** (snr / 10))
                name = f"{kind}-{snr}dB/{Path(clip['file']).name}"
                write(out / name, speech + scaled)
                listed.append({"file": name, "source": clip["file"], "noise": kind, "snr_db": snr,
                               "kind": clip["kind"], "text": clip["text"]})
    (out / "manifest.json").write_text(json.dumps({"seed": SEED, "speech": listed}, indent=1) + "\n")
    print(f"{len(listed)} noisy clips in {out}")


if __name__ == "__main__":
    main()
