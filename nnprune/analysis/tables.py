"""The report's tables, drawn only from runs.csv, stability.csv and the published rows of
data/paper_rows.csv.

Every table is written as .csv (mean, std and n columns per metric, full precision), .md and .tex
("mean ± std" with the metric's decimals, `nnprune.analysis.table_text`; a missing value is an en dash).
Means and standard deviations are over seeds (std with ddof=1; a single seed gives std NaN, shown as
"n=1"), those of score_stability over layers and seeds (its n counts both). runs.csv has one row per run
and fine-tuning budget: the tables by pruning level, score_images and label noise read each run at the
study's largest budget (`aggregate.at_budget`); by_budget reads every budget (`figures.budget_curve`).
"""
from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from nnprune.analysis.aggregate import at_budget
from nnprune.analysis.table_text import (
    DASH,
    DEFAULT_DECIMALS,
    KEY_LABELS,
    LATEX_DASH,
    METRIC_DECIMALS,
    column_text,
    is_numeric,
    latex_escape,
    latex_table,
    markdown_table,
    mean_sd,
)
from nnprune.files import write_text
from nnprune.plan.budgets import budget_label
from nnprune.plan.names import CRITERION_SOURCES
from nnprune.plan.studyconfig import main_label_noise

METRIC_LABELS = {
    "acc_base": "unpruned acc. (%)", "acc_pruned": "pruned acc., no fine-tune (%)",
    "acc_pruned_bn": "pruned, BN recalibrated (%)",
    "acc_finetuned": "fine-tuned acc. (%)", "macs_reduction": "MACs removed (%)",
    "params_reduction": "params removed (%)", "drop_pruned": "drop before fine-tune (pp)",
    "drop_finetuned": "drop after fine-tune (pp)", "spearman": "Spearman vs. largest",
    "jaccard": "Jaccard of kept channels",
    "latency_base_ms": "unpruned latency, batch 64 (ms)",
    "latency_pruned_ms": "pruned latency, batch 64 (ms)",
    "acc": "test accuracy (%)",
}
PAPER_COLUMNS = ("source", "setting", "criterion", "acc_base", "acc_pruned", "acc_finetuned", "macs_reduction",
                 "params_reduction", "n_seeds")
PAPER_FIGURES = PAPER_COLUMNS[3:-1]
PAPER_ROWS = files("nnprune.analysis") / "data" / "paper_rows.csv"


class Table(NamedTuple):
    """One table of the report. A summary (`metrics` given): `frame` holds the `keys` and
    {metric}_mean/_std/_n per metric. A plain table (`metrics` and `keys` empty): every column of
    `frame` is shown as it is."""
    frame: pd.DataFrame
    keys: list[str]
    metrics: list[str]
    caption: str


def paper_rows() -> list[dict]:
    """The published rows of the paper-comparison table (data/paper_rows.csv, shipped in the
    package): source, setting, criterion, the figures of PAPER_FIGURES (None: not reported), paper
    and quoted_in."""
    with PAPER_ROWS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    return [{key: (float(value) if value else None) if key in PAPER_FIGURES else value
             for key, value in row.items()} for row in rows]


