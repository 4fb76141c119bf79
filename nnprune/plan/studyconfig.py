"""A study config, checked once in two stages before any job runs, each error told in two lines
that name the key, the bad value and the allowed values:

  1. `check_schema` (nnprune.plan.config_schema): the form — keys, types, names, the schema.
     The workflow then runs `snakemake.utils.validate`, which only sets the schema's defaults.
  2. `check`: the meaning — the config checks (nnprune.plan.config_checks), then, with
     `require_data`, the dataset (nnprune.plan.dataset_check). The checks that need the study's
     plan (its cuts, reused results, scratch controls) run where the plan is built:
     nnprune.plan.grid and nnprune.pipeline.before_jobs.

workflow/rules/common.smk runs both; `check_config_file` (`nnprune check-config`) reads a file and
runs both. This module composes the stages and keeps the names that the workflow, the CLI and the
tests import from it."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nnprune.plan.config_checks import (
    check_budgets,
    check_focus,
    check_pruning,
    check_sizes,
    check_sweeps,
    check_test_size,
    check_train,
)
from nnprune.plan.config_file import read_config_file
from nnprune.plan.config_schema import SCHEMA, check_keys, check_schema, load_schema
from nnprune.plan.dataset_check import check_dataset, dataset_missing
from nnprune.plan.references import (
    References,
    entry_of,
    reads_of,
    sources_of,
    study_archs,
    study_criteria,
    study_references,
    toy_criteria,
)

__all__ = ["SCHEMA", "References", "check", "check_config_file", "checked_config_file", "check_dataset", "check_keys",
           "check_pruning", "check_schema", "dataset_missing", "entry_of", "load_schema", "main_label_noise",
           "reads_of", "sources_of", "study_archs", "study_criteria", "toy_criteria"]

def main_label_noise(levels: Iterable[float]) -> float:
    """The main label-noise level of a study: the lowest of its `label_noise` levels (the
    cleanest data, usually 0.0), wherever it stands in the list. The sparse grid's pruning-level
    and score_images sweeps run at it, and the tables and claims use it as the reference."""
    return float(min(levels))


def check(config: dict[str, Any], require_data: bool = True, references: References | None = None) -> None:
    """The checks of a config that passed `check_schema`, each run once; raises UserError naming
    the problem and the fix. `references`: the study's criteria and architectures as
    `check_schema` returned them (found here if None). `require_data`: also check that the dataset
    is on disk (`check_dataset`); the workflow's parse leaves it out, so that `snakemake -n` works
    on a machine without the data."""
    references = study_references(config) if references is None else references
    check_sizes(config)
    check_test_size(config)
    check_train(config)
    check_pruning(config, references)
    check_budgets(config)
    check_sweeps(config, references)
    check_focus(config, references)
    if require_data:
        check_dataset(config)


def checked_config_file(path: str | Path, require_data: bool = False) -> tuple[dict[str, Any], References]:
    """Read and check a config file as the workflow would (YAML syntax with its line and column, then
    `check_schema` and `check`; the dataset under data_root, relative to the working directory, only
    with `require_data`); returns the config (without the schema's defaults) and its `References`."""
    config = read_config_file(path)
    references = check_schema(config)
    check(config, require_data=require_data, references=references)
    return config, references


def check_config_file(path: str | Path, require_data: bool = False) -> str:
    """`checked_config_file`, returning the study name."""
    return checked_config_file(path, require_data)[0]["study"]
