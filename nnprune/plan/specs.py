"""Typed specs of the pipeline steps: every setting of a step, with its default, defined once.

A step of `nnprune.api` is a function of one of these dataclasses. The command line
(`nnprune.pipeline.cli`) builds its flags from them (each field's name, default, `choices` and `help`
metadata), the workflow passes each job's spec as JSON (`nnprune.plan.jobspecs`), and a test holds
the config schema equal to them. Importable without torch, so `import nnprune.api` stays light.

Field names are the flags (`batch_size` is `--batch-size`) and the keys of the `config` a step
records in its metrics.json.
"""
from __future__ import annotations

import copy
import functools
import json
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from nnprune.errors import UserError
from nnprune.plan.names import (
    ARCHITECTURES,
    CRITERION_SOURCES,
    DATASET_NAMES,
    DEFAULT_FOCUS,
    NOISE_KINDS,
    TOY_CRITERIA,
    TOY_DATASET_NAMES,
)
from nnprune.plan.plugins import OpenChoices, ShortNames

CRITERION_CHOICES = OpenChoices(CRITERION_SOURCES, "criterion")   # built-in, or from outside (plugins)
ARCH_CHOICES = OpenChoices(ARCHITECTURES, "model")
SOURCES_HELP = ("SHA-256 of each outside module this job runs, by short name (the workflow's rerun "
                "trigger: a changed module reruns its jobs)")

AMP_DTYPES = ("auto", "bfloat16", "float16")
SCHEDULES = ("cosine", "cosine-batch", "step")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def option(default: Any = MISSING, help: str = "", choices: typing.Iterable[str] | None = None,
           aliases: tuple[str, ...] = ()) -> Any:
    """A spec field: its default (none: required; a list default is copied for each instance),
    the command-line help (with units), the allowed values (of each item, for a list) and extra
    flag names."""
    if choices is not None and not isinstance(choices, tuple):
        choices = tuple(choices)
    metadata = {"help": help, "choices": choices,
                "aliases": tuple(aliases)}
    if isinstance(default, (list, dict)):     # mutable: each spec gets its own copy
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def default_of(spec_field: Field) -> Any:
    """A field's default value, or MISSING for a required field."""
    if spec_field.default_factory is not MISSING:
        return spec_field.default_factory()
    return spec_field.default


def check_choices(spec: Any) -> None:
    """Raise a UserError naming the field when a value (or a list item) is not one of its choices."""
    for spec_field in fields(spec):
        allowed = spec_field.metadata.get("choices")
        value = getattr(spec, spec_field.name)
        if allowed is None or value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item not in allowed:
                words = allowed.describe() if hasattr(allowed, "describe") else ", ".join(map(str, allowed))
                raise UserError(f"{spec_field.name} {item!r} is not one of the allowed values",
                                f"use one of: {words}")


class Spec:
    """Base of the step specs: values are checked against their choices when a spec is made."""

    def __post_init__(self) -> None:
        check_choices(self)


# ---------------------------------------------------------------- building blocks
@dataclass(kw_only=True)
class RunOptions:
    device: str = option("auto", "auto (cuda if available), cpu, cuda or cuda:N")
    seed: int = option(0, "run seed")
    threads: int | None = option(None, "torch CPU threads (None: torch's default)")
    deterministic: bool = option(False, "deterministic kernels (matters on CUDA; CPU runs are "
                                        "deterministic anyway)")


@dataclass(kw_only=True)
class DataSpec:
    dataset: str = option("fashion-mnist", "dataset", choices=DATASET_NAMES)
    data_root: str = option("data", "directory holding the datasets")
    train_size: int | None = option(None, "number of training images (None: all but the validation split)")
    val_size: int = option(5000, "training images held out for checkpoint selection")
    test_size: int | None = option(None, "evaluate on a fixed random subset of this many test images, "
                                         "the same for every run (None: the whole test set)")
    label_noise: float = option(0.0, "fraction of training (and validation) labels flipped, in [0, 1)")
    noise_kind: str = option("symmetric", "symmetric: uniform over other classes; pairwise: a fixed "
                                          "similar class", choices=NOISE_KINDS)
    split_seed: int = option(0, "seed of the validation/training split")


