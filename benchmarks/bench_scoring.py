"""Scoring speed: nnprune's streaming `nuclear`, `hrank` and `chip` against a per-channel way.

ResNet-56 (by default; `--arch`, `--width`), random init, eval mode, BatchNorm running statistics
at their initial values, scores all 55 prunable convs on synthetic 3x32x32 images (seeded
standard-normal tensors) in batches of 128. The measured path is
`nnprune.pruning.scoring.score_model`. The reference runs the same forward passes, keeps each
batch's feature maps, loops over layers and channels, and calls
`torch.linalg.svdvals` on each channel's [batch, H, W] stack of maps (`nuclear`), or
`torch.linalg.matrix_rank` on every single map (`hrank`, HRank's way: so slow that it gets fewer
images, `--hrank-images`), or, per channel c, `torch.linalg.svdvals` in float64 of every image's
C x (H*W) matrix of ReLU maps with row c zeroed, beside one of the whole matrix (`chip`, on
`--chip-images`). Both time the forward passes too. With `chip`, a last line times chip against
nuclear, both by nnprune, on the same model and the same `--chip-images` images.

    python benchmarks/bench_scoring.py                 # 1,280 images nuclear, 64 images hrank
    python benchmarks/bench_scoring.py --images 256 --hrank-images 16   # a quick look
    python benchmarks/bench_scoring.py --criteria nuclear chip          # chip's cost against nuclear
    python benchmarks/bench_scoring.py --criteria chip --arch resnet20 --width 0.5
"""
from __future__ import annotations

import argparse

import torch

from _common import add_device_options, device_of, machine, report, synchronize, timed
from nnprune.models import build
from nnprune.pruning.layout import model_layout
from nnprune.pruning.scoring import feature_modules, score_model

INPUT_SHAPE = (3, 32, 32)
# chip's reference makes C + 1 SVDs of each image's C x (H*W) matrix per layer: fewer images.
CHIP_IMAGES = 128
RELATIVE_FLOOR = {"chip": 1.0}    # see compare
# criterion -> the option that sets its number of images
CRITERION_IMAGES = {"nuclear": "images", "hrank": "hrank_images", "chip": "chip_images"}


def synthetic_batches(images: int, batch_size: int, device: torch.device, seed: int = 0):
    """Seeded standard-normal images with zero labels, as a list of (inputs, labels)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(images, *INPUT_SHAPE, generator=generator).to(device)
    labels = torch.zeros(images, dtype=torch.long, device=device)
    return [(inputs[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, images, batch_size)]


def chip_reference_sum(maps: torch.Tensor) -> torch.Tensor:
    """Sum over the batch's images of CHIP's CI_c, one batched svdvals call per channel: each
    image's C x (H*W) matrix of ReLU maps with row c zeroed, against the whole matrix. In float64,
    since CI_c is a small difference of two large norms. [B,C,H,W] -> [C] (float64)."""
    rows = torch.relu(maps).flatten(2).double()                              # B, C, HW
    full = torch.linalg.svdvals(rows).sum(dim=-1)                            # B
    total = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    for channel in range(rows.shape[1]):
        without = rows.clone()
        without[:, channel] = 0.0
        total[channel] = (full - torch.linalg.svdvals(without).sum(dim=-1)).sum()
    return total


def reference_scores(model: torch.nn.Module, layers: list[str], batches, criterion: str) -> dict:
    """The per-channel way: keep each batch's maps, then one linalg call per channel (nuclear:
    svdvals of the channel's [batch, H, W] maps; chip: `chip_reference_sum`) or per map (hrank:
    matrix_rank)."""
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
                    if criterion == "chip":
                        total += chip_reference_sum(maps)
                        continue
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


def max_relative_difference(measured: dict, reference: dict, floor: float = 0.0) -> float:
    """Largest |measured - reference| / |reference| over all channels of all layers, |reference|
    taken as at least `floor` times the layer's largest |reference| score."""
    worst = 0.0
    for layer, expected in reference.items():
        got = measured[layer].double()
        expected = expected.double()
        scale = expected.abs().clamp(min=max(1e-12, floor * float(expected.abs().max())))
        worst = max(worst, float(((got - expected).abs() / scale).max()))
    return worst


def warm_up(model, layers, criterion: str, batches) -> None:
    """One small pass of nnprune's path, so one-time costs (allocator, kernels) fall outside."""
    score_model(model, layers, criterion, batches=batches[:1], limit=min(8, batches[0][0].shape[0]))


