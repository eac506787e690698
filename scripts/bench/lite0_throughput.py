#!/usr/bin/env python3
"""PyTorch's throughput for EfficientNet-Lite0 on this CPU, for benches/images.rs.

Usage: lite0_throughput.py WEIGHTS.pth THREADS IMAGE... -> prints "images_per_second N".
The same network as scripts/fixtures/lite0_reference.py (torch.nn.functional layers) and the
same preprocessing, timed as the Rust side is: decode + preprocess + forward, batches of 8.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from lite0_reference import forward, preprocess  # noqa: E402


def main() -> None:
    weights, threads, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(threads)
    sd = {k: v.float() for k, v in torch.load(weights, map_location="cpu", weights_only=False).items()}
    with torch.no_grad():
        forward(sd, torch.from_numpy(preprocess(paths[0]))[None])  # warm-up
        start = time.perf_counter()
        batches = []
        for i in range(0, len(paths), 8):
            batch = torch.stack([torch.from_numpy(preprocess(p)) for p in paths[i:i + 8]])
            forward(sd, batch)
            batches.append(batch)
        total = time.perf_counter() - start
        start = time.perf_counter()
        for batch in batches:
            forward(sd, batch)
        forward_only = time.perf_counter() - start
    print(f"images_per_second {len(paths) / total:.2f} forward_only {len(paths) / forward_only:.2f}")


if __name__ == "__main__":
    main()
