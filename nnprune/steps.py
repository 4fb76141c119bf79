"""The pipeline steps behind the CLI: each reads paths, writes `--out/` atomically."""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import data as data_module
from .checkpoint import load_model, save_model
from .device import resolve_device, seed_everything
from .errors import UserError
from .io import load_torch, save_torch, write_json
from .metrics import accuracy, count_macs, count_params, eval_batch_size, latency_ms, recalibrate_batchnorm
from .progress import progress_callback
from .provenance import provenance
from .train import TrainConfig, fit

DATA_KEYS = ("dataset", "data_root", "train_size", "val_size", "test_size", "label_noise",
             "noise_kind", "seed", "split_seed")
SCORES_FORMAT = "nnprune-scores-v1"
# `prune --latency`: a run's latency figure (benchmarks/bench_latency.py times more carefully)
RUN_LATENCY = {"batch_size": 64, "repeats": 10, "warmup": 2}


class Step:
    """Shared bookkeeping: device, seed, start time, and the metrics.json writer."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.args = name, args
        self.out = Path(args.out) if getattr(args, "out", None) else None
        self.started = dt.datetime.now(dt.timezone.utc)
        self.clock = time.perf_counter()
        self.device = resolve_device(args.device)
        seed_everything(args.seed, args.deterministic)

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    def finish(self, results: dict, extra_config: dict | None = None, write: bool = True) -> dict:
        config = {k: v for k, v in vars(self.args).items() if k != "func"}
        config.update(extra_config or {})
        record = {"step": self.name, "config": config, "results": results,
                  "provenance": provenance(self.device, self.started, time.perf_counter() - self.clock)}
        if not write:
            return record
        if self.out is not None:
            write_json(self.out / "metrics.json", record)
        else:
            import json
            print(json.dumps(record, indent=2, default=str))
        return record


def _bundle(data_config: dict) -> data_module.DataBundle:
    return data_module.prepare(
        data_config["dataset"], data_config["data_root"], train_size=data_config["train_size"],
        val_size=data_config["val_size"], label_noise=data_config["label_noise"],
        noise_kind=data_config["noise_kind"], seed=data_config["seed"],
        split_seed=data_config["split_seed"], test_size=data_config.get("test_size"))


def _eval_batches(bundle: data_module.DataBundle, split: str, step: Step):
    """Unshuffled batches of `split` in the evaluation batch size of the step's device."""
    return bundle.batches(split, eval_batch_size(step.device), device=step.device)


def _check_fits(arch: str, spec, in_channels: int) -> None:
    if spec.channels != in_channels:
        raise UserError(f"model {arch} takes {in_channels}-channel input but {spec.name} images "
                        f"have {spec.channels}",
                        f"build the model with in_channels={spec.channels} (nnprune does this "
                        f"for new baselines) or use a dataset with {in_channels} channels")


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       momentum=args.momentum, weight_decay=args.weight_decay,
                       schedule=args.schedule, label_smoothing=args.label_smoothing,
                       amp=args.amp, amp_dtype=args.amp_dtype, channels_last=args.channels_last,
                       compile=args.compile, augment=args.augment,
                       batches_per_epoch=args.batches_per_epoch)


def train(args: argparse.Namespace) -> int:
    from .models import build

    step = Step("train", args)
    data_config = {k: getattr(args, k) for k in DATA_KEYS}
    bundle = _bundle(data_config)
    spec = bundle.spec
    build_args = {"num_classes": spec.num_classes, "in_channels": spec.channels, "width": args.width}
    model = build(args.arch, **build_args)
    config = _train_config(args)
    step.log(f"{args.arch} (width {args.width}) on {spec.name}: {bundle.train_labels.numel()} train, "
             f"{bundle.val_labels.numel()} val images, label noise {args.label_noise} "
             f"({bundle.flipped_train.numel()} flipped), device {step.device}")
    train_batches = bundle.batches("train", config.batch_size, train=True, seed=args.seed,
                                   device=step.device, channels_last=config.channels_last,
                                   augment=config.augment, drop_last=config.compile != "none")
    val_batches = _eval_batches(bundle, "val", step)
    summary = fit(model, train_batches, val_batches, config, step.out / "last.pt", step.device, step.log,
                  run_inputs={"data": data_config})
    input_shape = (spec.channels, spec.image_size, spec.image_size)
    test_acc = accuracy(model, _eval_batches(bundle, "test", step), amp=config.amp)
    model.cpu()
    results = {"acc_test": test_acc, "acc_val": summary["best_val_acc"],
               "macs": count_macs(model, input_shape), "params": count_params(model),
               "train": summary, "train_images": bundle.train_labels.numel(),
               "flipped_train": bundle.flipped_train.numel()}
    write_json(step.out / "flipped_labels.json",
               {"train_indices": bundle.flipped_train.tolist(), "val_indices": bundle.flipped_val.tolist(),
                "note": "indices into the training subset / validation split of this run"})
    save_model(step.out / "model.pt", model, args.arch, build_args, input_shape,
               data=data_config, train=asdict(config), acc_test=test_acc)
    step.log(f"test accuracy {test_acc:.2f}%")
    step.finish(results)
    return 0


