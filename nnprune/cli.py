"""`nnprune` command line: fetch-data | train | score | prune | finetune | evaluate | aggregate.

Every step reads its inputs from paths and writes its outputs atomically into `--out`, always
including a `metrics.json` with the resolved configuration and provenance. Bad input ends with
one line naming the problem and the fix (exit code 2), never with a bare traceback.
"""
from __future__ import annotations

import argparse
import sys

import torch

from .errors import UserError

DESCRIPTION = __doc__


def _data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="fashion-mnist", help="dataset name (default: fashion-mnist)")
    group.add_argument("--data-root", default="data", help="directory holding the datasets (default: data)")
    group.add_argument("--train-size", type=int, default=None,
                       help="number of training images (default: all but the validation split)")
    group.add_argument("--val-size", type=int, default=5000,
                       help="training images held out for checkpoint selection (default: 5000)")
    group.add_argument("--test-size", type=int, default=None,
                       help="evaluate on a fixed random subset of this many test images, the same "
                            "for every run (default: the whole test set; for toy-size studies)")
    group.add_argument("--label-noise", type=float, default=0.0,
                       help="fraction of training (and validation) labels flipped, in [0, 1)")
    group.add_argument("--noise-kind", default="symmetric", choices=["symmetric", "pairwise"],
                       help="symmetric: uniform over other classes; pairwise: a fixed similar class")
    group.add_argument("--split-seed", type=int, default=0,
                       help="seed of the validation/training split (default: 0)")


def _train_args(parser: argparse.ArgumentParser, epochs: int, lr: float) -> None:
    group = parser.add_argument_group("optimisation")
    group.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default: {epochs})")
    group.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    group.add_argument("--lr", type=float, default=lr, help=f"initial SGD learning rate (default: {lr})")
    group.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    group.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (default: 5e-4)")
    group.add_argument("--schedule", default="cosine", choices=["cosine", "step"],
                       help="cosine annealing, or x0.1 steps at 50%% and 75%% of the epochs")
    group.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing (default: 0)")
    group.add_argument("--amp", action="store_true", help="mixed precision (autocast in --amp-dtype)")
    group.add_argument("--amp-dtype", default="auto", choices=["auto", "bfloat16", "float16"],
                       help="auto: bfloat16 on the CPU and on GPUs that support it, else float16")
    group.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    group.add_argument("--compile", default="none",
                       choices=["none", "default", "reduce-overhead", "max-autotune"],
                       help="torch.compile the training step in this mode (CUDA; reduce-overhead "
                            "adds CUDA graphs); batches keep one shape (the last partial one is "
                            "dropped). Default: none")
    group.add_argument("--batches-per-epoch", type=int, default=None,
                       help="stop each epoch after this many batches (default: all)")
    group.add_argument("--augment", default="default", choices=["default", "flip", "none"],
                       help="training augmentation: the dataset's crop+flip (default), flips only, none")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic kernels (matters on CUDA; CPU runs are deterministic anyway)")