def summarise(frame: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, std and n of each metric per key combination: columns {metric}_mean/_std/_n."""
    grouped = frame.groupby(keys, dropna=False)[metrics]
    stats = grouped.agg(["mean", "std", "count"])
    stats.columns = [f"{metric}_{'n' if stat == 'count' else stat}" for metric, stat in stats.columns]
    return stats.reset_index()


def _pretty(table: Table, latex: bool) -> tuple[list[str], list[list[str]], list[bool]]:
    """(header, rows of text cells, right-aligned per column) of a table, as Markdown or LaTeX text.
    A summary: the key columns, each metric as mean ± std with its decimals
    (table_text.METRIC_DECIMALS), and n, the most values behind a cell. A plain table: every
    column, floats with their metric's decimals. Missing values: an en dash."""
    frame, metrics = table.frame, table.metrics
    text = latex_escape if latex else str
    dash = LATEX_DASH if latex else DASH
    names, columns, right = [], [], []
    for key in table.keys if metrics else list(frame.columns):
        digits = None if metrics else METRIC_DECIMALS.get(key, DEFAULT_DECIMALS)
        names.append(KEY_LABELS.get(key, METRIC_LABELS.get(key, key)))
        columns.append([text(cell) for cell in column_text(frame[key], digits, dash)])
        right.append(is_numeric(frame[key]))
    records = frame.to_dict("records")
    for metric in metrics:
        digits = METRIC_DECIMALS.get(metric, DEFAULT_DECIMALS)
        names.append(METRIC_LABELS.get(metric, metric))
        columns.append([mean_sd(r[f"{metric}_mean"], r[f"{metric}_std"], r[f"{metric}_n"], digits, latex)
                        for r in records])
        right.append(True)
    n_columns = [f"{m}_n" for m in metrics if f"{m}_n" in frame]
    if n_columns:
        names.append("n")
        columns.append([str(int(n)) for n in frame[n_columns].max(axis=1)])
        right.append(True)
    header = [latex_escape(name) for name in names] if latex else names
    return header, [list(row) for row in zip(*columns)], right


def _plain_csv(frame: pd.DataFrame) -> str:
    """A plain table's CSV: each float column at its metric's decimals, a missing value empty."""
    text = pd.DataFrame({column: column_text(frame[column], METRIC_DECIMALS.get(column, DEFAULT_DECIMALS), "")
                         for column in frame.columns})
    return text.to_csv(index=False)


def write_table(folder: Path, name: str, table: Table) -> list[Path]:
    """{name}.csv (a summary: the mean, std and n columns at full precision), {name}.md and
    {name}.tex (booktabs, compiles in pdflatex) in `folder`; returns the three paths."""
    markdown = markdown_table(*_pretty(table, latex=False))
    header, rows, right = _pretty(table, latex=True)
    latex = latex_table(header, rows, right, table.caption, f"tab:{name}")
    csv_text = table.frame.to_csv(index=False) if table.metrics else _plain_csv(table.frame)
    return [write_text(folder / f"{name}.csv", csv_text),
            write_text(folder / f"{name}.md", f"{table.caption}\n\n{markdown}\n"),
            write_text(folder / f"{name}.tex", latex)]


def accuracy_metrics(runs: pd.DataFrame) -> list[str]:
    """Post-pruning accuracies present in this study, in pipeline order."""
    optional = ["acc_pruned_bn"] if runs.get("acc_pruned_bn", pd.Series(dtype=float)).notna().any() else []
    return ["acc_pruned", *optional, "acc_finetuned"]


def main_slice(runs: pd.DataFrame, main_score_images: int) -> pd.Series:
    """The rows at the main score_images, or of a data-free criterion (score_images 0)."""
    return runs.score_images.isin([0, main_score_images])


def build_tables(runs: pd.DataFrame, stability: pd.DataFrame, main_pruning: str,
                 main_score_images: int) -> dict[str, Table]:
    """by_pruning, by_score_images, by_label_noise, score_stability (when `stability` has rows) and
    paper_comparison, by name; each run read at the study's largest budget."""
    runs = at_budget(runs)
    main_noise = main_label_noise(runs.label_noise)
    noise0 = runs.label_noise == main_noise
    main_si = main_slice(runs, main_score_images)
    main_level = runs.pruning == main_pruning
    runs = runs.assign(drop_pruned=runs.acc_base - runs.acc_pruned,
                       drop_finetuned=runs.acc_base - runs.acc_finetuned)
    tables = {}
    accs = accuracy_metrics(runs)
    # Latency is measured only with `latency: true` (`nnprune prune --latency`); NaN otherwise.
    latency = [c for c in ("latency_base_ms", "latency_pruned_ms")
               if runs.get(c, pd.Series(dtype=float)).notna().any()]
    keys = ["criterion", "pruning"]
    metrics = ["acc_base", *accs, "macs_reduction", "params_reduction", *latency]
    tables["by_pruning"] = Table(summarise(runs[noise0 & main_si], keys, metrics), keys, metrics,
                                 f"Accuracy (%) by criterion and pruning level; label noise "
                                 f"{main_noise}, score_images {main_score_images} "
                                 f"(0 = data-free criterion); mean ± std over seeds.")
    keys, metrics = ["criterion", "score_images"], accs
    tables["by_score_images"] = Table(summarise(runs[noise0 & main_level], keys, metrics), keys, metrics,
                                      f"Accuracy (%) by criterion and number of scoring images; "
                                      f"pruning {main_pruning}, label noise {main_noise}.")
    keys = ["criterion", "label_noise", *(["noise_kind"] if runs.get("noise_kind", pd.Series()).nunique() > 1 else [])]
    metrics = ["acc_base", *accs, "drop_pruned", "drop_finetuned"]
    tables["by_label_noise"] = Table(summarise(runs[main_si & main_level], keys, metrics), keys, metrics,
                                     f"Accuracy (%) and drop from each run's own noisy baseline (pp) by "
                                     f"label noise; pruning {main_pruning}, score_images "
                                     f"{main_score_images}.")
    if len(stability):
        keys, metrics = ["criterion", "score_images"], ["spearman", "jaccard"]
        stable = stability[stability.label_noise == main_label_noise(stability.label_noise)]
        tables["score_stability"] = Table(summarise(stable, keys, metrics), keys, metrics,
                                          "Agreement of each layer's channel scores with those from the "
                                          "largest score_images (mean ± std over layers and seeds; n = layers "
                                          "x seeds).")
    tables["paper_comparison"] = paper_comparison(runs[noise0 & main_si & main_level], main_pruning)
    return tables


def paper_comparison(runs: pd.DataFrame, main_pruning: str) -> Table:
    """Our runs (means over seeds, per dataset, network and criterion) beside the published rows
    (`paper_rows`): a plain table of PAPER_COLUMNS."""
    ours = summarise(runs, ["dataset", "arch", "criterion"], list(PAPER_FIGURES))
    rows = [{"source": "nnprune, measured", "setting": f"{r.arch} / {r.dataset}",
             "criterion": r.criterion, "acc_base": r.acc_base_mean, "acc_pruned": r.acc_pruned_mean,
             "acc_finetuned": r.acc_finetuned_mean, "macs_reduction": r.macs_reduction_mean,
             "params_reduction": r.params_reduction_mean, "n_seeds": int(r.acc_base_n)}
            for r in ours.itertuples()]
    for row in paper_rows():
        criterion = row["criterion"]
        rows.append({**row, "n_seeds": None,
                     "criterion": criterion if criterion in CRITERION_SOURCES else f"{criterion} (reported only)"})
    comparison = pd.DataFrame(rows, columns=list(PAPER_COLUMNS)).astype({"n_seeds": "Int64"})
    return Table(comparison.astype({c: float for c in PAPER_FIGURES}), [], [],
                 f"Our runs (pruning {main_pruning}, means over seeds) beside "
                 "figures reported in the literature (docs/background.md §1, §5, §6). Reported "
                 "rows are other datasets and networks: compare trends, not values.")


def budget_table(curve: pd.DataFrame, main_score_images: int) -> Table:
    """by_budget: accuracy per criterion, pruning level and point of the budget axis, from the rows
    of `figures.budget_curve`."""
    keys = ["criterion", "pruning", "budget"]
    frame = summarise(curve.assign(_order=curve.order), keys + ["_order"], ["acc"])
    frame = frame.sort_values(["pruning", "_order", "criterion"]).drop(columns="_order")
    frame["budget"] = frame.budget.map(budget_label)
    return Table(frame, keys, ["acc"], "Test accuracy (%) by fine-tuning budget (raw and "
                 "BN-recalibrated before any fine-tuning), clean labels, score_images "
                 f"{main_score_images}; mean ± std over seeds.")
