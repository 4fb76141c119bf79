"""Tables and figures of a study, drawn only from runs.csv and stability.csv.

Every table is written as .csv (mean, std and n columns per metric), .md and .tex ("mean ± std"),
and every figure as .png and .pdf. Means and standard deviations are over seeds (std with
ddof=1; a single seed gives std NaN, shown as "n=1"). runs.csv has one row per run and
fine-tuning budget: the tables by pruning level, score_images and label noise read each run at the
study's largest budget (`aggregate.at_budget`); `by_budget` and `acc_vs_budget` read every budget.
"""
from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
import pandas as pd

from .aggregate import at_budget, one_per_run, study_budgets_of
from .budgets import BN, RAW, budget_label, budget_order
from .io import atomic_write, write_text
from .studyconfig import main_label_noise

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

# Published figures, for the paper-comparison table. Not measured here: CIFAR-10 / ResNet scale.
PAPER_ROWS = [
    ("Yeom et al. 2021 (energy-aware), reported", "ResNet-56 / CIFAR-10", "nuclear", 93.26, None, 94.13, 40.4, 45.9),
    ("Yeom et al. 2021 (energy-aware), reported", "ResNet-110 / CIFAR-10", "nuclear", 93.50, None, 94.61, 49.8, 52.9),
    ("HRank (Lin et al. 2020), reported", "ResNet-56 / CIFAR-10", "hrank", 93.26, None, 93.17, 50.0, 42.4),
    ("FPGM (He et al. 2019), reported", "ResNet-56 / CIFAR-10", "fpgm", 93.59, None, 93.49, 52.6, None),
    ("HRankPlus, reported", "ResNet-56 / CIFAR-10", "hrank", 93.26, None, 93.57, 47.4, None),
    ("CHIP (Sui et al. 2021), reported", "ResNet-56 / CIFAR-10", "chip", 93.26, None, 94.16, 47.4, None),
]


def criterion_color(criterion: str) -> str:
    """The same colour for a criterion in every figure."""
    from .criteria import CRITERIA

    names = list(CRITERIA)
    return f"C{names.index(criterion) % 10}" if criterion in names else "black"


