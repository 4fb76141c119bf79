"""The paper's regime on one GPU, through the `nnprune` CLI: train, score, prune, fine-tune, share.

1. `nnprune train --arch resnet56 --width 1` on all of Fashion-MNIST (55,000 training images),
   batch 128, lr 0.1, cosine, AMP and channels_last, `--epochs` epochs: the training loop's
   images/s, and images/s over the epochs including their validation passes (the figure that
   was 6,434 images/s on an H100 at commit 54d2849, benchmarks/RESULTS.md; target: 2x). The per-epoch
   validation accuracy is printed: the evidence that the recipe has converged.
2. `nnprune score` (every criterion, 1,280 images), `nnprune prune --pruning macs:0.404 --latency`,
   `nnprune finetune` for `--finetune-epochs` epochs at lr 0.01: seconds per job and the curve.
3. GPU sharing: k concurrent `nnprune finetune` processes (`--share-batches` batches each) for each k in
   `--share`: images/s per process and together, against one process alone.
4. The same with `--compile reduce-overhead` for `--compile-epochs` epochs: the first epoch's
   extra seconds (compilation) and the later epochs' images/s.

    python benchmarks/bench_gpu_pipeline.py --out /tmp/pipeline            # on a GPU machine
    python benchmarks/bench_gpu_pipeline.py --out /tmp/pipeline --dry-run  # CPU, tiny sizes
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, report
from nnprune.plan.paths import score_name

REFERENCE_TRAIN_RATE = 6434.0   # images/s, nnprune train resnet56 on an H100 at commit 54d2849


def cli(*args: str, log: Path) -> float:
    """Run `python -m nnprune.pipeline.cli ARGS` (this checkout first on the path); wall seconds."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    started = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, "-m", "nnprune.pipeline.cli", *args], stdout=handle,
                              stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        print(log.read_text()[-3000:])
        raise RuntimeError(f"failed: nnprune {' '.join(args)}")
    return time.perf_counter() - started


def results(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())["results"]


def curve(history: list[dict]) -> str:
    return ", ".join(f"{h['epoch']}: {h['val_acc']:.2f}" if h["val_acc"] is not None
                     else f"{h['epoch']}: -" for h in history)