DATA_KEYS = ("dataset", "data_root", "train_size", "val_size", "test_size", "label_noise",
             "noise_kind", "seed", "split_seed")   # a model's `data` record: DataSpec and the run seed


@dataclass
class TrainConfig:
    """SGD optimisation settings of `train` and `finetune` (`nnprune.engine.training.fit`)."""
    epochs: int = option(10, "epochs")
    batch_size: int = option(128, "batch size (images)")
    lr: float = option(0.1, "initial SGD learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(5e-4, "weight decay")
    schedule: str = option("cosine", "cosine annealing stepped once per epoch; cosine-batch: stepped after "
                                     "every batch, reaching 0 at the run's last batch (a 1-epoch or "
                                     "30-batch fine-tune anneals too); step: x0.1 at 50% and 75% of the epochs",
                           choices=SCHEDULES)
    label_smoothing: float = option(0.0, "label smoothing")
    amp: bool = option(False, "mixed precision (autocast in amp_dtype)")
    amp_dtype: str = option("auto", "auto: bfloat16 on the CPU and on GPUs that support it, else float16",
                            choices=AMP_DTYPES)
    channels_last: bool = option(False, "channels_last memory format")
    compile: str = option("none", "torch.compile the training step in this mode (CUDA; reduce-overhead "
                                  "adds CUDA graphs); batches keep one shape (the last partial one is "
                                  "dropped)", choices=COMPILE_MODES)
    augment: str = option("default", "training augmentation: the dataset's crop+flip (default), flips "
                                     "only, none", choices=("default", "flip", "none"))
    batches_per_epoch: int | None = option(None, "stop each epoch after this many batches (None: all)")

    def validate(self) -> None:
        check_choices(self)
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise UserError("epochs must be >= 0, batch_size >= 1 and lr > 0",
                            f"got epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}")


def pick(cls: type, spec: Any) -> Any:
    """An instance of dataclass `cls` from the same-named fields of `spec` (e.g. the TrainConfig
    of a TrainSpec)."""
    return cls(**{f.name: getattr(spec, f.name) for f in fields(cls)})


# ---------------------------------------------------------------- the steps
@dataclass(kw_only=True)
class TrainSpec(Spec, DataSpec, TrainConfig, RunOptions):
    """`train`: a baseline; best-by-validation weights, cost measured once for every prune job."""
    arch: str = option(help="architecture: built-in, or [short=]package.module:function returning an nn.Module",
                       choices=ARCH_CHOICES)
    sources: dict = option({}, SOURCES_HELP)
    width: float = option(1.0, "channel width multiplier")
    latency: bool = option(False, "also time the trained model (batch 64, median of 10 passes, ms) "
                                  "for `prune --latency`")
    out: str = option(help="output directory (model.pt, metrics.json)")


@dataclass(kw_only=True)
class ScoreSpec(Spec, RunOptions):
    """`score`: every prunable channel of a model, with each criterion at each score_images."""
    model: str = option(help="model.pt of the trained baseline")
    criteria: list[str] = option(help="criteria (listed above, or [short=]package.module:function)",
                                 choices=CRITERION_CHOICES, aliases=("--criterion",))
    sources: dict = option({}, SOURCES_HELP)
    score_images: list[int] = option([1280], "training images used by data-driven criteria; "
                                             "several sizes are scored in one pass")
    feature_point: str | None = option(None, "where feature maps are read (None: the criterion's own)",
                                       choices=("bn", "relu"))
    batch_size: int = option(128, "scoring batch size (images)")
    out: str = option(help="output directory: one folder (scores.pt, metrics.json) per criterion "
                           "and score_images, named by nnprune.plan.paths.score_name")


@dataclass(kw_only=True)
class PruneSpec(Spec, RunOptions):
    """`prune`: remove the lowest-scored channels physically; cost and accuracy before and after."""
    model: str = option(help="model.pt of the baseline")
    scores: str = option(help="scores.pt from `nnprune score`")
    pruning: str = option(help="uniform:<rate> | rates:<HRank string> | preset:hrank | macs:<fraction> | "
                               "uniform-macs:<fraction>, optionally :round_to=<n> (and for macs: "
                               ":max_share=<s>)")
    latency: bool = option(False, "also measure latency (ms) before and after pruning")
    bn_recalibration: int = option(0, "also report accuracy after re-estimating BatchNorm statistics "
                                      "on this many training images (no weight updates; 0: off)")
    out: str = option(help="output directory (model.pt, metrics.json)")


@dataclass(kw_only=True)
class FinetuneSpec(Spec, TrainConfig, RunOptions):
    """`finetune`: SGD on a pruned model (the fine-tuning defaults of epochs and lr)."""
    model: str = option(help="model.pt of the pruned model")
    epochs: int = option(5, "epochs")
    lr: float = option(0.01, "initial SGD learning rate")
    budget: str | None = option(None, "fine-tuning budget, <n>e (epochs) or <n>b (batches, at most one "
                                      "epoch); sets epochs and batches_per_epoch (None: use those)")
    out: str = option(help="output directory (model.pt, metrics.json)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.budget is not None:      # the budget's schedule, and its canonical form (30B -> 30b)
            from nnprune.plan.budgets import parse_budget

            parsed = parse_budget(self.budget)
            self.budget = parsed.text
            for name, value in parsed.schedule().items():
                setattr(self, name, value)


@dataclass(kw_only=True)
class ScratchSpec(Spec, TrainConfig, RunOptions):
    """`scratch`: a pruned model's architecture, re-initialised and trained on its baseline's data
    with a baseline's recipe (Liu et al. 2019's Scratch-E when `epochs` is the baseline's epochs
    plus the fine-tune's); the from-scratch control of a pruned and fine-tuned run."""
    model: str = option(help="model.pt of the pruned model whose architecture is trained anew")
    out: str = option(help="output directory (model.pt, metrics.json)")


@dataclass(kw_only=True)
class EvaluateSpec(Spec, RunOptions):
    """`evaluate`: clean-test accuracy (%), MACs and params of a model."""
    model: str = option(help="model.pt to evaluate")
    out: str | None = option(None, "write metrics.json here (None: print it)")


@dataclass(kw_only=True)
class AggregateSpec(Spec):
    """`aggregate`: every run's metrics into runs.csv, every score file into stability.csv."""
    runs: list[str] = option(help="pruned-model metrics.json files")
    budgets: list[str] = option([], "fine-tuning budgets whose finetuned-{budget}/metrics.json beside each "
                                    "pruned model is read (one runs.csv row each); none given: every "
                                    "finetuned-* folder found there")
    scores: list[str] = option([], "scores.pt files (stability analysis)")
    scratch: list[str] = option([], "metrics.json files of from-scratch controls (`nnprune scratch`): "
                                    "one runs.csv row each, kind scratch")
    out: str = option(help="study directory for runs.csv and stability.csv")


@dataclass(kw_only=True)
class ReportSpec(Spec):
    """`report`: tables and figures from runs.csv and stability.csv."""
    study_dir: str = option(help="results/{study}")
    main_pruning: str | None = option(None, "main pruning level (None: the first)")
    main_score_images: int | None = option(None, "main score_images (None: the largest)")
    criteria: list[str] = option([], "the config's criteria, in the order every figure keeps (the focus "
                                     "criterion first; none: nnprune/plan/names.py's order)",
                                 choices=ShortNames(CRITERION_SOURCES, "criterion"))
    focus: str = option(DEFAULT_FOCUS, "the criterion the claims test (claims.focus): first in every figure, "
                                       "drawn thicker and named in bold")
    settings: dict = option({}, "the config's `claims:` section, as `nnprune claims --settings` takes it: its "
                                "margins.accuracy_pp, alpha, power and regime_gap_pp rank the leaderboard; keys "
                                "left out take their defaults")
    tables: list[str] | None = option(None, "the tables to write, as the workflow declares them "
                                            "(nnprune.plan.grid.report_outputs): exactly these, or an error naming "
                                            "any the data cannot give (None: every table the data give)")
    figures: list[str] | None = option(None, "the figures to draw, as the workflow declares them: exactly these, "
                                             "or an error naming any the data cannot give (None: every figure "
                                             "the data give)")


@dataclass(kw_only=True)
class StudyScale(Spec):
    """What a study ran, from its config (`nnprune.plan.jobspecs.claims_scale`), for claims.md's "What
    this scale cannot show"; a field left at its default is not stated there."""
    dataset: str | None = option(None, "dataset of the CNN baselines", choices=DATASET_NAMES)
    archs: list[str] = option([], "architectures of the CNN baselines", choices=ShortNames(ARCHITECTURES, "model"))
    widths: list[float] = option([], "channel width multiplier of each of `archs`")
    train_sizes: list[int | None] = option([], "training images per clean baseline (None: all but the "
                                               "validation split)")
    train_epochs: int | None = option(None, "training epochs of the clean baselines")
    seeds: list[int] = option([], "seeds of the clean baselines")
    noise_seeds: list[int] = option([], "seeds of the noisy baselines ([]: no noisy baselines)")
    noise_train_sizes: list[int | None] = option([], "training images per noisy baseline (grid.noise_train_size)")
    noise_epochs: int | None = option(None, "training epochs of the noisy baselines (grid.noise_train)")
    budgets: list[str] = option([], "fine-tuning budgets, <n>e / <n>b (budgets.Budget.text)")
    toy_width: float | None = option(None, "hidden width multiplier of the toy MLP (None: no toy study)")
    toy_steps: int | None = option(None, "Adam steps of the toy MLP")
    toy_seeds: int | None = option(None, "seeds of the toy study")


@dataclass(kw_only=True)
class ClaimsSpec(Spec):
    """`claims`: verdicts on the paper's claims, claims.md, claims.json and forest plots."""
    study_dir: str = option(help="results/{study}")
    main_pruning: str = option(help="the study's main pruning level")
    main_score_images: int = option(help="the main score_images")
    settings: dict = option({}, "the config's `claims:` section: alpha, power, margins {accuracy_pp, "
                                "spearman, boundary_pp}, primary {toy_fraction, score_images, label_noise, "
                                "noise_kind, pruning}; keys left out take their defaults (config/README.md)")
    scale: dict = option({}, "what the study ran, the fields of StudyScale (dataset, archs, widths, "
                             "train_sizes, train_epochs, seeds, noise_seeds, noise_train_sizes, noise_epochs, "
                             "budgets, toy_width, toy_steps, toy_seeds), for claims.md's limits; {}: the "
                             "limits state no settings")


@dataclass(kw_only=True)
class ToySpec(Spec, RunOptions):
    """`toy`: the 2-D decision-boundary experiment on one toy dataset, every seed."""
    dataset: str = option(help="toy dataset", choices=TOY_DATASET_NAMES)
    seeds: int = option(10, "number of seeds, from seed on")
    width: float = option(1.0, "hidden width multiplier; 1.0 = 2-1000-1000-1000-C")
    steps: int = option(300, "Adam steps")
    lr: float = option(1e-3, "Adam learning rate")
    batch_size: int = option(128, "Adam batch size (points)")
    train_points: int = option(1000, "training points")
    test_points: int = option(1000, "test points")
    score_per_class: int = option(10, "reference (scoring) samples per class")
    fractions: list[float] = option([0.1, 0.25, 0.5, 0.75], "fractions of hidden units removed")
    input_noise: list[float] = option([0.01, 0.1, 0.3], "Gaussian input-noise sigmas on test inputs")
    grid: int = option(64, "grid points per axis of the decision-boundary plot")
    criteria: list[str] = option(list(TOY_CRITERIA), "criteria (chip needs spatial maps: not on MLP units)",
                                 choices=CRITERION_CHOICES)
    sources: dict = option({}, SOURCES_HELP)
    allocations: list[str] = option(["global", "per-layer"], "global (the claim's setting) and/or the "
                                    "same fraction in every layer", choices=("global", "per-layer"))
    out: str = option(help="output directory (toy.csv, boundaries.pt, metrics.json)")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))


