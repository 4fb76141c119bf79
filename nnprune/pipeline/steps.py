"""The steps that run a network: train, score, prune, finetune, evaluate (the study-wide ones are
in `study_steps`). Each is a function of its typed spec (`nnprune.plan.specs`) that writes its outputs
atomically under `spec.out` and returns a `StepResult`; `nnprune.api` exposes them and the CLI
only maps flags onto their specs.

A step sets no process-wide state: torch's thread count and the seeds are set by the caller that
owns the process (`nnprune.api`, through `pipeline.process.set_up_run`), before the step starts."""
from __future__ import annotations

import copy
import datetime as dt
import time
from dataclasses import asdict
from pathlib import Path

import torch

from nnprune import data as data_module
from nnprune.engine.device import resolve_device
from nnprune.engine.metrics import (
    accuracy,
    count_macs,
    count_params,
    eval_batch_size,
    latency_ms,
    model_cost,
    recalibrate_batchnorm,
)
from nnprune.engine.progress import progress_callback
from nnprune.engine.training import fit
from nnprune.errors import UserError
from nnprune.files import write_json
from nnprune.pipeline.provenance import provenance
from nnprune.plan import paths
from nnprune.plan.specs import (
    DATA_KEYS,
    EvaluateSpec,
    FinetuneSpec,
    PruneSpec,
    ScoreSpec,
    StepResult,
    TrainConfig,
    TrainSpec,
    pick,
)
from nnprune.pruning.model_file import load_model, save_model
from nnprune.pruning.score_file import load_scores, save_scores

# `--latency`: a run's latency figure (benchmarks/bench_latency.py times more carefully)
RUN_LATENCY = {"batch_size": 64, "repeats": 10, "warmup": 2}


class Step:
    """Shared bookkeeping: device, start time, and the metrics.json writer."""

    def __init__(self, name: str, spec):
        self.name, self.spec = name, spec
        self.out = Path(spec.out) if getattr(spec, "out", None) else None
        self.started = dt.datetime.now(dt.timezone.utc)
        self.clock = time.perf_counter()
        self.device = resolve_device(spec.device)
        self.sources: dict[str, dict] = {}    # outside code the step ran: name -> target, file, sha256

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    def record(self, results: dict, extra_config: dict | None = None) -> dict:
        """The metrics.json record: the resolved spec (and `extra_config`), results, provenance."""
        config = {"command": self.name, **asdict(self.spec), **(extra_config or {})}
        found = provenance(self.device, self.started, time.perf_counter() - self.clock)
        if self.sources:
            found["sources"] = self.sources
        return {"step": self.name, "config": config, "results": results, "provenance": found}

    def finish(self, results: dict, extra_config: dict | None = None) -> dict:
        """Write the record to OUT/metrics.json (print it when the spec has no `out`); return it."""
        record = self.record(results, extra_config)
        if self.out is not None:
            write_json(self.out / "metrics.json", record)
        else:
            import json
            print(json.dumps(record, indent=2, default=str))
        return record


def outside_sources(found) -> dict[str, dict]:
    """Provenance of the outside criteria or models among `found` (each with `name`, `origin` and
    `file`): {name: {"target": module:function, "file", "sha256"}}."""
    import hashlib

    return {item.name: {"target": item.origin, "file": item.file,
                        "sha256": hashlib.sha256(Path(item.file).read_bytes()).hexdigest()}
            for item in found if item.origin}


