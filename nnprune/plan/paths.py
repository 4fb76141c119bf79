"""Where a study's files live, from a run's parameters: the one definition of every path template.

The workflow (workflow/rules/*.smk) declares its outputs with these functions and the steps write
with them, so a layout change is made here once. Parameters go in, paths come out; nothing reads a
parameter back out of a path (a run's `metrics.json` holds what it was). Importable without
torch: the workflow builds every path at DAG time.

    {study}/baselines/{baseline}/                       model.pt, metrics.json   (`train`)
    {study}/scores/{baseline}/{score_name}/             scores.pt, metrics.json  (`score`)
    {study}/runs/{baseline}/{score_name}/{pruning}/     pruned/, finetuned-{budget}/  (`prune`, `finetune`)
    {study}/toy/{toy dataset}/                          toy.csv, boundaries.pt   (`toy`)

where score_name is the criterion and score_images (e.g. nuclear_si2048), pruning the scheme's
slug (`schemes.scheme_slug`, e.g. macs-0.3) and budget the fine-tuning budget (`budgets`, e.g. 3e).

Arguments may be Snakemake wildcards ("{base}"): the functions only format strings.
"""
from __future__ import annotations

from pathlib import Path

PRUNED = "pruned"
FINETUNED = "finetuned"


def baseline_id(dataset: str, arch: str, train_size: int | None | str, label_noise: float | str,
                seed: int | str, noise_kind: str = "symmetric") -> str:
    """The name of a baseline: one per (dataset, arch, train_size, label_noise, noise_kind, seed);
    train_size None (all training images) reads "all". A noise kind other than symmetric follows
    the level (ln0.4-pairwise); clean labels have no kind."""
    size = "all" if train_size is None else train_size
    kind = f"-{noise_kind}" if noise_kind != "symmetric" and float(label_noise) > 0 else ""
    return f"{dataset}__{arch}__n{size}__ln{label_noise}{kind}__s{seed}"


def score_name(criterion: str, score_images: int | str) -> str:
    """A score file's folder: the criterion and the images it was scored on (0: data-free)."""
    return f"{criterion}_si{score_images}"


def baseline_dir(study_dir: str, baseline: str) -> str:
    return f"{study_dir}/baselines/{baseline}"


def scores_dir(study_dir: str, baseline: str) -> str:
    """The output folder of a baseline's score jobs (one subfolder per score file)."""
    return f"{study_dir}/scores/{baseline}"


def score_dir(study_dir: str, baseline: str, criterion: str, score_images: int | str) -> str:
    return f"{scores_dir(study_dir, baseline)}/{score_name(criterion, score_images)}"


def run_name(baseline: str, criterion: str, score_images: int | str, pruning_slug: str) -> str:
    """A run's path below runs/ (also names its logs and benchmark files)."""
    return f"{baseline}/{score_name(criterion, score_images)}/{pruning_slug}"


def run_dir(study_dir: str, baseline: str, criterion: str, score_images: int | str,
            pruning_slug: str) -> str:
    """A run: a baseline pruned by one score file at one pruning level (`schemes.scheme_slug`);
    `pruned/` and one `finetuned-{budget}/` per fine-tuning budget below it."""
    return f"{study_dir}/runs/{run_name(baseline, criterion, score_images, pruning_slug)}"


def toy_dir(study_dir: str, toy_dataset: str) -> str:
    return f"{study_dir}/toy/{toy_dataset}"


def finetuned_name(budget: str) -> str:
    """The folder of a run's fine-tune at `budget` (`budgets.Budget.text`, e.g. 3e)."""
    return f"{FINETUNED}-{budget}"


def finetuned_metrics(pruned_metrics: str | Path, budget: str) -> Path:
    """The metrics.json of the fine-tune at `budget` beside a pruned model's metrics.json."""
    return Path(pruned_metrics).parent.parent / finetuned_name(budget) / "metrics.json"