def _model_and_data(path: str) -> tuple[torch.nn.Module, dict, data_module.DataBundle]:
    model, meta = load_model(path)
    bundle = _bundle(meta["data"])
    _check_fits(meta["arch"], bundle.spec, meta["build_args"]["in_channels"])
    return model, meta, bundle


def score(args: argparse.Namespace) -> int:
    """Score with each criterion in --criterion (comma list) after each --score-images size;
    writes OUT/{criterion}_si{n}/scores.pt and metrics.json (n = 0 for data-free criteria)."""
    from .criteria import CRITERIA
    from .pruning import model_layout
    from .scoring import score_features, score_model

    step = Step("score", args)
    names = [n for n in args.criterion.split(",") if n]
    for name in names:
        if name not in CRITERIA:
            raise UserError(f"unknown criterion {name!r}", f"use criteria from: {', '.join(CRITERIA)}")
    sizes = sorted({int(n) for n in str(args.score_images).split(",") if n})
    model, meta, bundle = _model_and_data(args.model)
    layout = model_layout(model, tuple(meta["input_shape"]))
    available = bundle.train_labels.numel()
    data_driven = [CRITERIA[n] for n in names if CRITERIA[n].data_driven]
    if data_driven and (not sizes or sizes[0] < 1 or sizes[-1] > available):
        raise UserError(f"score_images {sizes} must be between 1 and the {available} training "
                        f"images of this baseline", f"use at most {available} score images")
    model.to(step.device)
    results: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    if data_driven:
        batches = bundle.batches("train", args.batch_size, train=False, device=step.device)
        batches.shuffle = True
        batches.generator.manual_seed(args.seed)
        results.update(score_features(model, layout.layers, data_driven, batches, sizes,
                                      args.feature_point, progress_callback(step.name, step.log, "scored", "images")))
    for name in names:
        if not CRITERIA[name].data_driven:
            results[(name, 0)] = score_model(model, layout.layers, name, seed=args.seed)[0]
    seconds = round(time.perf_counter() - step.clock, 3)
    for (name, used), scores in results.items():
        folder = step.out / f"{name}_si{used}"
        save_torch(folder / "scores.pt", {
            "format": SCORES_FORMAT, "arch": meta["arch"], "criterion": name,
            "layers": layout.layers, "scores": scores, "score_images": used,
            "feature_point": (args.feature_point or CRITERIA[name].feature_point),
            "channels": {layer: int(s.numel()) for layer, s in scores.items()}})
        record = step.finish({"criterion": name, "score_images_used": used,
                              "layers": len(layout.layers), "seconds_all_criteria": seconds},
                             {"criterion": name, "score_images": used}, write=False)
        write_json(folder / "metrics.json", record)
    step.log(f"{len(results)} score files for {', '.join(names)} in {seconds:.1f}s")
    return 0


def load_scores(path: str, arch: str, layers: list[str], channels: dict[str, int]) -> dict:
    record = load_torch(path, "scores file")
    if not isinstance(record, dict) or record.get("format") != SCORES_FORMAT:
        raise UserError(f"{path} is not an nnprune scores file", "pass scores.pt from `nnprune score`")
    if record["arch"] != arch or record["layers"] != layers or record["channels"] != channels:
        raise UserError(f"scores file {path} was computed for architecture {record['arch']} with "
                        f"{len(record['layers'])} prunable layers, but the model is {arch} with "
                        f"{len(layers)}", "score this model with `nnprune score` and pass that file")
    return record