def compile_run(args, model, data, common, compile_mode, trained, summary, out) -> None:
    compiled = out / "compiled"
    wall = cli("train", *model, *data, *common, "--epochs", str(args.compile_epochs), "--lr", "0.1",
               "--compile", compile_mode, "--out", str(compiled), log=out / "compiled.log")
    history = results(compiled)["train"]["history"]
    later = history[1:] or history
    steady = trained["train_images"] * len(later) / sum(h["seconds"] for h in later)
    eager_epoch = sum(h["seconds"] for h in summary["history"][1:]) / max(len(summary["history"]) - 1, 1)
    print(f"compile ({compile_mode}): first epoch {history[0]['seconds']:.1f} s (compilation "
          f"included), later epochs {steady:.0f} images/s with validation (eager epoch "
          f"{eager_epoch:.1f} s); process wall {wall:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-root", default=str(ROOT / "data"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--compile-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--share", default="1,2,4", help="numbers of concurrent fine-tunes")
    parser.add_argument("--share-batches", type=int, default=200, help="batches per shared fine-tune")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, resnet20 width 0.25, 2,000 images: checks the script, not the GPU")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        model = ["--arch", "resnet20", "--width", "0.25", "--train-size", "2000", "--test-size", "1000"]
        device, score_images, compile_mode = "cpu", "256", "default"
    else:
        model = ["--arch", "resnet56", "--width", "1"]
        device, score_images, compile_mode = "cuda", "1280", "reduce-overhead"
    common = ["--device", device, "--amp", "--channels-last", "--batch-size", "128"]
    data = ["--dataset", "fashion-mnist", "--data-root", args.data_root]
    ok = []

    # 1. training, eager
    base = out / "baseline"
    wall = cli("train", *model, *data, *common, "--epochs", str(args.epochs), "--lr", "0.1",
               "--out", str(base), log=out / "train.log")
    trained = results(base)
    summary = trained["train"]
    images = trained["train_images"] * args.epochs
    with_validation = images / sum(h["seconds"] for h in summary["history"])
    print(f"train: {trained['train_images']} images x {args.epochs} epochs, process wall {wall:.1f} s, "
          f"test accuracy {trained['acc_test']:.2f}%")
    print(f"train: validation accuracy by epoch: {curve(summary['history'])}")
    print(f"train: training loop {summary['images_per_second']:.0f} images/s; with validation "
          f"{with_validation:.0f} images/s")
    ok.append(report("nnprune train resnet56 images/s (with validation) vs 2 x the rate at 54d2849",
                     f"{with_validation:.0f} images/s", f"{2 * REFERENCE_TRAIN_RATE:.0f} images/s",
                     with_validation / (2 * REFERENCE_TRAIN_RATE), 1.0, unit="x"))

    # 2. score, prune, fine-tune
    scores = out / "scores"
    wall = cli("score", "--model", str(base / "model.pt"), "--criterion",
               "nuclear,nuclear-stacked,hrank,apoz,taylor,l1,l2,fpgm,random",
               "--score-images", score_images, "--device", device, "--out", str(scores),
               log=out / "score.log")
    print(f"score: 9 criteria, {score_images} images, process wall {wall:.1f} s")
    pruned = out / "pruned"
    wall = cli("prune", "--model", str(base / "model.pt"), "--scores",
               str(scores / score_name("nuclear", score_images) / "scores.pt"), "--pruning", "macs:0.404",
               "--latency", "--bn-recalibration", "2048", "--device", device, "--out", str(pruned),
               log=out / "prune.log")
    cut, nan = results(pruned), float("nan")
    print(f"prune: nuclear macs:0.404, MACs {cut['base']['macs']:,} -> {cut['pruned']['macs']:,}, "
          f"accuracy {cut['base']['acc']:.2f} -> {cut['pruned']['acc']:.2f} (BN recalibrated "
          f"{cut['pruned'].get('acc_bn_recalibrated', nan):.2f}), latency batch 64 "
          f"{cut['base'].get('latency_ms', nan):.3f} -> {cut['pruned'].get('latency_ms', nan):.3f} ms; "
          f"process wall {wall:.1f} s")
    tuned = out / "finetuned"
    wall = cli("finetune", "--model", str(pruned / "model.pt"), *common, "--epochs",
               str(args.finetune_epochs), "--lr", "0.01", "--out", str(tuned), log=out / "finetune.log")
    after = results(tuned)
    print(f"finetune: {args.finetune_epochs} epochs, process wall {wall:.1f} s, test accuracy "
          f"{after['acc_test']:.2f}%, {after['train']['images_per_second']:.0f} images/s")
    print(f"finetune: validation accuracy by epoch: {curve(after['train']['history'])}")

    # 3. sharing one GPU
    alone = None
    extra = ["--batches-per-epoch", str(args.share_batches)]
    for k in [int(v) for v in args.share.split(",") if v]:
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        started = time.perf_counter()
        processes = []
        for index in range(k):
            folder = out / f"share{k}" / str(index)
            folder.parent.mkdir(parents=True, exist_ok=True)
            handle = open(out / f"share{k}_{index}.log", "w")
            processes.append((folder, handle, subprocess.Popen(
                [sys.executable, "-m", "nnprune.pipeline.cli", "finetune", "--model", str(pruned / "model.pt"),
                 *common, "--epochs", "1", "--lr", "0.01", "--seed", str(index), *extra,
                 "--out", str(folder)], stdout=handle, stderr=subprocess.STDOUT, env=env)))
        rates = []
        for folder, handle, process in processes:
            if process.wait():
                raise SystemExit(f"shared fine-tune failed: {handle.name}")
            handle.close()
            rates.append(results(folder)["train"]["images_per_second"])
        wall = time.perf_counter() - started
        total = sum(rates)
        alone = alone or total
        print(f"share: {k} fine-tunes on one device: {min(rates):.0f}-{max(rates):.0f} images/s each, "
              f"{total:.0f} together ({total / alone:.2f}x one alone); wall {wall:.1f} s")
    # 4. training, compiled (last: compilation is the slowest step)
    if args.compile_epochs:
        try:
            compile_run(args, model, data, common, compile_mode, trained, summary, out)
        except RuntimeError as error:   # reported, and the rest still runs
            print(f"compile ({compile_mode}): {error}")

    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
