"""Real speed-up of physically pruned models: latency and throughput, beside the MACs ratio.

ResNet-56 (random init, seed 0; CIFAR input 3x32x32) is pruned by each `--schemes` entry, ranking
channels by `l1` (the speed-up depends on how many channels go, not on which), through the
project's path: `parse_scheme`, `allocate` (with `build_macs_model` for macs:), `apply_removal`.
The default schemes pair `macs:0.5` and `preset:hrank` with their `:round_to=8` forms, which keep
every group at a multiple of 8 channels (what tensor cores and vectorised CPU kernels want).

Timing is `nnprune.engine.metrics.measure_speed`: on the CPU the median wall time of `--repeats` passes
after warm-up; on CUDA the forward under float16 autocast, captured as a CUDA graph (no launch
overhead) and timed with CUDA events. It is taken at batch 1 and at a batch that fills the
device (64 on the CPU, 1024 on CUDA by default), with throughput (images/s) beside latency.
The models are timed round-robin, `--rounds` times, and each keeps its fastest median, so a
burst of load from other processes hits all of them alike.

Each model is timed in two forms: `eager`, the module as pruned and saved (what
`nnprune prune --latency` measures), and `deployed`, the same function as an inference runtime
would run it: every BatchNorm folded into the conv before it and channels_last tensors (outputs
checked against eager).
Targets, at the large batch: a pruned model's speed-up >= 0.7 x its MACs ratio, and (GPU) the
round_to models faster than the unpruned one.

    python benchmarks/bench_latency.py [--device cuda]
    python benchmarks/bench_latency.py --batches 64 --rounds 1 --repeats 5   # a quick look
"""
from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from _common import add_device_options, device_of, machine, report
from nnprune.engine.metrics import count_macs, inference_model, measure_speed
from nnprune.models import build
from nnprune.plan.schemes import parse_scheme
from nnprune.pruning.allocation import allocate, build_macs_model
from nnprune.pruning.layout import model_layout
from nnprune.pruning.removal import apply_removal
from nnprune.pruning.scoring import score_model

INPUT_SHAPE = (3, 32, 32)
LARGE_BATCH = {"cpu": 64, "cuda": 1024}


def pruned_copy(model: torch.nn.Module, scheme_text: str) -> torch.nn.Module:
    """A physically pruned copy of `model` (l1 scores) under `scheme_text`."""
    model = copy.deepcopy(model).cpu()
    layout = model_layout(model, INPUT_SHAPE)
    scores, _ = score_model(model, layout.layers, "l1")
    scheme = parse_scheme(scheme_text, "resnet56")
    macs_model = build_macs_model(model, INPUT_SHAPE, layout) if scheme.kind == "macs" else None
    removed = allocate(layout, scores, scheme, macs_model)
    return apply_removal(model, INPUT_SHAPE, removed).eval()


def deployed(model: nn.Module) -> nn.Module:
    """An inference copy of `model`: `nnprune.engine.metrics.inference_model` (each BatchNorm that
    follows a conv folded into it, eval-mode statistics; channels_last weights and inputs)."""
    return inference_model(copy.deepcopy(model).cpu().eval())


def channel_counts(model: nn.Module) -> list[int]:
    return sorted({m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemes",
                        default="macs:0.5,macs:0.5:round_to=8,preset:hrank,preset:hrank:round_to=8")
    parser.add_argument("--batches", default=None,
                        help="batch sizes (default: 1 and 64 on the CPU, 1 and 1024 on CUDA)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed passes per median (default: 10 on the CPU, 50 on CUDA)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds (best median kept)")
    add_device_options(parser)
    parser.add_argument("--factor", type=float, default=0.7,
                        help="target: speed-up >= factor x MACs ratio at the largest batch")
    args = parser.parse_args()
    device = device_of(args)
    repeats = args.repeats or (50 if device.type == "cuda" else 10)
    batches = ([int(b) for b in args.batches.split(",")] if args.batches
               else [1, LARGE_BATCH[device.type]])
    print(machine(device))
    torch.manual_seed(0)
    base = build("resnet56").eval()
    models = {"unpruned": base}
    for text in [s for s in args.schemes.split(",") if s]:
        models[text] = pruned_copy(base, text)
    macs = {name: count_macs(model, INPUT_SHAPE) for name, model in models.items()}
    forms = {}
    check = torch.randn(8, *INPUT_SHAPE)
    for name, model in models.items():
        fast = deployed(model)
        with torch.no_grad():
            logits = model(check)
            difference = float((fast(check) - logits).abs().max() / logits.abs().max())
        print(f"{name}: conv widths {channel_counts(model)}; deployed form differs from eager by "
              f"at most {difference:.1e} of the largest logit")
        forms[(name, "eager")], forms[(name, "deployed")] = model.to(device), fast.to(device)
    best: dict[tuple[str, str, int], dict] = {}
    for _ in range(args.rounds):
        for batch in batches:
            for (name, form), model in forms.items():
                speed = measure_speed(model, INPUT_SHAPE, batch, repeats=repeats, warmup=args.warmup)
                key = (name, form, batch)
                if key not in best or speed["latency_ms"] < best[key]["latency_ms"]:
                    best[key] = speed
    methods = sorted({speed["method"] for speed in best.values()})
    print(f"resnet56 random init, l1 scores; latency = best of {args.rounds} medians of {repeats} "
          f"passes after {args.warmup} warm-up; timed by: {'; '.join(methods)}")
    print(f"{'model':<26}{'form':<10}{'MACs':>13}{'MACs ratio':>11}" +
          "".join(f"{f'ms @{b}':>10}{f'img/s @{b}':>13}{f'speed-up @{b}':>15}" for b in batches))
    for name, form in forms:
        line = f"{name:<26}{form:<10}{macs[name]:>13,}{macs['unpruned'] / macs[name]:>11.2f}"
        for batch in batches:
            speed = best[(name, form, batch)]
            line += (f"{speed['latency_ms']:>10.3f}{speed['images_per_second']:>13,.0f}"
                     f"{best[('unpruned', form, batch)]['latency_ms'] / speed['latency_ms']:>15.2f}")
        print(line)
    results = []
    largest = batches[-1]
    for form in ("eager", "deployed"):
        for name in list(models)[1:]:
            macs_ratio = macs["unpruned"] / macs[name]
            base_ms = best[("unpruned", form, largest)]["latency_ms"]
            pruned_ms = best[(name, form, largest)]["latency_ms"]
            speedup = base_ms / pruned_ms
            results.append(report(
                f"{name} ({form}, {device.type}) speed-up at batch {largest} vs {args.factor} x MACs "
                f"ratio {macs_ratio:.2f}", f"{speedup:.2f}x ({pruned_ms:.3f} ms)",
                f"{args.factor * macs_ratio:.2f}x (unpruned {base_ms:.3f} ms)",
                speedup / (args.factor * macs_ratio), 1.0))
            if "round_to" in name:
                report(f"{name} ({form}, {device.type}) faster than unpruned at batch {largest}",
                       f"{speedup:.2f}x", "1.00x", speedup, 1.0)
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