def check_prunable(model: torch.nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
    """An outside model must have a convolution whose output channels can be pruned (the
    classifier aside): one clear UserError before anything is trained or written."""
    from nnprune.pruning.layout import model_layout

    modules = dict(model.named_modules())
    try:
        layers = model_layout(model, input_shape).layers
    except IndexError:         # no Linear and no Conv2d at all: classifier_name finds nothing
        layers = []
    if not any(isinstance(modules[layer], torch.nn.Conv2d) for layer in layers):
        raise UserError(f"architecture {name!r} has no prunable convolution (torch-pruning's dependency graph "
                        f"finds {len(layers)} prunable layer(s), none of them an nn.Conv2d)",
                        "give the model at least one nn.Conv2d besides its classifier")


def check_outside(criteria: list[str], archs: dict[str, dict], dataset: str) -> None:
    """Import and check a study's outside criteria and models before any job runs (the workflow's
    onstart): each criterion is a function declared with @criterion, and each model builds, for
    `dataset`'s images, into an nn.Module with a prunable convolution. `archs`: entry -> options."""
    from nnprune.models import build
    from nnprune.models import resolve as resolve_model
    from nnprune.pruning.criteria import resolve as resolve_criterion

    for entry in criteria:
        resolve_criterion(entry)
    shape = data_module.dataset_spec(dataset) if dataset in data_module.DATASETS else None
    for entry, options in archs.items():
        architecture = resolve_model(entry)
        if architecture.origin and shape is not None:
            model = build(entry, num_classes=shape.num_classes, in_channels=shape.channels,
                          width=float((options or {}).get("width", 1.0)))
            check_prunable(model, architecture.name, (shape.channels, shape.image_size, shape.image_size))


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


def _baseline_latency(model: torch.nn.Module, arch: str, build_args: dict, input_shape: tuple[int, ...],
                      device: torch.device) -> dict:
    """The baseline's latency as `prune --latency` times a model: a copy built as `load_model`
    builds it (default memory format, eval mode) on `device`. {"ms": median ms per batch,
    "device", and the RUN_LATENCY settings}, stored with the model for its prune jobs."""
    from nnprune.models import build

    timed = build(arch, **build_args)     # a built-in name or an outside model's short=module:function
    timed.load_state_dict(model.state_dict())
    timed.eval().to(device)
    return {"ms": latency_ms(timed, input_shape, **RUN_LATENCY), "device": str(device), **RUN_LATENCY}


def train(spec: TrainSpec) -> StepResult:
    """Train a baseline; keep the best-by-validation weights. Writes OUT/model.pt (with the
    model's MACs, params, per-layer MACs and, with `latency`, its latency: measured once here
    for every prune job), OUT/metrics.json and OUT/flipped_labels.json."""
    from nnprune.models import build, resolve

    step = Step("train", spec)
    architecture = resolve(spec.arch)       # an outside one is imported and checked here
    step.sources = outside_sources([architecture])
    data_config = {k: getattr(spec, k) for k in DATA_KEYS}
    bundle = _bundle(data_config)
    dataset = bundle.spec
    build_args = {"num_classes": dataset.num_classes, "in_channels": dataset.channels, "width": spec.width}
    model = build(spec.arch, **build_args)
    input_shape = (dataset.channels, dataset.image_size, dataset.image_size)
    if architecture.origin:
        check_prunable(model, architecture.name, input_shape)
    config = pick(TrainConfig, spec)
    step.log(f"{spec.arch} (width {spec.width}) on {dataset.name}: {bundle.train_labels.numel()} train, "
             f"{bundle.val_labels.numel()} val images, label noise {spec.label_noise} "
             f"({bundle.flipped_train.numel()} flipped), device {step.device}")
    train_batches = bundle.batches("train", config.batch_size, train=True, seed=spec.seed,
                                   device=step.device, channels_last=config.channels_last,
                                   augment=config.augment, drop_last=config.compile != "none")
    val_batches = _eval_batches(bundle, "val", step)
    summary = fit(model, train_batches, val_batches, config, step.out / "last.pt", step.device, step.log,
                  run_inputs={"data": data_config})
    test_acc = accuracy(model, _eval_batches(bundle, "test", step), amp=config.amp)
    model.cpu()
    cost = model_cost(model, input_shape)
    latency = (_baseline_latency(model, architecture.entry, build_args, input_shape, step.device)
               if spec.latency else None)
    results = {"acc_test": test_acc, "acc_val": summary["best_val_acc"],
               "macs": cost["macs"], "params": cost["params"],
               "train": summary, "train_images": bundle.train_labels.numel(),
               "flipped_train": bundle.flipped_train.numel()}
    if latency is not None:
        results["latency_ms"] = latency["ms"]
    write_json(step.out / "flipped_labels.json",
               {"train_indices": bundle.flipped_train.tolist(), "val_indices": bundle.flipped_val.tolist(),
                "note": "indices into the training subset / validation split of this run"})
    save_model(step.out / "model.pt", model, architecture.name, build_args, input_shape,
               data=data_config, train=asdict(config), acc_test=test_acc, cost=cost, latency=latency,
               source=architecture.entry if architecture.origin else None)
    step.log(f"test accuracy {test_acc:.2f}%")
    return StepResult(step.finish(results), model.eval())


def _model_and_data(path: str) -> tuple[torch.nn.Module, dict, data_module.DataBundle]:
    model, meta = load_model(path)
    bundle = _bundle(meta["data"])
    _check_fits(meta["arch"], bundle.spec, meta["build_args"]["in_channels"])
    return model, meta, bundle


def score(spec: ScoreSpec) -> StepResult:
    """Score with each of `criteria` after each of `score_images` (data-free criteria once, as
    score_images 0): one folder per score file, named by `paths.score_name`, holding scores.pt
    and metrics.json. Outputs "scores" {(criterion, score_images): {layer: scores}} and "files"
    {(criterion, score_images): path of scores.pt}."""
    from nnprune.pruning.criteria import resolve
    from nnprune.pruning.layout import model_layout
    from nnprune.pruning.scoring import batchnorms, feature_modules, score_features, score_free

    step = Step("score", spec)
    criteria = [resolve(entry) for entry in spec.criteria]   # an outside one is imported and checked here
    names = [criterion.name for criterion in criteria]
    sizes = sorted(set(spec.score_images))
    model, meta, bundle = _model_and_data(spec.model)
    input_shape = tuple(meta["input_shape"])
    layout = model_layout(model, input_shape)
    available = bundle.train_labels.numel()
    data_driven = [c for c in criteria if c.data_driven]
    if data_driven and (not sizes or sizes[0] < 1 or sizes[-1] > available):
        raise UserError(f"score_images {sizes} must be between 1 and the {available} training "
                        f"images of this baseline", f"use at most {available} score images")
    model.to(step.device)
    results: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    if data_driven:
        batches = bundle.batches("train", spec.batch_size, train=False, device=step.device)
        batches.shuffle = True
        batches.generator.manual_seed(spec.seed)
        results.update(score_features(model, layout.layers, data_driven, batches, sizes,
                                      spec.feature_point, progress_callback(step.name, step.log, "scored", "images")))
    free = [c for c in criteria if not c.data_driven]
    if free:
        example = torch.zeros(1, *input_shape, device=step.device)
        bns = batchnorms(model, layout.layers, feature_modules(model, layout.layers, example))
        for criterion in free:
            results[(criterion.name, 0)] = score_free(model, layout.layers, criterion, spec.seed, bns)
    points = {c.name: spec.feature_point or c.feature_point for c in criteria}
    step.sources = outside_sources(criteria)
    seconds = round(time.perf_counter() - step.clock, 3)
    baseline = {"arch": meta["arch"], "build_args": meta["build_args"], "data": meta["data"]}
    for (name, used), scores in results.items():
        folder = step.out / paths.score_name(name, used)
        save_scores(folder / "scores.pt", meta["arch"], name, layout.layers, scores, used, points[name])
        record = step.record({"criterion": name, "score_images_used": used,
                              "layers": len(layout.layers), "seconds_all_criteria": seconds},
                             {"criterion": name, "score_images": used, **baseline})
        write_json(folder / "metrics.json", record)
    step.log(f"{len(results)} score files for {', '.join(names)} in {seconds:.1f}s")
    files = {key: step.out / paths.score_name(*key) / "scores.pt" for key in results}
    summary = step.record({"files": [str(path) for path in files.values()], "seconds": seconds}, baseline)
    return StepResult(summary, outputs={"scores": results, "files": files})


def _base_latency(meta: dict, model: torch.nn.Module, input_shape: tuple[int, ...],
                  device: torch.device) -> float:
    """The baseline's latency (ms) as `train` stored it when it was timed on this device with
    the same settings; otherwise timed now (the model is on `device`)."""
    stored = meta.get("latency")
    if stored and stored["device"] == str(device) and all(stored.get(k) == v for k, v in RUN_LATENCY.items()):
        return stored["ms"]
    return latency_ms(model, input_shape, **RUN_LATENCY)


def prune(spec: PruneSpec) -> StepResult:
    """Remove the lowest-scored channels of a baseline by `pruning`; writes OUT/model.pt and
    OUT/metrics.json with MACs, params and test accuracy (%) before and after (and with
    `bn_recalibration`, after re-estimating BatchNorm statistics; with `latency`, ms per batch).
    The baseline's figures are those `train` measured and stored with it."""
    from nnprune.plan.schemes import parse_scheme
    from nnprune.pruning.allocation import allocate, build_macs_model
    from nnprune.pruning.layout import layout_and_graph
    from nnprune.pruning.removal import apply_removal

    step = Step("prune", spec)
    model, meta, bundle = _model_and_data(spec.model)
    input_shape = tuple(meta["input_shape"])
    if meta["removed"]:
        raise UserError(f"{spec.model} is already pruned", "prune the unpruned baseline's model.pt")
    layout, graph = layout_and_graph(model, input_shape)   # one dependency graph for the whole job
    modules = dict(model.named_modules())
    channels = {n: int(modules[n].weight.shape[0]) for n in layout.layers}
    record = load_scores(spec.scores, meta["arch"], layout.layers, channels)
    scheme = parse_scheme(spec.pruning, meta["arch"])
    # A baseline written before `train` stored its cost: count it here.
    cost = meta.get("cost") or model_cost(model, input_shape)
    macs_model = (build_macs_model(model, input_shape, layout, cost["layer_macs"], graph)
                  if scheme.kind in ("macs", "uniform-macs") else None)
    removed = allocate(layout, record["scores"], scheme, macs_model)
    test = _eval_batches(bundle, "test", step)
    base = {"macs": cost["macs"], "params": cost["params"],
            "acc": meta["acc_test"]}  # measured by `train` on the same clean test set
    model.to(step.device)
    if spec.latency:
        base["latency_ms"] = _base_latency(meta, model, input_shape, step.device)
    apply_removal(model.cpu(), input_shape, removed, graph)
    pruned = {"macs": count_macs(model, input_shape), "params": count_params(model)}
    pruned["acc"] = accuracy(model.to(step.device), test)
    if spec.bn_recalibration:
        # Reported beside the raw figure: the saved model keeps its original BN statistics.
        recalibrated = copy.deepcopy(model)
        recalibrate_batchnorm(recalibrated, bundle.batches("train", 256, seed=spec.seed,
                                                           device=step.device), spec.bn_recalibration)
        pruned["acc_bn_recalibrated"] = accuracy(recalibrated, test)
    if spec.latency:
        pruned["latency_ms"] = latency_ms(model, input_shape, **RUN_LATENCY)
    save_model(step.out / "model.pt", model.cpu(), meta["arch"], meta["build_args"], input_shape,
               removed, source=meta.get("source"), data=meta["data"], train=meta["train"], pruning=spec.pruning,
               criterion=record["criterion"], score_images=record["score_images"],
               acc_test=pruned["acc"], acc_base=base["acc"])
    step.log(f"{spec.pruning} by {record['criterion']}: MACs {base['macs']:,} -> {pruned['macs']:,}, "
             f"accuracy {base['acc']:.2f}% -> {pruned['acc']:.2f}%")
    metrics = step.finish({"base": base, "pruned": pruned, "criterion": record["criterion"],
                           "score_images": record["score_images"],
                           "removed_channels": {k: len(v) for k, v in removed.items()},
                           "kept_channels": {g.key: g.channels - len(removed[g.key]) for g in layout.groups}},
                          {"arch": meta["arch"], "build_args": meta["build_args"], "data": meta["data"],
                           "train": meta.get("train")})
    return StepResult(metrics, model.eval())


def finetune(spec: FinetuneSpec) -> StepResult:
    """Fine-tune a (pruned) model; writes OUT/model.pt and OUT/metrics.json (test accuracy, %)."""
    step = Step("finetune", spec)
    model, meta, bundle = _model_and_data(spec.model)
    config = pick(TrainConfig, spec)
    train_batches = bundle.batches("train", config.batch_size, train=True, seed=spec.seed,
                                   device=step.device, channels_last=config.channels_last,
                                   augment=config.augment, drop_last=config.compile != "none")
    if spec.budget is not None and config.batches_per_epoch and config.batches_per_epoch > len(train_batches):
        raise UserError(f"fine-tuning budget {spec.budget} is more than one epoch ({len(train_batches)} batches "
                        f"of {config.batch_size} images)", f"use a budget in epochs, e.g. "
                        f"{max(1, round(config.batches_per_epoch / len(train_batches)))}e")
    val_batches = _eval_batches(bundle, "val", step)
    summary = fit(model, train_batches, val_batches, config, step.out / "last.pt", step.device, step.log,
                  run_inputs={"data": meta["data"], "seed": spec.seed})
    test_acc = accuracy(model, _eval_batches(bundle, "test", step), amp=config.amp)
    save_model(step.out / "model.pt", model.cpu(), meta["arch"], meta["build_args"],
               tuple(meta["input_shape"]), meta["removed"],
               **{**{k: v for k, v in meta.items() if k not in ("format", "arch", "build_args",
                                                              "input_shape", "removed")},
                  "acc_test": test_acc})
    step.log(f"test accuracy after fine-tuning {test_acc:.2f}%")
    # What was fine-tuned, from the model file: the run stands on its own without its path.
    run = {key: meta.get(key) for key in ("arch", "build_args", "data", "pruning", "criterion", "score_images")}
    metrics = step.finish({"acc_test": test_acc, "acc_val": summary["best_val_acc"], "train": summary}, run)
    return StepResult(metrics, model.eval())


def evaluate(spec: EvaluateSpec) -> StepResult:
    """Clean-test accuracy (%), MACs and params of a model; OUT/metrics.json, or printed."""
    step = Step("evaluate", spec)
    model, meta, bundle = _model_and_data(spec.model)
    input_shape = tuple(meta["input_shape"])
    results = {"macs": count_macs(model, input_shape), "params": count_params(model),
               "acc_test": accuracy(model.to(step.device), _eval_batches(bundle, "test", step))}
    return StepResult(step.finish(results), model.cpu().eval())