def summarise(frame: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, std and n of each metric per key combination: columns {metric}_mean/_std/_n."""
    grouped = frame.groupby(keys, dropna=False)[metrics]
    stats = grouped.agg(["mean", "std", "count"])
    stats.columns = [f"{metric}_{'n' if stat == 'count' else stat}" for metric, stat in stats.columns]
    return stats.reset_index()


def _pretty(table: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    out = table[keys].copy()
    for metric in metrics:
        def cell(row, metric=metric):
            mean, std, n = row[f"{metric}_mean"], row[f"{metric}_std"], int(row[f"{metric}_n"])
            if pd.isna(mean):
                return "–"
            return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f} (n=1)"
        out[METRIC_LABELS.get(metric, metric)] = table.apply(cell, axis=1)
    n_columns = [f"{m}_n" for m in metrics if f"{m}_n" in table]
    if n_columns:
        out["n"] = table[n_columns].max(axis=1).astype(int)
    return out


def write_table(folder: Path, name: str, table: pd.DataFrame, keys: list[str],
                metrics: list[str], caption: str) -> list[Path]:
    pretty = _pretty(table, keys, metrics) if metrics else table
    paths = [write_text(folder / f"{name}.csv", table.to_csv(index=False)),
             write_text(folder / f"{name}.md", f"{caption}\n\n{pretty.to_markdown(index=False)}\n"),
             write_text(folder / f"{name}.tex", pretty.to_latex(index=False, caption=caption,
                                                                label=f"tab:{name}"))]
    return paths


def accuracy_metrics(runs: pd.DataFrame) -> list[str]:
    """Post-pruning accuracies present in this study, in pipeline order."""
    optional = ["acc_pruned_bn"] if runs.get("acc_pruned_bn", pd.Series(dtype=float)).notna().any() else []
    return ["acc_pruned", *optional, "acc_finetuned"]


def _main_slice(runs: pd.DataFrame, main_score_images: int) -> pd.Series:
    return runs.score_images.isin([0, main_score_images])


def build_tables(runs: pd.DataFrame, stability: pd.DataFrame, main_pruning: str,
                 main_score_images: int) -> dict[str, tuple[pd.DataFrame, list[str], list[str], str]]:
    runs = at_budget(runs)        # one row per run: fine-tuned runs at the study's largest budget
    main_noise = main_label_noise(runs.label_noise)
    noise0 = runs.label_noise == main_noise
    main_si = _main_slice(runs, main_score_images)
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
    tables["by_pruning"] = (summarise(runs[noise0 & main_si], keys, metrics), keys, metrics,
                            f"Accuracy (%) by criterion and pruning level; label noise "
                            f"{main_noise}, score_images {main_score_images} "
                            f"(0 = data-free criterion); mean ± std over seeds.")
    keys, metrics = ["criterion", "score_images"], accs
    tables["by_score_images"] = (summarise(runs[noise0 & main_level], keys, metrics), keys, metrics,
                                 f"Accuracy (%) by criterion and number of scoring images; "
                                 f"pruning {main_pruning}, label noise {main_noise}.")
    keys = ["criterion", "label_noise", *(["noise_kind"] if runs.get("noise_kind", pd.Series()).nunique() > 1 else [])]
    metrics = ["acc_base", *accs, "drop_pruned", "drop_finetuned"]
    tables["by_label_noise"] = (summarise(runs[main_si & main_level], keys, metrics), keys, metrics,
                                f"Accuracy (%) and drop from each run's own noisy baseline (pp) by "
                                f"label noise; pruning {main_pruning}, score_images "
                                f"{main_score_images}.")
    if len(stability):
        keys, metrics = ["criterion", "score_images"], ["spearman", "jaccard"]
        stable = stability[stability.label_noise == main_label_noise(stability.label_noise)]
        tables["score_stability"] = (summarise(stable, keys, metrics), keys, metrics,
                                     "Agreement of each layer's channel scores with those from the "
                                     "largest score_images (mean ± std over layers and seeds).")
    ours = summarise(runs[noise0 & main_si & main_level], ["dataset", "arch", "criterion"],
                     ["acc_base", "acc_pruned", "acc_finetuned", "macs_reduction", "params_reduction"])
    rows = [{"source": "nnprune, measured", "setting": f"{r.arch} / {r.dataset}",
             "criterion": r.criterion, "acc_base": round(r.acc_base_mean, 2),
             "acc_pruned": round(r.acc_pruned_mean, 2), "acc_finetuned": round(r.acc_finetuned_mean, 2),
             "macs_reduction": round(r.macs_reduction_mean, 1),
             "params_reduction": round(r.params_reduction_mean, 1), "n_seeds": int(r.acc_base_n)}
            for r in ours.itertuples()]
    rows += [{"source": s, "setting": setting, "criterion": c, "acc_base": b, "acc_pruned": p,
              "acc_finetuned": f, "macs_reduction": m, "params_reduction": q, "n_seeds": None}
             for s, setting, c, b, p, f, m, q in PAPER_ROWS]
    tables["paper_comparison"] = (pd.DataFrame(rows), [], [],
                                  f"Our runs (pruning {main_pruning}, means over seeds) beside "
                                  "figures reported in the literature (docs/background.md §1, §5, §6). Reported "
                                  "rows are other datasets and networks: compare trends, not values.")
    return tables


def _errorbar_lines(ax, table: pd.DataFrame, x: str, metric: str, log_x: bool = False,
                    linestyle: str = "-", suffix: str = "") -> None:
    for criterion, part in table.groupby("criterion"):
        part = part.sort_values(x)
        style = {"marker": "o", "capsize": 3, "label": criterion + suffix, "color": criterion_color(criterion),
                 "linestyle": linestyle}
        if criterion == "nuclear":
            style.update(linewidth=2.5, zorder=5)
        ax.errorbar(part[x], part[f"{metric}_mean"], yerr=part[f"{metric}_std"].fillna(0), **style)
    if log_x:
        from matplotlib.ticker import ScalarFormatter
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)


def _dot_per_criterion(ax, table: pd.DataFrame, metric: str) -> None:
    """One pruning level only: each criterion's mean ± std as a dot, best last, on the y range
    of the data (a line plot would put them all at one x)."""
    levels = sorted(table.pruning.unique())
    order = table[table.pruning == levels[0]].sort_values(f"{metric}_mean").criterion.tolist()
    order += sorted(set(table.criterion) - set(order))
    markers = ("o", "s", "^")
    for shift, level in zip(np.linspace(-0.15, 0.15, len(levels)) if len(levels) > 1 else [0.0], levels):
        rows = table[table.pruning == level].set_index("criterion")
        macs = rows.macs_reduction_mean.mean()
        for position, criterion in enumerate(order):
            if criterion not in rows.index:
                continue
            row = rows.loc[criterion]
            ax.errorbar(position + shift, row[f"{metric}_mean"], yerr=np.nan_to_num(row[f"{metric}_std"]),
                        marker=markers[levels.index(level) % 3], capsize=3, color=criterion_color(criterion),
                        markersize=8 if criterion == "nuclear" else 6, linestyle="none",
                        label=f"{level} (-{macs:.1f}% MACs)" if position == 0 else None)
    ax.set_xticks(range(len(order)), order, rotation=30, fontsize=8)
    if len(levels) > 1:
        ax.legend(fontsize=7, title="marker: pruning")
    ax.set_xlabel("criterion" if len(levels) > 1 else f"criterion, at -{table.macs_reduction_mean.mean():.1f}% MACs")
    ax.set_ylabel(METRIC_LABELS[metric])
    ax.grid(alpha=0.3)


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    for ext in ("png", "pdf"):
        buffer = _io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=130, bbox_inches="tight")
        data = buffer.getvalue()

        def write(tmp: str, data=data) -> None:
            with open(tmp, "wb") as handle:
                handle.write(data)
        paths.append(atomic_write(folder / f"{name}.{ext}", write))
    plt.close(fig)
    return paths


def budget_curve(runs: pd.DataFrame, main_score_images: int) -> pd.DataFrame:
    """Each clean run's accuracy along the budget axis: raw, BN-recalibrated, then every
    fine-tuning budget. Rows criterion, pruning, macs_reduction, seed, acc_base, budget, order,
    acc; only pruning levels that some budget fine-tuned."""
    runs = runs[(runs.label_noise == main_label_noise(runs.label_noise)) & _main_slice(runs, main_score_images)]
    budgets = study_budgets_of(runs)
    if not budgets:
        return pd.DataFrame(columns=["criterion", "pruning", "macs_reduction", "seed", "acc_base", "budget",
                                     "order", "acc"])
    tuned = runs[runs.budget.astype(str).isin(budgets) & runs.acc_finetuned.notna()]
    keys = ["criterion", "pruning", "macs_reduction", "seed", "acc_base"]
    once = one_per_run(runs)
    once = once[once.pruning.isin(set(tuned.pruning))]
    parts = [once[keys].assign(budget=RAW, acc=once.acc_pruned)]
    if "acc_pruned_bn" in once and once.acc_pruned_bn.notna().any():
        parts.append(once[keys].assign(budget=BN, acc=once.acc_pruned_bn))
    parts.append(tuned[keys].assign(budget=tuned.budget.astype(str), acc=tuned.acc_finetuned))
    curve = pd.concat(parts, ignore_index=True)
    points = sorted(set(curve.budget), key=budget_order)
    return curve.assign(order=curve.budget.map(points.index))


def plot_budget_curve(curve: pd.DataFrame, alpha: float = 0.05):
    """Accuracy against fine-tuning budget: one panel per fine-tuned pruning level, one line per
    criterion (mean over seeds, with its (1 - alpha) t interval), the x axis at raw and BN-recalibrated
    first and then each budget (categorical, in order of length); the baselines' mean as a dashed
    line. The figure answers: do criteria that differ before fine-tuning still differ after recovery?"""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .stats import t_interval

    levels = sorted(curve.pruning.unique(), key=lambda text: (curve[curve.pruning == text].macs_reduction.mean(), text))
    points = sorted(set(curve.budget), key=budget_order)
    fig, axes = plt.subplots(1, max(len(levels), 1), figsize=(5.5 * max(len(levels), 1), 4.2), squeeze=False,
                             sharey=True)
    for ax, level in zip(axes[0], levels):
        part = curve[curve.pruning == level]
        for criterion in sorted(part.criterion.unique(), key=lambda c: (c != "nuclear", c)):
            rows = part[part.criterion == criterion].groupby(["order", "seed"]).acc.mean()
            xs, means, lows, highs = [], [], [], []
            for order, values in rows.groupby(level=0):
                values = values.to_numpy(float)
                low, high = t_interval(values, alpha) if len(values) > 1 else (np.nan, np.nan)
                xs.append(order)
                means.append(values.mean())
                lows.append(values.mean() - low if np.isfinite(low) else 0.0)
                highs.append(high - values.mean() if np.isfinite(high) else 0.0)
            ax.errorbar(xs, means, yerr=[lows, highs], marker="o", capsize=3, label=criterion,
                        color=criterion_color(criterion), linewidth=2.5 if criterion == "nuclear" else 1.5,
                        zorder=5 if criterion == "nuclear" else 2)
        base = part.groupby("seed").acc_base.first().mean()
        ax.axhline(base, color="0.3", linestyle="--", linewidth=1, label=f"baselines' mean ({base:.2f}%)")
        ax.set_xticks(range(len(points)), [budget_label(p) for p in points], rotation=20, fontsize=8)
        ax.set_xlabel("fine-tuning budget")
        ax.set_title(f"{level} (-{part.macs_reduction.mean():.1f}% MACs)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(title="criterion", fontsize=7, loc="lower right")
    seeds = curve.seed.nunique()
    fig.suptitle(f"Accuracy vs. fine-tuning budget, clean labels: mean over {seeds} seed{'s' if seeds != 1 else ''}"
                 + (f", {100 * (1 - alpha):g}% t interval" if seeds > 1 else " (no interval from one seed)"))
    return fig


def build_figures(runs: pd.DataFrame, tables: dict, main_pruning: str, folder: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    runs = at_budget(runs)
    accs = accuracy_metrics(runs)
    titles = {"acc_pruned": "before fine-tuning", "acc_pruned_bn": "BN recalibrated, no fine-tuning",
              "acc_finetuned": "after fine-tuning", "acc_base": "unpruned baseline"}
    by_pruning = tables["by_pruning"][0]
    # Each panel on its own y range: accuracies before and after fine-tuning differ by tens of pp,
    # while the criteria differ by a few pp after fine-tuning.
    fig, axes = plt.subplots(1, len(accs), figsize=(5.5 * len(accs), 4))
    with_lines = None
    for ax, metric in zip(axes, accs):
        measured = by_pruning[by_pruning[f"{metric}_mean"].notna()]
        if measured.empty:          # e.g. a study (or an aggregate) without fine-tuned runs
            ax.text(0.5, 0.5, "no run of this study measured it", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(titles[metric])
            continue
        if measured.pruning.nunique() <= 2:
            # one or two levels (e.g. one MACs target at two allocations): dots per criterion
            _dot_per_criterion(ax, measured, metric)
            ax.set_title(titles[metric])
            continue
        for criterion, part in measured.groupby("criterion"):
            part = part.sort_values("macs_reduction_mean")
            ax.errorbar(part.macs_reduction_mean, part[f"{metric}_mean"],
                        xerr=part.macs_reduction_std.fillna(0), yerr=part[f"{metric}_std"].fillna(0),
                        marker="o", capsize=3, label=criterion, color=criterion_color(criterion),
                        linewidth=2.5 if criterion == "nuclear" else 1.5)
        ax.set_xlabel("MACs removed (%)")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_title(titles[metric])
        ax.grid(alpha=0.3)
        with_lines = ax
    if with_lines is not None:
        with_lines.legend(title="criterion", fontsize=8)
    fig.suptitle("Accuracy vs. MACs reduction (mean ± std over seeds)")
    written += save_figure(fig, folder, "acc_vs_macs")

    by_size = tables["by_score_images"][0]
    fig, axes = plt.subplots(1, len(accs), figsize=(5.5 * len(accs), 4), sharey=True)
    data_driven = by_size[by_size.score_images > 0]
    free = by_size[by_size.score_images == 0]
    for ax, metric in zip(axes, accs):
        if data_driven.score_images.nunique() < 2:
            # grid.score_sweep left the other sizes unpruned: say so rather than plot one column of dots
            ax.text(0.5, 0.5, "pruned at one score_images only\n(grid.score_sweep);\nsee score_stability.png",
                    ha="center", va="center", transform=ax.transAxes, fontsize=9)
        _errorbar_lines(ax, data_driven, "score_images", metric, log_x=True)
        for row in free.itertuples():
            ax.axhline(getattr(row, f"{metric}_mean"), linestyle="--", linewidth=1,
                       color=criterion_color(row.criterion), label=f"{row.criterion} (data-free)")
        ax.set_xlabel("scoring images (log scale)")
        ax.set_title(titles[metric])
    axes[-1].legend(title="criterion", fontsize=8)
    fig.suptitle(f"Accuracy vs. scoring data size ({main_pruning}, mean ± std over seeds)")
    written += save_figure(fig, folder, "acc_vs_score_images")

    by_noise = tables["by_label_noise"][0]
    panels = ["acc_base", *[m for m in accs if by_noise[f"{m}_mean"].notna().sum() > by_noise.criterion.nunique()]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    kinds = sorted(by_noise.noise_kind.unique()) if "noise_kind" in by_noise else [None]
    clean = by_noise.label_noise == by_noise.label_noise.min()
    for ax, metric in zip(axes[0], panels):
        for kind, linestyle in zip(kinds, ("-", "--", ":")):
            # the clean level has no kind: it starts every kind's line
            part = by_noise if kind is None else by_noise[clean | (by_noise.noise_kind == kind)]
            _errorbar_lines(ax, part[part[f"{metric}_mean"].notna()], "label_noise", metric, linestyle=linestyle,
                            suffix="" if kind is None or len(kinds) == 1 else f", {kind}")
        ax.set_xlabel("label noise (fraction of training labels flipped)")
        ax.set_title(titles[metric])
    axes[0][-1].legend(title="criterion" + (", noise kind" if len(kinds) > 1 else ""), fontsize=7,
                       loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Accuracy on the clean test set vs. label noise ({main_pruning}, mean ± std over seeds)")
    written += save_figure(fig, folder, "acc_vs_label_noise")

    if "score_stability" in tables:
        table = tables["score_stability"][0]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, metric in zip(axes, ["spearman", "jaccard"]):
            _errorbar_lines(ax, table, "score_images", metric, log_x=True)
            ax.set_xlabel("scoring images (log scale)")
            ax.set_ylim(-0.05, 1.05)
        axes[1].legend(title="criterion", fontsize=8)
        fig.suptitle("Score stability vs. the largest scoring set (mean ± std over layers and seeds)")
        written += save_figure(fig, folder, "score_stability")
    return written


def write_report(study_dir: Path, main_pruning: str | None = None,
                 main_score_images: int | None = None) -> list[Path]:
    """Write tables/ and figures/ under `study_dir` from runs.csv and stability.csv."""
    runs = pd.read_csv(study_dir / "runs.csv")
    stability_path = study_dir / "stability.csv"
    stability = pd.read_csv(stability_path) if stability_path.exists() else pd.DataFrame()
    main_pruning = main_pruning or runs.pruning.iloc[0]
    sizes = sorted(s for s in runs.score_images.unique() if s > 0)
    main_score_images = main_score_images or (sizes[-1] if sizes else 0)
    every_budget, runs = runs, at_budget(runs)
    tables = build_tables(runs, stability, main_pruning, main_score_images)
    curve = budget_curve(every_budget, main_score_images)
    if len(curve):
        keys = ["criterion", "pruning", "budget"]
        table = summarise(curve.assign(_order=curve.order), keys + ["_order"], ["acc"])
        table = table.sort_values(["pruning", "_order", "criterion"]).drop(columns="_order")
        table["budget"] = table.budget.map(budget_label)
        tables["by_budget"] = (table, keys, ["acc"], "Test accuracy (%) by fine-tuning budget (raw and "
                               "BN-recalibrated before any fine-tuning), clean labels, score_images "
                               f"{main_score_images}; mean ± std over seeds.")
    written = []
    for name, (table, keys, metrics, caption) in tables.items():
        written += write_table(study_dir / "tables", name, table, keys, metrics, caption)
    written += build_figures(runs, tables, main_pruning, study_dir / "figures")
    if len(curve):
        written += save_figure(plot_budget_curve(curve), study_dir / "figures", "acc_vs_budget")
    return written