def prune(args: argparse.Namespace) -> int:
    from .pruning import allocate, apply_removal, build_macs_model, model_layout, parse_scheme

    step = Step("prune", args)
    model, meta, bundle = _model_and_data(args.model)
    input_shape = tuple(meta["input_shape"])
    if meta["removed"]:
        raise UserError(f"{args.model} is already pruned", "prune the unpruned baseline's model.pt")
    layout = model_layout(model, input_shape)
    modules = dict(model.named_modules())
    channels = {n: int(modules[n].weight.shape[0]) for n in layout.layers}
    record = load_scores(args.scores, meta["arch"], layout.layers, channels)
    scheme = parse_scheme(args.pruning, meta["arch"])
    macs_model = build_macs_model(model, input_shape, layout) if scheme.kind == "macs" else None
    removed = allocate(layout, record["scores"], scheme, macs_model)
    test = _eval_batches(bundle, "test", step)
    base = {"macs": count_macs(model, input_shape), "params": count_params(model),
            "acc": meta["acc_test"]}  # measured by `train` on the same clean test set
    model.to(step.device)
    if args.latency:
        base["latency_ms"] = latency_ms(model, input_shape, **RUN_LATENCY)
    apply_removal(model.cpu(), input_shape, removed)
    pruned = {"macs": count_macs(model, input_shape), "params": count_params(model)}
    pruned["acc"] = accuracy(model.to(step.device), test)
    if args.bn_recalibration:
        # Reported beside the raw figure: the saved model keeps its original BN statistics.
        recalibrated = copy.deepcopy(model)
        recalibrate_batchnorm(recalibrated, bundle.batches("train", 256, seed=args.seed,
                                                           device=step.device), args.bn_recalibration)
        pruned["acc_bn_recalibrated"] = accuracy(recalibrated, test)
    if args.latency:
        pruned["latency_ms"] = latency_ms(model, input_shape, **RUN_LATENCY)
    save_model(step.out / "model.pt", model.cpu(), meta["arch"], meta["build_args"], input_shape,
               removed, data=meta["data"], train=meta["train"], pruning=args.pruning,
               criterion=record["criterion"], score_images=record["score_images"],
               acc_test=pruned["acc"], acc_base=base["acc"])
    step.log(f"{args.pruning} by {record['criterion']}: MACs {base['macs']:,} -> {pruned['macs']:,}, "
             f"accuracy {base['acc']:.2f}% -> {pruned['acc']:.2f}%")
    step.finish({"base": base, "pruned": pruned, "criterion": record["criterion"],
                 "score_images": record["score_images"],
                 "removed_channels": {k: len(v) for k, v in removed.items()},
                 "kept_channels": {g.key: g.channels - len(removed[g.key]) for g in layout.groups}},
                {"arch": meta["arch"], "build_args": meta["build_args"], "data": meta["data"]})
    return 0


def finetune(args: argparse.Namespace) -> int:
    step = Step("finetune", args)
    model, meta, bundle = _model_and_data(args.model)
    config = _train_config(args)
    train_batches = bundle.batches("train", config.batch_size, train=True, seed=args.seed,
                                   device=step.device, channels_last=config.channels_last,
                                   augment=config.augment, drop_last=config.compile != "none")
    val_batches = _eval_batches(bundle, "val", step)
    summary = fit(model, train_batches, val_batches, config, step.out / "last.pt", step.device, step.log,
                  run_inputs={"data": meta["data"], "seed": args.seed})
    test_acc = accuracy(model, _eval_batches(bundle, "test", step), amp=config.amp)
    save_model(step.out / "model.pt", model.cpu(), meta["arch"], meta["build_args"],
               tuple(meta["input_shape"]), meta["removed"],
               **{**{k: v for k, v in meta.items() if k not in ("format", "arch", "build_args",
                                                              "input_shape", "removed")},
                  "acc_test": test_acc})
    step.log(f"test accuracy after fine-tuning {test_acc:.2f}%")
    step.finish({"acc_test": test_acc, "acc_val": summary["best_val_acc"], "train": summary})
    return 0


