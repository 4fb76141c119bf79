"""Scoring memory does not grow with the number of scoring images (the streaming design).

Each measurement is a fresh subprocess (this script with --child) that builds ResNet-56 (random
init), finds its 55 prunable convs and runs `nnprune.pruning.scoring.score_features` with `nuclear` on
synthetic 3x32x32 batches of 128, made one at a time so that the inputs themselves are not held
either; it reports its own peak RSS (getrusage ru_maxrss). A child with 0 images (imports and
model only) shows the floor. Target: peak RSS at 2,560 images <= 1.10 x peak RSS at 256 images.

    python benchmarks/bench_score_memory.py [--small 256] [--large 2560]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from _common import machine, report
from nnprune.engine.device import resolve_device

INPUT_SHAPE = (3, 32, 32)


class SyntheticBatches:
    """Seeded N(0,1) batches made on the fly; iterable more than once, like nnprune's Batches."""

    def __init__(self, images: int, batch_size: int, device: torch.device):
        self.images, self.batch_size, self.device = images, batch_size, device

    def __iter__(self):
        generator = torch.Generator().manual_seed(0)
        for start in range(0, self.images, self.batch_size):
            size = min(self.batch_size, self.images - start)
            inputs = torch.randn(size, *INPUT_SHAPE, generator=generator).to(self.device)
            yield inputs, torch.zeros(size, dtype=torch.long, device=self.device)


def child(images: int, device_name: str) -> None:
    """Score (or, with 0 images, only build) and print one JSON line with the peak RSS."""
    from nnprune.models import build
    from nnprune.pruning.criteria import CRITERIA
    from nnprune.pruning.layout import model_layout
    from nnprune.pruning.scoring import score_features

    device = resolve_device(device_name)
    torch.manual_seed(0)
    model = build("resnet56").to(device).eval()
    layers = model_layout(model, INPUT_SHAPE).layers
    started = time.perf_counter()
    if images:
        score_features(model, layers, [CRITERIA["nuclear"]], SyntheticBatches(images, 128, device),
                       [images])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    print(json.dumps({"images": images, "peak_rss_mb": peak_mb,
                      "seconds": time.perf_counter() - started}))


def measure(images: int, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(images), "--device", device],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=256)
    parser.add_argument("--large", type=int, default=2560)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=1.10, help="allowed growth (default 1.10)")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.device)
        return 0
    print(machine(resolve_device(args.device)))
    runs = {n: measure(n, args.device) for n in (0, args.small, args.large)}
    for n, run in runs.items():
        print(f"nuclear on resnet56, {n:>5} images: peak RSS {run['peak_rss_mb']:.0f} MB "
              f"(scoring {run['seconds']:.1f} s)")
    small, large = runs[args.small]["peak_rss_mb"], runs[args.large]["peak_rss_mb"]
    # The figure is the growth; the check is "growth <= limit", reported as limit / growth >= 1.
    ok = report(f"peak RSS growth from {args.small} to {args.large} images",
                f"{large:.0f} MB", f"{small:.0f} MB (growth {large / small:.3f}x, limit "
                f"{args.limit:.2f}x)", args.limit / (large / small), 1.0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
