"""Real speed-up of physically pruned models: latency before and after, beside the MACs ratio.

ResNet-56 (random init, seed 0; CIFAR input 3x32x32) is pruned with `preset:hrank` and with
`macs:0.5`, ranking channels by `l1` (the speed-up depends on how many channels go, not on which),
through the project's path: `parse_scheme`, `allocate` (with `build_macs_model` for macs:),
`apply_removal`. Latency is `nnprune.metrics.latency_ms` (median over repeats after warm-up) at
batch 1 and batch 64. The models are timed round-robin, `--rounds` times, and each keeps its
fastest median, so a burst of load from other processes hits all of them alike.

Each model is timed in two forms: `eager`, the module as pruned and saved (what
`nnprune prune --latency` measures), and `deployed`, the same function as an inference runtime
would run it: every BatchNorm folded into the conv before it and channels_last tensors (outputs
checked against eager). Why both: after pruning, channel counts are small and odd (7, 9, 13...),
for which the CPU conv kernels reach about half the MACs/s of 16 channels, and the BatchNorm,
ReLU and add passes shrink only linearly with the channels; folding and channels_last remove
most of that overhead.
Target: at batch 64, latency speed-up >= 0.7 x MACs ratio (unpruned MACs / pruned MACs).

    python benchmarks/bench_latency.py
    python benchmarks/bench_latency.py --batches 64 --rounds 1 --repeats 5   # a quick look
"""
from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from _common import machine, pick_device, report
from nnprune.metrics import count_macs, inference_model, latency_ms
from nnprune.models import build
from nnprune.pruning import allocate, apply_removal, build_macs_model, model_layout, parse_scheme
from nnprune.scoring import score_model

INPUT_SHAPE = (3, 32, 32)


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
    """An inference copy of `model`: `nnprune.metrics.inference_model` (each BatchNorm that
    follows a conv folded into it, eval-mode statistics; channels_last weights and inputs)."""
    return inference_model(copy.deepcopy(model).cpu().eval())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemes", default="preset:hrank,macs:0.5")
    parser.add_argument("--batches", default="1,64", help="batch sizes (default 1,64)")
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per median")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds (best median kept)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--factor", type=float, default=0.7,
                        help="target: speed-up >= factor x MACs ratio at the largest batch")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
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
        print(f"{name}: deployed form differs from eager by at most {difference:.1e} of the "
              f"largest logit")
        forms[(name, "eager")], forms[(name, "deployed")] = model.to(device), fast.to(device)
    batches = [int(b) for b in args.batches.split(",")]
    best: dict[tuple[str, str, int], float] = {}
    for _ in range(args.rounds):
        for batch in batches:
            for (name, form), model in forms.items():
                ms = latency_ms(model, INPUT_SHAPE, batch, repeats=args.repeats, warmup=args.warmup)
                key = (name, form, batch)
                best[key] = min(ms, best.get(key, float("inf")))
    print(f"resnet56 random init, l1 scores; latency = best of {args.rounds} medians of "
          f"{args.repeats} passes after {args.warmup} warm-up")
    print(f"{'model':<14}{'form':<10}{'MACs':>13}{'MACs ratio':>12}" +
          "".join(f"{f'ms @ {b}':>11}{f'speed-up @ {b}':>16}" for b in batches))
    for name, form in forms:
        line = f"{name:<14}{form:<10}{macs[name]:>13,}{macs['unpruned'] / macs[name]:>12.2f}"
        for batch in batches:
            ms = best[(name, form, batch)]
            line += f"{ms:>11.2f}{best[('unpruned', form, batch)] / ms:>16.2f}"
        print(line)
    results = []
    largest = batches[-1]
    for form in ("eager", "deployed"):
        for name in list(models)[1:]:
            macs_ratio = macs["unpruned"] / macs[name]
            base_ms, pruned_ms = best[("unpruned", form, largest)], best[(name, form, largest)]
            speedup = base_ms / pruned_ms
            results.append(report(
                f"{name} ({form}) latency speed-up at batch {largest} vs {args.factor} x MACs "
                f"ratio {macs_ratio:.2f}", f"{speedup:.2f}x ({pruned_ms:.1f} ms)",
                f"{args.factor * macs_ratio:.2f}x (unpruned {base_ms:.1f} ms)",
                speedup / (args.factor * macs_ratio), 1.0))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
