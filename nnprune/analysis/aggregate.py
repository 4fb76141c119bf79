"""All runs into one pandas frame: the only source of tables and plots.

One row per pruned model and fine-tuning budget: a run fine-tuned at budgets 30b and 3e has two
rows, alike but for `budget`, `acc_finetuned` and `seconds_finetune`; a run that no budget
fine-tuned has one, with budget "0". Raw (`acc_pruned`) and BN-recalibrated (`acc_pruned_bn`)
accuracy are the first two points of each run's budget curve (`budgets.RAW`, `budgets.BN`).
`one_per_run` and `at_budget` give one row per run.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from nnprune.files import read_json
from nnprune.plan import paths
from nnprune.plan.budgets import NOT_FINETUNED, budget_from_section, budget_order

COLUMNS = ["dataset", "arch", "width", "train_size", "train_epochs", "label_noise", "noise_kind", "seed",
           "criterion", "score_images", "pruning", "budget", "macs_base", "macs_pruned", "params_base",
           "params_pruned", "acc_base", "acc_pruned", "acc_pruned_bn", "acc_finetuned", "macs_reduction",
           "params_reduction", "latency_base_ms", "latency_pruned_ms", "seconds_prune",
           "seconds_finetune", "pruned_metrics", "kind"]
PRUNED_KIND, SCRATCH_KIND = "pruned", "scratch"   # runs.csv's row kinds: a pruned run, a from-scratch control


def finetune_budget(record: dict) -> str:
    """The budget a fine-tune ran (`budgets.Budget.text`), from its metrics.json: its `budget`
    setting, or for a fine-tune without one, its epochs and batches per epoch."""
    config = record["config"]
    return config.get("budget") or budget_from_section(config).text


def run_rows(pruned_metrics: Path, study_dir: Path | None = None, budgets: list[str] = ()) -> list[dict]:
    """A run's rows: one per budget in `budgets` whose finetuned-{budget}/metrics.json exists
    beside its pruned/metrics.json (no `budgets`: every finetuned-* folder there), or one row
    with budget "0" when none does."""
    row = run_row(pruned_metrics, study_dir)
    if not budgets:
        prefix = paths.finetuned_name("")
        budgets = sorted(p.name[len(prefix):] for p in Path(pruned_metrics).parent.parent.glob(f"{prefix}*")
                         if (p / "metrics.json").is_file())
    rows = []
    for budget in budgets:
        path = paths.finetuned_metrics(pruned_metrics, budget)
        if path.exists():
            finetuned = read_json(path)
            rows.append({**row, "budget": finetune_budget(finetuned),
                         "acc_finetuned": finetuned["results"]["acc_test"],
                         "seconds_finetune": finetuned["provenance"]["seconds"]})
    return rows or [row]


def run_row(pruned_metrics: Path, study_dir: Path | None = None) -> dict:
    """The row of a pruned model from its pruned/metrics.json, not fine-tuned (budget "0").
    `pruned_metrics` in the row is relative to `study_dir` when given, so runs.csv traces each
    row to its metrics.json wherever the study is run or moved."""
    pruned = read_json(pruned_metrics)
    config, results = pruned["config"], pruned["results"]
    data = config["data"]
    base, after = results["base"], results["pruned"]
    return {
        "dataset": data["dataset"], "arch": config["arch"], "width": config["build_args"]["width"],
        "train_size": data["train_size"], "train_epochs": (config.get("train") or {}).get("epochs"),
        "label_noise": data["label_noise"],
        "noise_kind": data["noise_kind"], "seed": data["seed"], "criterion": results["criterion"],
        "score_images": results["score_images"], "pruning": config["pruning"], "budget": NOT_FINETUNED,
        "macs_base": base["macs"], "macs_pruned": after["macs"], "params_base": base["params"],
        "params_pruned": after["params"], "acc_base": base["acc"], "acc_pruned": after["acc"],
        "acc_pruned_bn": after.get("acc_bn_recalibrated", float("nan")),
        "acc_finetuned": float("nan"),
        "macs_reduction": 100.0 * (1 - after["macs"] / base["macs"]),
        "params_reduction": 100.0 * (1 - after["params"] / base["params"]),
        "latency_base_ms": base.get("latency_ms", float("nan")),
        "latency_pruned_ms": after.get("latency_ms", float("nan")),
        "seconds_prune": pruned["provenance"]["seconds"],
        "seconds_finetune": float("nan"),
        "pruned_metrics": _relative(pruned_metrics, study_dir),
        "kind": PRUNED_KIND,
    }


def _relative(path: Path, study_dir: Path | None) -> str:
    return Path(os.path.relpath(path, study_dir)).as_posix() if study_dir is not None else str(path)


def scratch_row(metrics: Path, study_dir: Path | None = None) -> dict:
    """The row of a from-scratch control (`nnprune scratch`): the pruned run whose architecture it
    trained (criterion, score_images, pruning; its metrics.json lies in that run's folder), its
    epochs as the budget, its test accuracy as acc_finetuned, and kind "scratch"."""
    record = read_json(metrics)
    config, results = record["config"], record["results"]
    data = config["data"]
    return {
        "dataset": data["dataset"], "arch": config["arch"], "width": config["build_args"]["width"],
        "train_size": data["train_size"], "train_epochs": config["epochs"], "label_noise": data["label_noise"],
        "noise_kind": data["noise_kind"], "seed": data["seed"], "criterion": config["criterion"],
        "score_images": config["score_images"], "pruning": config["pruning"], "budget": f"{config['epochs']}e",
        "macs_base": float("nan"), "macs_pruned": results["macs"], "params_base": float("nan"),
        "params_pruned": results["params"], "acc_base": float("nan"), "acc_pruned": float("nan"),
        "acc_pruned_bn": float("nan"), "acc_finetuned": results["acc_test"], "macs_reduction": float("nan"),
        "params_reduction": float("nan"), "latency_base_ms": float("nan"), "latency_pruned_ms": float("nan"),
        "seconds_prune": float("nan"), "seconds_finetune": record["provenance"]["seconds"],
        "pruned_metrics": _relative(metrics, study_dir), "kind": SCRATCH_KIND,
    }


def split_kinds(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pruned runs, from-scratch controls) of a runs.csv; one written before the `kind` column
    holds pruned runs only."""
    if "kind" not in runs:
        return runs, runs.iloc[0:0]
    scratch = runs.kind == SCRATCH_KIND
    return runs[~scratch].reset_index(drop=True), runs[scratch].reset_index(drop=True)


RUN_KEYS = ["dataset", "arch", "width", "train_size", "pruning", "criterion", "score_images", "label_noise",
            "noise_kind", "seed"]


def collect_runs(paths: list[Path], study_dir: Path | None = None, budgets: list[str] = (),
                 scratch: list[Path] = ()) -> pd.DataFrame:
    """runs.csv: every pruned run's rows (`run_rows`), then the from-scratch controls' (`scratch_row`)."""
    rows = [row for p in paths for row in run_rows(p, study_dir, budgets)]
    rows += [scratch_row(p, study_dir) for p in scratch]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = frame.assign(_budget=frame.budget.map(budget_order))
    keys = ["kind", "dataset", "arch", "pruning", "criterion", "score_images", "label_noise", "noise_kind", "seed",
            "_budget"]
    return frame.sort_values(keys, kind="stable").drop(columns="_budget").reset_index(drop=True)


def study_budgets_of(runs: pd.DataFrame) -> list[str]:
    """The fine-tuning budgets in runs.csv, shortest first ("0", not fine-tuned, left out)."""
    if "budget" not in runs:
        return []
    found = {str(b) for b in runs.budget.dropna().unique()} - {NOT_FINETUNED}
    return sorted(found, key=budget_order)


def at_budget(runs: pd.DataFrame, budget: str | None = None) -> pd.DataFrame:
    """One row per run: the row fine-tuned at `budget` (default the study's largest) where that
    run has one, and the run's not-fine-tuned row where it has no fine-tune at all. A run
    fine-tuned at other budgets only is left out. A runs.csv without budgets is returned as it is."""
    if "budget" not in runs:
        return runs
    runs = runs.assign(budget=runs.budget.astype(str))
    budgets = study_budgets_of(runs)
    if budget is None:
        if not budgets:
            return runs
        budget = budgets[-1]
    return runs[(runs.budget == str(budget)) | (runs.budget == NOT_FINETUNED)].reset_index(drop=True)


def one_per_run(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run whatever its budgets (for what does not depend on fine-tuning: cost,
    raw and BN-recalibrated accuracy): each run's first row, acc_finetuned as at_budget gives it."""
    return at_budget(runs)


def score_stability(score_paths: list[Path], keep_fraction: float = 0.5) -> pd.DataFrame:
    """Per (baseline, criterion, score_images, layer): Spearman correlation of the layer's channel
    scores with those from the largest score_images of the same baseline and criterion, and the
    Jaccard overlap of the kept channels (top `keep_fraction` of each layer by score).
    Spearman is NaN where a layer's scores are constant (e.g. every map full rank)."""
    import torch
    from scipy.stats import spearmanr

    from nnprune.pruning.score_file import read_scores

    entries, baselines = [], {}
    for path in score_paths:
        record = read_scores(path)
        if record["score_images"] == 0:
            continue
        # Which baseline: from the metrics.json `score` wrote beside the scores, not from the path.
        config = read_json(path.parent / "metrics.json")["config"]
        data = config["data"]
        base = paths.baseline_id(data["dataset"], config["arch"], data["train_size"], data["label_noise"],
                                 data["seed"], data.get("noise_kind", "symmetric"))
        baselines[base] = {"label_noise": data["label_noise"], "noise_kind": data.get("noise_kind", "symmetric"),
                           "seed": data["seed"]}
        entries.append((base, record["criterion"], record["score_images"], record))
    rows = []
    largest: dict[tuple[str, str], tuple[int, dict]] = {}
    for base, criterion, size, record in entries:
        if (base, criterion) not in largest or size > largest[(base, criterion)][0]:
            largest[(base, criterion)] = (size, record)
    for base, criterion, size, record in entries:
        reference_size, reference = largest[(base, criterion)]
        for layer, scores in record["scores"].items():
            ref = reference["scores"][layer]
            keep = max(1, int(round(keep_fraction * scores.numel())))
            kept = set(torch.argsort(scores, descending=True, stable=True)[:keep].tolist())
            kept_ref = set(torch.argsort(ref, descending=True, stable=True)[:keep].tolist())
            constant = bool(scores.std() == 0 or ref.std() == 0)
            rho = float("nan") if constant else float(spearmanr(scores.numpy(), ref.numpy())[0])
            rows.append({"baseline": base, "criterion": criterion, "score_images": size,
                         "reference_score_images": reference_size, "layer": layer,
                         "spearman": rho, "jaccard": len(kept & kept_ref) / len(kept | kept_ref)})
    columns = ["baseline", "criterion", "score_images", "reference_score_images", "layer",
               "spearman", "jaccard"]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame["label_noise"] = frame.baseline.map(lambda base: baselines[base]["label_noise"]).astype(float)
        frame["noise_kind"] = frame.baseline.map(lambda base: baselines[base]["noise_kind"])
        frame["seed"] = frame.baseline.map(lambda base: baselines[base]["seed"]).astype(int)
    return frame.sort_values(["criterion", "score_images", "baseline", "layer"], kind="stable")
