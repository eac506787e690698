#!/usr/bin/env python3
"""The long recording beside faster-whisper, side by side in one run, for the speed and WER rows
of docs/BENCHMARKS.md ("Every word kept"): the same file, the same tiny.en weights (ggml for
crossmodal, CTranslate2 for faster-whisper), the same threads, greedy, language en.

    python3 scripts/eval/long-bench.py CROSSMODAL_BIN CT2_DIR LONG_WAV REFERENCE_TXT [ROUNDS] [THREADS]

Each round runs crossmodal's `transcribe --format json` (its wall time counts the whole process:
start, model load and the voice detector included), then faster-whisper int8 and float32 through
benches/whisper_peer_bench.py (a warm model: load and a warm-up pass are not counted, its best
case). Rounds alternate the programs so that a busy moment of the machine falls on both. Prints
each run, then the best wall time per program, its speed against real time, the WER (normalised
as src/speech/wer.rs does) and the longest runs of reference words lost and of words added.
"""

import json
import os
import re
import subprocess
import sys
import time
import wave
from pathlib import Path

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    for scale, word in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= scale:
            rest = "" if n % scale == 0 else " " + number_words(n % scale)
            return number_words(n // scale) + " " + word + rest
    raise AssertionError(n)


def normalise(text):
    """src/speech/wer.rs `normalise`: lower case, punctuation out, numbers spelled, mr → mister."""
    cleaned = "".join(c if c.isalnum() or c == "'" else " " for c in text.lower())
    words = []
    for w in cleaned.split():
        w = w.strip("'")
        if not w:
            continue
        if w.isdigit():
            words.extend(number_words(int(w)).split())
        elif w == "mr":
            words.append("mister")
        else:
            words.append(w.replace("'", ""))
    return words


def score(reference, hypothesis):
    """(errors, reference words, longest run of reference words lost, longest run added)."""
    r, h = normalise(reference), normalise(hypothesis)
    d = [[0] * (len(h) + 1) for _ in range(len(r) + 1)]
    for i in range(len(r) + 1):
        d[i][0] = i
    for j in range(len(h) + 1):
        d[0][j] = j
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            d[i][j] = min(d[i - 1][j - 1] + (r[i - 1] != h[j - 1]), d[i - 1][j] + 1, d[i][j - 1] + 1)
    i, j, ops = len(r), len(h), []
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (r[i - 1] != h[j - 1]):
            ops.append("=" if r[i - 1] == h[j - 1] else "S")
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            ops.append("D")
            i -= 1
        else:
            ops.append("I")
            j -= 1
    ops = "".join(reversed(ops))
    lost = max((len(x) for x in re.findall(r"[SD]+", ops)), default=0)
    added = max((len(x) for x in re.findall(r"I+", ops)), default=0)
    return d[len(r)][len(h)], len(r), lost, added


def ours(binary, wav, threads):
    env = dict(os.environ)
    start = time.perf_counter()
    out = subprocess.run([binary, "transcribe", "--format", "json", "--threads", str(threads), wav],
                         check=True, capture_output=True, text=True, env=env).stdout
    return time.perf_counter() - start, json.loads(out.splitlines()[0])["text"]


def peer(ct2, wav, threads, compute):
    bench = Path(__file__).resolve().parents[2] / "benches" / "whisper_peer_bench.py"
    out = subprocess.run([sys.executable, str(bench), "faster-whisper", ct2, str(threads), compute, wav],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return r["wall"], r["texts"][0]


def main():
    if len(sys.argv) not in (5, 6, 7):
        sys.exit(__doc__)
    binary, ct2, wav, ref_path = sys.argv[1:5]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    threads = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    reference = Path(ref_path).read_text()
    with wave.open(wav) as w:
        secs = w.getnframes() / w.getframerate()
    runs = {
        "crossmodal": lambda: ours(binary, wav, threads),
        "faster-whisper int8": lambda: peer(ct2, wav, threads, "int8"),
        "faster-whisper float32": lambda: peer(ct2, wav, threads, "float32"),
    }
    best = {}
    for r in range(rounds):
        names = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in names:
            wall, text = runs[name]()
            errors, words, lost, added = score(reference, text)
            print(f"round {r + 1} {name}: {wall:.2f} s, WER {errors / words * 100:.2f} % "
                  f"({errors} of {words}), longest lost {lost}, added {added}", flush=True)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, errors, words, lost, added)
    print(f"\n{wav}: {secs:.1f} s of audio, {threads} threads, best of {rounds}\n")
    print("| program | wall (best) | × real time | WER | longest run lost / added |")
    print("|---|---|---|---|---|")
    for name, (wall, errors, words, lost, added) in best.items():
        print(f"| {name} | {wall:.2f} s | {wall / secs:.3f} | {errors / words * 100:.2f} % "
              f"({errors} of {words}) | {lost} / {added} |")


if __name__ == "__main__":
    main()
