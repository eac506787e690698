#!/usr/bin/env python3
"""NumPy's brute-force top-10 over random unit vectors, for benches/images.rs.

Usage: search_numpy.py N... -> prints {"N": median_ms, ...} as JSON. The same measurement as the
Rust side: 384-d float32 unit vectors, 20 queries, median; one matrix-vector product (BLAS)
and a partial sort for the top 10.
"""
import json
import sys
import time

import numpy as np


def main() -> None:
    rng = np.random.default_rng(0)
    result = {}
    for n in map(int, sys.argv[1:]):
        data = rng.random((n, 384), dtype=np.float32) - 0.5
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        times = []
        for _ in range(20):
            q = rng.random(384, dtype=np.float32) - 0.5
            q /= np.linalg.norm(q)
            start = time.perf_counter()
            scores = data @ q
            top = np.argpartition(-scores, 10)[:10]
            top = top[np.argsort(-scores[top])]
            times.append(time.perf_counter() - start)
        times.sort()
        result[str(n)] = times[10] * 1e3
        del data
    print(json.dumps(result))


if __name__ == "__main__":
    main()