def compare(model, layers, criterion: str, images: int, batch_size: int, device: torch.device,
            target: float, tolerance: float) -> bool:
    batches = synthetic_batches(images, batch_size, device)
    warm_up(model, layers, criterion, batches)
    reference_scores(model, layers, [(batches[0][0][:2], batches[0][1][:2])], criterion)
    fast_seconds, (fast, used) = timed(
        lambda: score_model(model, layers, criterion, batches=batches, limit=images), device)
    reference_seconds, reference = timed(lambda: reference_scores(model, layers, batches, criterion),
                                         device)
    # chip's CI_c is a difference of two nuclear norms up to ~1e5 times larger (a dead or duplicated
    # channel's is ~0), and nnprune's Gram path keeps it to ~1e-8 of the layer's largest score (the
    # rounding of float32 scores is ~6e-8): its differences are taken relative to that largest score.
    floor = RELATIVE_FLOOR.get(criterion, 0.0)
    difference = max_relative_difference(fast, reference, floor)
    ok = report(f"{criterion} scoring, {len(layers)} layers, {used} images",
                f"{fast_seconds:.2f} s ({used / fast_seconds:.0f} images/s)",
                f"{reference_seconds:.2f} s ({used / reference_seconds:.0f} images/s)",
                reference_seconds / fast_seconds, target)
    agree = difference <= tolerance
    measure = "max difference / the layer's largest score" if floor else "max relative difference"
    print(f"{criterion} agreement: {measure} {difference:.2e} "
          f"(tolerance {tolerance:g}) {'PASS' if agree else 'MISS'}", flush=True)
    return ok and agree


def chip_against_nuclear(model, layers, images: int, batch_size: int, device: torch.device) -> None:
    """Print chip's scoring time against nuclear's, both by nnprune, on the same images."""
    batches = synthetic_batches(images, batch_size, device)
    seconds = {}
    for criterion in ("nuclear", "chip"):
        warm_up(model, layers, criterion, batches)
        seconds[criterion], _ = timed(
            lambda name=criterion: score_model(model, layers, name, batches=batches, limit=images), device)
    print(f"chip against nuclear, {len(layers)} layers, {images} images: chip {seconds['chip']:.2f} s "
          f"({images / seconds['chip']:.0f} images/s) | nuclear {seconds['nuclear']:.2f} s "
          f"({images / seconds['nuclear']:.0f} images/s) | chip costs {seconds['chip'] / seconds['nuclear']:.2f}x "
          "nuclear", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1280, help="images for nuclear (default 1280)")
    parser.add_argument("--hrank-images", type=int, default=64,
                        help="images for hrank; its per-map reference is slow (default 64)")
    parser.add_argument("--chip-images", type=int, default=CHIP_IMAGES,
                        help=f"images for chip and for its cost against nuclear; its per-channel reference "
                             f"is slow (default {CHIP_IMAGES})")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--criteria", nargs="+", default=["nuclear", "hrank"],
                        help="nuclear, hrank and/or chip, separated by spaces or commas (default nuclear hrank)")
    parser.add_argument("--arch", default="resnet56", help="architecture (default resnet56)")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default 1)")
    add_device_options(parser)
    parser.add_argument("--target", type=float, default=3.0, help="required speed-up (default 3)")
    args = parser.parse_args()
    criteria = [c for entry in args.criteria for c in entry.split(",") if c]
    unknown = sorted(set(criteria) - set(CRITERION_IMAGES))
    if unknown:
        parser.error(f"--criteria: {', '.join(unknown)} not benchmarked here; use {', '.join(CRITERION_IMAGES)}")
    device = device_of(args)
    torch.manual_seed(0)
    model = build(args.arch, width=args.width).to(device).eval()
    layers = model_layout(model, INPUT_SHAPE).layers
    print(machine(device))
    print(f"{args.arch} width {args.width:g}, random init (seed 0), {len(layers)} prunable convs; synthetic "
          f"N(0,1) images; batch {args.batch_size}")
    synchronize(device)
    results = []
    for criterion in criteria:
        images = getattr(args, CRITERION_IMAGES[criterion])
        results.append(compare(model, layers, criterion, images, args.batch_size, device,
                               args.target, 1e-4))
    if "chip" in criteria:
        chip_against_nuclear(model, layers, args.chip_images, args.batch_size, device)
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