def evaluate(args: argparse.Namespace) -> int:
    step = Step("evaluate", args)
    model, meta, bundle = _model_and_data(args.model)
    input_shape = tuple(meta["input_shape"])
    results = {"macs": count_macs(model, input_shape), "params": count_params(model),
               "acc_test": accuracy(model.to(step.device), _eval_batches(bundle, "test", step))}
    step.finish(results)
    return 0


def aggregate(args: argparse.Namespace) -> int:
    from .aggregate import collect_runs, score_stability
    from .io import write_text

    out = Path(args.out)
    frame = collect_runs([Path(p) for p in args.runs], study_dir=out)
    write_text(out / "runs.csv", frame.to_csv(index=False))
    stability = score_stability([Path(p) for p in args.scores or []])
    write_text(out / "stability.csv", stability.to_csv(index=False))
    print(f"[aggregate] {len(frame)} runs, {len(stability)} stability rows -> {out}")
    return 0


def report(args: argparse.Namespace) -> int:
    from .report import write_report

    written = write_report(Path(args.study_dir), main_pruning=args.main_pruning,
                           main_score_images=args.main_score_images)
    print(f"[report] {len(written)} files under {args.study_dir}")
    return 0


def toy(args: argparse.Namespace) -> int:
    """One toy dataset, every seed: writes OUT/toy.csv, OUT/boundaries.pt, OUT/metrics.json."""
    from .toy import TOY_DATASETS, ToyConfig, check_criteria, run_dataset

    step = Step("toy", args)
    if args.dataset not in TOY_DATASETS:
        raise UserError(f"unknown toy dataset {args.dataset!r}", f"use one of: {', '.join(TOY_DATASETS)}")

    def floats(text):
        return [float(v) for v in text.split(",") if v]

    config = ToyConfig(seeds=list(range(args.seed, args.seed + args.seeds)),
                       train_points=args.train_points, test_points=args.test_points,
                       width=args.width, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                       score_per_class=args.score_per_class, fractions=floats(args.fractions),
                       input_noise=floats(args.input_noise), grid=args.grid,
                       criteria=[c for c in args.criteria.split(",") if c])
    check_criteria(config.criteria)
    frame, boundaries = run_dataset(args.dataset, config)
    from .io import write_text
    write_text(step.out / "toy.csv", frame.to_csv(index=False))
    save_torch(step.out / "boundaries.pt", boundaries)
    base = frame[frame.input_noise == 0].groupby("seed").acc_base.first()
    step.log(f"{args.dataset}: unpruned test accuracy {base.mean():.1f}% (min {base.min():.1f}%), "
             f"{len(frame)} rows")
    step.finish({"rows": len(frame), "acc_base_mean": float(base.mean()), "acc_base_min": float(base.min())})
    return 0


def toy_report(args: argparse.Namespace) -> int:
    """Toy figures and the combined toy.csv from the per-dataset outputs."""
    import pandas as pd

    from .io import write_text
    from .report import save_figure
    from .toy import plot_boundaries, plot_curves

    out = Path(args.out)
    frames = [pd.read_csv(Path(d) / "toy.csv") for d in args.inputs]
    frame = pd.concat(frames, ignore_index=True)
    write_text(out / "toy.csv", frame.to_csv(index=False))
    criteria = list(dict.fromkeys(frame.criterion))
    fractions = sorted(frame.fraction.unique())
    for folder in args.inputs:
        boundaries = load_torch(Path(folder) / "boundaries.pt", "toy boundaries")
        dataset = Path(folder).name
        save_figure(plot_boundaries(boundaries, dataset, criteria, fractions), out, f"boundaries_{dataset}")
    save_figure(plot_curves(frame, "global"), out, "toy_curves")
    if "per-layer" in set(frame.get("allocation", [])):
        save_figure(plot_curves(frame, "per-layer"), out, "toy_curves_per_layer")
    print(f"[toy-report] {len(frame)} rows, figures in {out}")
    return 0


def claims(args: argparse.Namespace) -> int:
    from .claims import write_claims
    from .verdicts import ClaimSettings

    try:
        settings = ClaimSettings.from_mapping(json.loads(args.settings))
    except json.JSONDecodeError as error:
        raise UserError(f"--settings is not JSON: {error}", "pass the config's claims: section as JSON") from None
    written = write_claims(Path(args.study_dir), args.main_pruning, args.main_score_images, settings)
    for claim in written:
        print(f"[claims] {claim.name}: {claim.verdict}")
    return 0