def build_parser() -> argparse.ArgumentParser:
    from .criteria import CRITERIA

    parser = argparse.ArgumentParser(prog="nnprune", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch-data", help="put a dataset under --root (offline first)")
    fetch.add_argument("--dataset", default="fashion-mnist")
    fetch.add_argument("--root", default="data")

    train = sub.add_parser("train", help="train an unpruned baseline",
                           description="Train a baseline; keep the best-by-validation weights.")
    train.add_argument("--arch", required=True, help="architecture (see nnprune.models.MODELS)")
    train.add_argument("--width", type=float, default=1.0, help="channel width multiplier (default: 1)")
    _data_args(train)
    _train_args(train, epochs=10, lr=0.1)
    _common(train)
    train.add_argument("--out", required=True, help="output directory (model.pt, metrics.json)")

    criteria_help = "\n".join(f"  {name:16s}{c.summary}" for name, c in CRITERIA.items())
    score = sub.add_parser("score", help="score every prunable channel of a model",
                           description="Score every prunable channel.\n\ncriteria:\n" + criteria_help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("--model", required=True, help="model.pt of the trained baseline")
    score.add_argument("--criterion", required=True, metavar="NAME[,NAME...]",
                       help="one or more criteria, comma-separated (listed above)")
    score.add_argument("--score-images", default="1280", metavar="N[,N...]",
                       help="training images used by data-driven criteria; several sizes, "
                            "comma-separated, are scored in one pass (default: 1280)")
    score.add_argument("--feature-point", choices=["bn", "relu"], default=None,
                       help="where feature maps are read (default: the criterion's own)")
    score.add_argument("--batch-size", type=int, default=128, help="scoring batch size (default: 128)")
    _common(score)
    score.add_argument("--out", required=True,
                       help="output directory; gets {criterion}_si{n}/scores.pt and metrics.json")

    prune = sub.add_parser("prune", help="physically remove channels by scores and a scheme")
    prune.add_argument("--model", required=True, help="model.pt of the baseline")
    prune.add_argument("--scores", required=True, help="scores.pt from `nnprune score`")
    prune.add_argument("--pruning", required=True,
                       help="uniform:<rate> | rates:<HRank string> | preset:hrank | macs:<fraction>")
    prune.add_argument("--latency", action="store_true", help="also measure CPU/GPU latency")
    prune.add_argument("--bn-recalibration", type=int, default=0, metavar="IMAGES",
                       help="also report accuracy after re-estimating BatchNorm statistics on this "
                            "many training images (no weight updates; default 0: off)")
    _common(prune)
    prune.add_argument("--out", required=True, help="output directory (model.pt, metrics.json)")

    finetune = sub.add_parser("finetune", help="fine-tune a pruned model")
    finetune.add_argument("--model", required=True, help="model.pt of the pruned model")
    _train_args(finetune, epochs=5, lr=0.01)
    _common(finetune)
    finetune.add_argument("--out", required=True, help="output directory (model.pt, metrics.json)")

    evaluate = sub.add_parser("evaluate", help="clean-test accuracy, MACs and params of a model")
    evaluate.add_argument("--model", required=True)
    _common(evaluate)
    evaluate.add_argument("--out", default=None, help="write metrics.json here (default: print)")

    aggregate = sub.add_parser("aggregate", help="gather run metrics into runs.csv and stability.csv")
    aggregate.add_argument("--runs", nargs="+", required=True, help="pruned-model metrics.json files")
    aggregate.add_argument("--scores", nargs="*", default=[], help="scores.pt files (stability analysis)")
    aggregate.add_argument("--out", required=True, help="study directory for runs.csv and stability.csv")

    report = sub.add_parser("report", help="tables and figures from runs.csv and stability.csv")
    report.add_argument("--study-dir", required=True, help="results/{study}")
    report.add_argument("--main-pruning", default=None, help="main pruning level (default: first)")
    report.add_argument("--main-score-images", type=int, default=None,
                        help="main score_images (default: the largest)")
    claims = sub.add_parser("claims", help="verdicts on the paper's claims: claims.md and claims.json")
    claims.add_argument("--study-dir", required=True, help="results/{study}")
    claims.add_argument("--main-pruning", required=True, help="the study's main pruning level")
    claims.add_argument("--main-score-images", type=int, required=True, help="the main score_images")
    claims.add_argument("--settings", default="{}",
                        help="the config's `claims:` section as JSON: alpha, power, margins "
                             "{accuracy_pp, spearman, boundary_pp}, primary {toy_fraction, score_images, "
                             "label_noise, noise_kind, pruning}; keys left out take their defaults "
                             "(config/README.md)")

    toy = sub.add_parser("toy", help="the 2-D toy decision-boundary experiment for one dataset")
    toy.add_argument("--dataset", required=True, help="moons | circles | spiral")
    toy.add_argument("--seeds", type=int, default=10, help="number of seeds, from --seed on (default: 10)")
    toy.add_argument("--width", type=float, default=1.0, help="hidden width multiplier; 1.0 = 2-1000-1000-1000-C")
    toy.add_argument("--steps", type=int, default=300, help="Adam steps (default: 300)")
    toy.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    toy.add_argument("--batch-size", type=int, default=128)
    toy.add_argument("--train-points", type=int, default=1000)
    toy.add_argument("--test-points", type=int, default=1000)
    toy.add_argument("--score-per-class", type=int, default=10,
                     help="reference (scoring) samples per class (default: 10)")
    toy.add_argument("--fractions", default="0.1,0.25,0.5,0.75", help="fractions of hidden units removed")
    toy.add_argument("--input-noise", default="0.01,0.1,0.3", help="Gaussian input-noise sigmas on test inputs")
    toy.add_argument("--grid", type=int, default=64, help="grid points per axis (default: 64)")
    toy.add_argument("--criteria", default="nuclear,nuclear-stacked,hrank,apoz,taylor,l1,l2,fpgm,random")
    _common(toy)
    toy.add_argument("--out", required=True, help="output directory (toy.csv, boundaries.pt, metrics.json)")

    toy_report = sub.add_parser("toy-report", help="toy figures from `nnprune toy` outputs")
    toy_report.add_argument("--inputs", nargs="+", required=True, help="output directories of `nnprune toy`")
    toy_report.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        from . import steps
        if args.command == "fetch-data":
            from .data.fetch import fetch
            how = fetch(args.dataset, args.root)
            print(f"nnprune: {args.dataset} ready under {args.root} ({how})")
            return 0
        return getattr(steps, args.command.replace("-", "_"))(args) or 0
    except UserError as error:
        print(f"nnprune {args.command}: error: {error.problem}\n  fix: {error.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnprune {args.command}: interrupted; completed outputs are intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
