"""Checks of a study config that a JSON schema cannot express, with messages that name the key,
the bad value and the allowed values. Called by workflow/rules/common.smk before any job runs,
right after `snakemake.utils.validate` has applied workflow/schemas/config.schema.yaml."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: Path = SCHEMA) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def main_label_noise(levels: Iterable[float]) -> float:
    """The main label-noise level of a study: the lowest of its `label_noise` levels (the
    cleanest data, usually 0.0), wherever it stands in the list. The sparse grid's pruning-level
    and score_images sweeps run at it, and the tables and claims use it as the reference."""
    return float(min(levels))


def check_keys(config: dict[str, Any], schema: dict | None = None) -> None:
    """Unknown top-level keys and unknown criteria/architectures, named with the allowed ones."""
    from .names import ARCHITECTURES, CRITERION_SOURCES

    schema = schema or load_schema()
    allowed = sorted(schema["properties"])
    for key in config:
        if key not in schema["properties"]:
            raise UserError(f"config key {key!r} is not a known setting",
                            f"remove it or use one of: {', '.join(allowed)}")
    for name in config.get("criteria", []):
        if name not in CRITERION_SOURCES:
            raise UserError(f"config key 'criteria': unknown criterion {name!r}",
                            f"use criteria from: {', '.join(CRITERION_SOURCES)}")
    for name in config.get("archs", {}) or {}:
        if name not in ARCHITECTURES:
            raise UserError(f"config key 'archs': unknown architecture {name!r}",
                            f"use architectures from: {', '.join(sorted(ARCHITECTURES))}")


def check_pruning(config: dict[str, Any]) -> None:
    """Every pruning string parses, and per-layer rate strings fit each architecture."""
    from .schemes import parse_scheme

    for arch in config["archs"]:
        for text in config["pruning"]:
            scheme = parse_scheme(text, arch)
            if scheme.kind == "rates":
                _check_rates_length(arch, scheme)
    for key in ("main_pruning",):
        value = config.get("grid", {}).get(key)
        if value is not None and value not in config["pruning"]:
            raise UserError(f"config key 'grid.{key}': {value!r} is not one of the pruning levels",
                            f"use one of: {', '.join(config['pruning'])}")
    for value in config.get("grid", {}).get("prune_criteria", []):
        if value not in config["criteria"]:
            raise UserError(f"config key 'grid.prune_criteria': {value!r} is not one of the criteria",
                            f"use criteria from: {', '.join(config['criteria'])}")
    for value in config.get("grid", {}).get("noise_pruning", []):
        if value not in config["pruning"]:
            raise UserError(f"config key 'grid.noise_pruning': {value!r} is not one of the pruning levels",
                            f"use one of: {', '.join(config['pruning'])}")
    for value in config["finetune"].get("pruning", []):
        if value not in config["pruning"]:
            raise UserError(f"config key 'finetune.pruning': {value!r} is not one of the pruning levels",
                            f"use one of: {', '.join(config['pruning'])}")


def _check_rates_length(arch: str, scheme) -> None:
    """A rate string's length against the architecture's prunable layers (or rate units), from
    the torch-free table in nnprune.schemes: parsing a config builds no model."""
    from .schemes import PRUNABLE_LAYERS, RATE_UNIT_COUNTS, check_rates_count

    try:
        check_rates_count(len(scheme.value), PRUNABLE_LAYERS[arch], arch, RATE_UNIT_COUNTS.get(arch))
    except UserError as error:
        raise UserError(f"config key 'pruning', architecture {arch}: {error.problem}", error.fix) from None


def check_budgets(config: dict[str, Any]) -> None:
    """finetune.budgets: each one well formed (count >= 1, unit e or b), none repeated, and not
    set beside finetune.epochs / batches_per_epoch (nnprune.budgets)."""
    from .budgets import study_budgets

    try:
        study_budgets(config.get("finetune") or {})
    except UserError as error:
        raise UserError(f"config key 'finetune.budgets': {error.problem}", error.fix) from None


def check_sizes(config: dict[str, Any]) -> None:
    grid = config.get("grid", {})
    main_si = grid.get("main_score_images")
    if main_si is not None and main_si not in config["score_images"]:
        raise UserError(f"config key 'grid.main_score_images': {main_si} is not in score_images",
                        f"use one of: {config['score_images']}")
    unknown = sorted(set(grid.get("score_sweep", [])) - set(config["score_images"]))
    if unknown:
        raise UserError(f"config key 'grid.score_sweep': {unknown} not in score_images",
                        f"use values from: {config['score_images']}")
    sizes = [s for s in [*config["train_size"], grid.get("noise_train_size")] if s is not None]
    if sizes and max(config["score_images"]) > min(sizes):
        raise UserError(f"config key 'score_images': {max(config['score_images'])} is larger than "
                        f"the smallest train_size {min(sizes)}",
                        "score with at most train_size images (scoring data comes from the training set)")


def dataset_missing(config: dict[str, Any], workdir: Path = Path(".")) -> str | None:
    """None when the dataset is readable under data_root, else what is missing."""
    from .data.datasets import DATASETS

    root = workdir / config.get("data_root", "data")
    name = config["dataset"]
    if name == "imagenet":
        needed = [root / "train", root / "val"]
    elif name in ("fashion-mnist", "mnist"):
        folder = "FashionMNIST" if name == "fashion-mnist" else "MNIST"
        needed = [root / folder / "raw" / "train-images-idx3-ubyte"]
    else:
        needed = [root / DATASETS[name].folder]
    missing = [str(p) for p in needed if not p.exists()]
    return ", ".join(missing) or None


def check(config: dict[str, Any], require_data: bool = True) -> None:
    """All semantic checks; raises UserError naming the problem and the fix."""
    check_keys(config)
    check_sizes(config)
    check_pruning(config)
    check_budgets(config)
    if require_data:
        check_dataset(config)


def check_dataset(config: dict[str, Any]) -> None:
    """Raises UserError when the study's dataset is not readable under data_root."""
    missing = dataset_missing(config)
    if missing:
        fix = ("run `make setup` (or `nnprune fetch-data --dataset fashion-mnist --root DATA`)"
               if config["dataset"] == "fashion-mnist" else
               f"put {config['dataset']} under data_root={config.get('data_root', 'data')} "
               "or set data_root in the config")
        raise UserError(f"dataset {config['dataset']} not found: missing {missing}", fix)
