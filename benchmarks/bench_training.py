"""Training throughput: `nnprune.engine.training.fit` with nnprune's Batches against a bare loop.

The default study's model (resnet20, width 0.5, 1 input channel) and recipe (batch 128, SGD lr
0.05, momentum 0.9, weight decay 5e-4, flips) on real Fashion-MNIST (10,000 training images from
`nnprune.data.prepare`). The measured figure is the images/s that `fit` reports for its training
loop (Batches: shuffling, normalising and flipping each batch on the fly; the loss bookkeeping;
the scheduler). The reference is a bare loop of forward, backward and step over tensors that are
already batched and normalised. The two alternate `--rounds` times from the same initial weights
and each keeps its best round. Target: fit >= 90% of the bare loop's images/s.

On CUDA both sides use the same fused SGD, and with `--amp` / `--channels-last` the same autocast
dtype and memory format, so the ratio isolates fit's own per-step work (batch assembly, loss
bookkeeping; no host syncs).

    python benchmarks/bench_training.py [--data-root data] [--batches 78] [--rounds 3]
    python benchmarks/bench_training.py --device cuda --amp --channels-last --train-size 55000 --batches 400
"""
from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
from torch import nn

from _common import ROOT, add_device_options, device_of, machine, report, timed
from nnprune.data import prepare
from nnprune.engine.device import autocast_dtype
from nnprune.engine.training import TrainConfig, fit
from nnprune.models import build


def bare_loop(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
              config: TrainConfig, device: torch.device) -> None:
    """Forward, backward and step over pre-made batches: nothing else."""
    model.train()
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay,
                                fused=True if device.type == "cuda" else None)
    loss_fn = nn.CrossEntropyLoss()
    dtype = autocast_dtype(device, config.amp_dtype)
    for inputs, labels in batches:
        with torch.autocast(device.type, dtype=dtype, enabled=config.amp):
            loss = loss_fn(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(ROOT / "data"))
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--batches", type=int, default=78, help="batches per run (78 = one epoch)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (best kept)")
    add_device_options(parser)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--amp", action="store_true", help="autocast (bfloat16 where supported)")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    device = device_of(args)
    print(machine(device))
    bundle = prepare("fashion-mnist", args.data_root, train_size=args.train_size, val_size=5000)
    config = TrainConfig(epochs=1, batch_size=128, lr=0.05, momentum=0.9, weight_decay=5e-4,
                         schedule="cosine", augment="flip", batches_per_epoch=args.batches,
                         amp=args.amp, channels_last=args.channels_last)
    train_batches = bundle.batches("train", config.batch_size, train=True, seed=0, device=device,
                                   augment=config.augment, channels_last=config.channels_last)
    # A small validation set: fit validates once per epoch, outside the timed training loop.
    val_batches = [next(iter(bundle.batches("val", 512, device=device)))]
    ready = []
    for inputs, labels in train_batches:
        ready.append((inputs.clone(), labels.clone()))
        if len(ready) == args.batches:
            break
    images = sum(labels.numel() for _, labels in ready)
    torch.manual_seed(0)
    initial = build(args.arch, num_classes=10, in_channels=1, width=args.width).to(device)
    bare_loop(copy.deepcopy(initial), ready[:3], config, device)   # warm-up: kernels, allocator
    best_bare = best_fit = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            seconds, _ = timed(lambda: bare_loop(copy.deepcopy(initial), ready, config, device), device)
            best_bare = max(best_bare, images / seconds)
            resume = Path(folder) / f"last{round_index}.pt"
            summary = fit(copy.deepcopy(initial), train_batches, val_batches, config, resume, device,
                          log=lambda message: None)
            best_fit = max(best_fit, summary["images_per_second"])
            print(f"round {round_index + 1}: bare {images / seconds:.0f} images/s, "
                  f"fit {summary['images_per_second']:.0f} images/s", flush=True)
    print(f"{args.arch} width {args.width} on Fashion-MNIST, amp {args.amp}, channels_last "
          f"{args.channels_last}, batch {config.batch_size}, {args.batches} batches "
          f"({images} images) per run, best of {args.rounds}")
    ok = report("training throughput (fit vs bare loop)", f"{best_fit:.0f} images/s",
                f"{best_bare:.0f} images/s", best_fit / best_bare, args.target, unit="")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