@dataclass(kw_only=True)
class ToyReportSpec(Spec):
    """`toy-report`: toy figures and the combined toy.csv from `toy` outputs."""
    inputs: list[str] = option(help="output directories of `nnprune toy`")
    focus: str = option(DEFAULT_FOCUS, "the criterion the claims test (claims.focus): drawn thicker")
    out: str = option(help="output directory")


STEP_SPECS: dict[str, type] = {
    "train": TrainSpec, "score": ScoreSpec, "prune": PruneSpec, "finetune": FinetuneSpec,
    "scratch": ScratchSpec, "evaluate": EvaluateSpec, "aggregate": AggregateSpec, "report": ReportSpec,
    "claims": ClaimsSpec, "toy": ToySpec, "toy-report": ToyReportSpec}


@dataclass
class StepResult:
    """What a step of `nnprune.api` returns.

    metrics: the record the step writes to metrics.json (step, config, results, provenance;
      for score, one summary record; empty for aggregate, report, claims and toy-report).
    model: train, prune, finetune, evaluate: the model on the CPU in eval mode; else None.
    outputs: step-specific objects, named: score {"scores": {(criterion, score_images):
      {layer: tensor}}, "files": {(criterion, score_images): scores.pt path}}; aggregate
      {"runs", "stability"} DataFrames; report {"files"}; claims {"claims"}; toy {"frame",
      "boundaries"}; toy-report {"frame"}.
    """
    metrics: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def results(self) -> dict[str, Any]:
        return self.metrics.get("results", {})


