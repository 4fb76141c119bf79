"""fp32 against bf16 autocast on the CPU: throughput and accuracy of one baseline and one fine-tune.

Trains the default study's baseline (config/config.yaml: architecture, width, training set,
recipe) once in fp32 and once with `amp` (bf16 autocast on the CPU), both from the same seed;
prunes each with l1 at the study's main pruning level, then fine-tunes each pruned model for the
study's largest fine-tuning budget in its own precision. Prints, per precision, the training
images/s that `fit` reports, the wall seconds and the test accuracy of the baseline, of the pruned
model and of the fine-tuned model. The question it answers: does bf16 keep the accuracy that the
study's claims compare, at the speed it gains?

On a CPU without native bf16 (no AVX-512 BF16 or AMX) autocast emulates it and is several times
slower than fp32; `--train-size`, `--epochs` and `--budget` scale the comparison down there.

    python benchmarks/bench_amp_accuracy.py [--config config/config.yaml] [--seed 0] [--threads 2]
    python benchmarks/bench_amp_accuracy.py --train-size 10000 --epochs 2 --budget 1e
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

from _common import ROOT, machine
from nnprune import api
from nnprune.plan import jobspecs
from nnprune.plan.budgets import parse_budget, study_budgets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default=str(ROOT / "data"))
    parser.add_argument("--criterion", default="l1", help="a data-free criterion (no score images)")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: the config's)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the config's)")
    parser.add_argument("--budget", default=None, help="fine-tuning budget (default: the config's largest)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    arch, options = next(iter(config["archs"].items()))
    budget = parse_budget(args.budget) if args.budget else study_budgets(config["finetune"])[-1]
    if args.train_size is not None:
        config["train_size"] = [args.train_size]
    if args.epochs is not None:
        config["train"]["epochs"] = args.epochs
    print(machine(torch.device("cpu")))
    print(f"baseline {arch} {options}, train_size {config['train_size'][0]}, "
          f"train {config['train']}, fine-tune budget {budget.text}, pruning {config['grid']['main_pruning']}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for amp in (False, True):
            name = "bf16" if amp else "fp32"
            out = Path(tmp) / name
            train_values = {k: v for k, v in jobspecs._section(config, "train").items()}
            started = time.perf_counter()
            base = api.train(api.TrainSpec(
                arch=arch, **(options or {}), dataset=config["dataset"], data_root=args.data_root,
                train_size=config["train_size"][0], val_size=config["val_size"], test_size=config["test_size"],
                seed=args.seed, threads=args.threads, out=str(out / "base"), **{**train_values, "amp": amp}))
            train_wall = time.perf_counter() - started
            score = api.score(api.ScoreSpec(model=str(out / "base" / "model.pt"), criteria=[args.criterion],
                                            seed=args.seed, threads=args.threads, out=str(out / "scores")))
            pruned = api.prune(api.PruneSpec(model=str(out / "base" / "model.pt"),
                                             scores=str(score.outputs["files"][(args.criterion, 0)]),
                                             pruning=config["grid"]["main_pruning"], seed=args.seed,
                                             threads=args.threads, out=str(out / "pruned")))
            ft_values = {k: v for k, v in jobspecs._section(config, "finetune").items()
                         if k not in ("epochs", "batches_per_epoch")}
            ft_values.update(budget=budget.text, amp=amp)
            started = time.perf_counter()
            tuned = api.finetune(api.FinetuneSpec(model=str(out / "pruned" / "model.pt"), seed=args.seed,
                                                  threads=args.threads, out=str(out / "tuned"), **ft_values))
            tune_wall = time.perf_counter() - started
            rows.append((name, base.results["train"]["images_per_second"], train_wall, base.results["acc_test"],
                         pruned.results["pruned"]["acc"], tuned.results["train"]["images_per_second"], tune_wall,
                         tuned.results["acc_test"]))
    print("\n| precision | train images/s | train wall s | baseline test % | pruned raw % | "
          "fine-tune images/s | fine-tune wall s | fine-tuned test % |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]:,.0f} | {row[2]:.0f} | {row[3]:.2f} | {row[4]:.2f} | {row[5]:,.0f} | "
              f"{row[6]:.0f} | {row[7]:.2f} |")
    fp32, bf16 = rows
    print(f"\nbf16/fp32 training speed {bf16[1] / fp32[1]:.2f}x, fine-tune {bf16[5] / fp32[5]:.2f}x; "
          f"accuracy bf16 - fp32: baseline {bf16[3] - fp32[3]:+.2f} pp, fine-tuned {bf16[7] - fp32[7]:+.2f} pp")


if __name__ == "__main__":
    main()
