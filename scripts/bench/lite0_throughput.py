#!/usr/bin/env python3
"""PyTorch's throughput for EfficientNet-Lite0 on this CPU, for benches/images.rs.

Usage: lite0_throughput.py WEIGHTS.pth THREADS IMAGE... -> prints
"images_per_second N forward_only M".
The same network as scripts/fixtures/lite0_reference.py (torch.nn.functional layers), given its
best settings on a CPU, as crossmodal runs it: BatchNorm folded into the convolutions' weights
and biases, inference mode, and Pillow's own resize (its antialiased bilinear filter, in C)
instead of the reference's matrices. Timed as the Rust side is: decode + preprocess + forward,
batches of 8; then the forward pass alone over the same batches.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from lite0_reference import STAGES, same_pad  # noqa: E402


def preprocess(path: str) -> torch.Tensor:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    nw, nh = (256, max(256 * h // w, 256)) if w <= h else (max(256 * w // h, 256), 256)
    img = img.resize((nw, nh), Image.BILINEAR)
    top, left = (nh - 224) // 2, (nw - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def fold(sd):
    """Each convolution with its BatchNorm folded in: (weight, bias)."""
    def conv_bn(conv, bn):
        w = sd[f"{conv}.weight"]
        scale = sd[f"{bn}.weight"] / torch.sqrt(sd[f"{bn}.running_var"] + 1e-3)
        return ((w * scale[:, None, None, None]).contiguous(),
                (sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale).contiguous())

    layers = {"stem": conv_bn("_conv_stem", "_bn0"), "head": conv_bn("_conv_head", "_bn1")}
    i = 0
    for repeats, *_ in STAGES:
        for _ in range(repeats):
            p = f"_blocks.{i}"
            if f"{p}._expand_conv.weight" in sd:
                layers[f"{i}.expand"] = conv_bn(f"{p}._expand_conv", f"{p}._bn0")
            layers[f"{i}.depthwise"] = conv_bn(f"{p}._depthwise_conv", f"{p}._bn1")
            layers[f"{i}.project"] = conv_bn(f"{p}._project_conv", f"{p}._bn2")
            i += 1
    layers["fc"] = (sd["_fc.weight"], sd["_fc.bias"])
    return layers


def forward(layers, x):
    def conv(x, name, stride, groups=1):
        w, b = layers[name]
        if w.shape[-1] > 1:
            x = same_pad(x, w.shape[-1], stride)
        return F.conv2d(x, w, b, stride=stride, groups=groups)

    x = F.relu6(conv(x, "stem", 2))
    i = 0
    for repeats, _k, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            s, inp = (stride, cin) if r == 0 else (1, cout)
            y = x
            if expand != 1:
                y = F.relu6(conv(y, f"{i}.expand", 1))
            y = F.relu6(conv(y, f"{i}.depthwise", s, groups=y.shape[1]))
            y = conv(y, f"{i}.project", 1)
            x = x + y if (s == 1 and inp == cout) else y
            i += 1
    x = F.relu6(conv(x, "head", 1))
    return F.linear(x.mean(dim=(2, 3)), *layers["fc"])


def main() -> None:
    weights, threads, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    torch.set_num_threads(threads)
    sd = {k: v.float() for k, v in torch.load(weights, map_location="cpu", weights_only=False).items()}
    layers = fold(sd)
    with torch.inference_mode():
        forward(layers, preprocess(paths[0])[None])  # warm-up
        start = time.perf_counter()
        batches = []
        for i in range(0, len(paths), 8):
            batch = torch.stack([preprocess(p) for p in paths[i:i + 8]])
            forward(layers, batch)
            batches.append(batch)
        total = time.perf_counter() - start
        start = time.perf_counter()
        for batch in batches:
            forward(layers, batch)
        forward_only = time.perf_counter() - start
    print(f"images_per_second {len(paths) / total:.2f} forward_only {len(paths) / forward_only:.2f}")


if __name__ == "__main__":
    main()