# ---------------------------------------------------------------- specs from plain values
@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_type(cls: type, name: str) -> tuple[type, bool, bool]:
    """(scalar type, is a list, may be None) of field `name` of spec class `cls`."""
    hint = _type_hints(cls)[name]
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, members[0]
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional


def _coerce(name: str, kind: type, value: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"setting {name} = {value!r} is not a {kind.__name__}",
                        f"give {name} as a {kind.__name__}")
    return value


def from_values(cls: type, values: dict[str, Any]) -> Any:
    """A `cls` spec from plain values (JSON or parsed flags): unknown and missing settings,
    values of the wrong type and values outside their choices raise a UserError."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)}", f"use settings from: {', '.join(known)}")
    missing = [name for name, f in known.items() if name not in values and default_of(f) is MISSING]
    if missing:
        raise UserError(f"missing required setting(s): {', '.join('--' + m.replace('_', '-') for m in missing)}",
                        "give them as flags or in the --spec JSON")
    coerced = {}
    for name, value in values.items():
        kind, is_list, optional = field_type(cls, name)
        if value is None and optional:
            coerced[name] = None
        elif is_list:
            if not isinstance(value, (list, tuple)):
                raise UserError(f"setting {name} = {value!r} is not a list", f"give {name} as a list")
            coerced[name] = [_coerce(name, kind, item) for item in value]
        else:
            coerced[name] = _coerce(name, kind, value)
    return cls(**coerced)


def read_spec(text: str) -> dict[str, Any]:
    """Spec values from a JSON object given inline ('{"epochs": 6}') or in a file."""
    source = text if text.lstrip().startswith("{") else None
    if source is None:
        try:
            source = Path(text).read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot read spec file {text}: {error.strerror}",
                            "pass a JSON file or an inline JSON object") from None
    try:
        values = json.loads(source)
    except json.JSONDecodeError as error:
        raise UserError(f"spec is not valid JSON: {error}", "pass a JSON object of settings") from None
    if not isinstance(values, dict):
        raise UserError("spec is not a JSON object", 'pass an object such as {"epochs": 6}')
    return values


def spec_json(cls: type, values: dict[str, Any]) -> str:
    """One line of JSON for the `--spec` of a `cls` job, keys sorted (stable shell text); the keys
    must be fields of `cls`."""
    unknown = sorted(set(values) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    return json.dumps(values, sort_keys=True, separators=(",", ":"))
