"""Scoring speed: nnprune's streaming `nuclear` and `hrank` against the authors' per-map way.

ResNet-56 (random init, eval mode; BatchNorm running statistics at their initial values) scores
all 55 prunable convs on synthetic 3x32x32 images (seeded standard-normal tensors) in batches
of 128. The measured path is `nnprune.pruning.scoring.score_model`. The reference runs the same forward
passes, keeps each batch's feature maps, loops over layers and channels, and calls
`torch.linalg.svdvals` on each channel's [batch, H, W] stack of maps (`nuclear`), or
`torch.linalg.matrix_rank` on every single map (`hrank`, HRank's way: so slow that it gets fewer
images, `--hrank-images`). Both time the forward passes too.

    python benchmarks/bench_scoring.py                 # 1,280 images nuclear, 64 images hrank
    python benchmarks/bench_scoring.py --images 256 --hrank-images 16   # a quick look
"""
from __future__ import annotations

import argparse

import torch

from _common import add_device_options, device_of, machine, report, synchronize, timed
from nnprune.models import build
from nnprune.pruning.layout import model_layout
from nnprune.pruning.scoring import feature_modules, score_model

INPUT_SHAPE = (3, 32, 32)


def synthetic_batches(images: int, batch_size: int, device: torch.device, seed: int = 0):
    """Seeded standard-normal images with zero labels, as a list of (inputs, labels)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(images, *INPUT_SHAPE, generator=generator).to(device)
    labels = torch.zeros(images, dtype=torch.long, device=device)
    return [(inputs[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, images, batch_size)]


def reference_scores(model: torch.nn.Module, layers: list[str], batches, criterion: str) -> dict:
    """The authors' way: keep each batch's maps, then one linalg call per channel (nuclear:
    svdvals of the channel's [batch, H, W] maps) or per map (hrank: matrix_rank)."""
    modules = dict(model.named_modules())
    readers = feature_modules(model, layers, batches[0][0][:1])
    kept: dict[str, torch.Tensor] = {}

    def keep(layer):
        def hook(module, inputs, output):
            kept[layer] = output.detach()
        return hook

    handles = [modules[readers[layer]].register_forward_hook(keep(layer)) for layer in layers]
    totals: dict[str, torch.Tensor] = {}
    images = 0
    try:
        with torch.no_grad():
            for inputs, _ in batches:
                model(inputs)
                images += inputs.shape[0]
                for layer in layers:
                    maps = kept[layer]
                    total = totals.setdefault(layer, torch.zeros(maps.shape[1], dtype=torch.float64,
                                                                 device=maps.device))
                    for channel in range(maps.shape[1]):
                        if criterion == "nuclear":
                            total[channel] += torch.linalg.svdvals(maps[:, channel]).sum()
                        else:
                            relu = torch.relu(maps[:, channel])
                            for image in range(relu.shape[0]):
                                total[channel] += torch.linalg.matrix_rank(relu[image])
    finally:
        for handle in handles:
            handle.remove()
    return {layer: (total / images).float().cpu() for layer, total in totals.items()}


def max_relative_difference(measured: dict, reference: dict) -> float:
    """Largest |measured - reference| / |reference| over all channels of all layers."""
    worst = 0.0
    for layer, expected in reference.items():
        got = measured[layer].double()
        expected = expected.double()
        scale = expected.abs().clamp(min=1e-12)
        worst = max(worst, float(((got - expected).abs() / scale).max()))
    return worst


def compare(model, layers, criterion: str, images: int, batch_size: int, device: torch.device,
            target: float, tolerance: float) -> bool:
    batches = synthetic_batches(images, batch_size, device)
    # Warm-up: one small pass of each path, so one-time costs (allocator, kernels) fall outside.
    score_model(model, layers, criterion, batches=batches[:1], limit=min(8, images))
    reference_scores(model, layers, [(batches[0][0][:2], batches[0][1][:2])], criterion)
    fast_seconds, (fast, used) = timed(
        lambda: score_model(model, layers, criterion, batches=batches, limit=images), device)
    reference_seconds, reference = timed(lambda: reference_scores(model, layers, batches, criterion),
                                         device)
    difference = max_relative_difference(fast, reference)
    ok = report(f"{criterion} scoring, {len(layers)} layers, {used} images",
                f"{fast_seconds:.2f} s ({used / fast_seconds:.0f} images/s)",
                f"{reference_seconds:.2f} s ({used / reference_seconds:.0f} images/s)",
                reference_seconds / fast_seconds, target)
    agree = difference <= tolerance
    print(f"{criterion} agreement: max relative difference {difference:.2e} "
          f"(tolerance {tolerance:g}) {'PASS' if agree else 'MISS'}", flush=True)
    return ok and agree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1280, help="images for nuclear (default 1280)")
    parser.add_argument("--hrank-images", type=int, default=64,
                        help="images for hrank; its per-map reference is slow (default 64)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--criteria", default="nuclear,hrank")
    add_device_options(parser)
    parser.add_argument("--target", type=float, default=3.0, help="required speed-up (default 3)")
    args = parser.parse_args()
    device = device_of(args)
    torch.manual_seed(0)
    model = build("resnet56").to(device).eval()
    layers = model_layout(model, INPUT_SHAPE).layers
    print(machine(device))
    print(f"resnet56, random init (seed 0), {len(layers)} prunable convs; synthetic N(0,1) "
          f"images; batch {args.batch_size}")
    synchronize(device)
    results = []
    for criterion in [c for c in args.criteria.split(",") if c]:
        images = args.images if criterion == "nuclear" else args.hrank_images
        results.append(compare(model, layers, criterion, images, args.batch_size, device,
                               args.target, 1e-4))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
