"""The report's figures, drawn from its tables (`nnprune.analysis.tables`) with a `Style` (the focus
criterion first, thicker and in bold; one colour per criterion), and written as .png and .pdf by
`save_figure`. The one place nnprune chooses matplotlib's backend."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.ticker import ScalarFormatter

from nnprune.analysis.aggregate import one_per_run, study_budgets_of
from nnprune.analysis.stats import t_interval
from nnprune.analysis.style import DEFAULT_STYLE, KIND_LINESTYLES, KIND_MARKERS, NEUTRAL, Style
from nnprune.analysis.tables import METRIC_LABELS, main_slice
from nnprune.errors import UserError
from nnprune.files import atomic_write
from nnprune.plan.budgets import BN, RAW, budget_label, budget_order
from nnprune.plan.schemes import parse_scheme
from nnprune.plan.studyconfig import main_label_noise

# Files only, never a window: the same on a laptop, a headless job and a cluster node.
matplotlib.use("Agg")

PANEL_TITLES = {"acc_pruned": "before fine-tuning", "acc_pruned_bn": "BN recalibrated, no fine-tuning",
                "acc_finetuned": "after fine-tuning", "acc_base": "unpruned baseline"}


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    """{name}.png and {name}.pdf of `fig` in `folder`, each written atomically; closes `fig`."""
    paths = []
    for ext in ("png", "pdf"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=130, bbox_inches="tight")
        data = buffer.getvalue()

        def write(tmp: str, data=data) -> None:
            with open(tmp, "wb") as handle:
                handle.write(data)
        paths.append(atomic_write(folder / f"{name}.{ext}", write))
    plt.close(fig)
    return paths


def _legend(ax, handles: list, title: str, style: Style, **where):
    """A legend of `handles` that leaves the axis' other legends in place; the focus in bold."""
    legend = Legend(ax, handles, [h.get_label() for h in handles], title=title, fontsize=7,
                    title_fontsize=8, handlelength=3, **where)
    ax.add_artist(legend)
    legend.set_clip_on(False)       # add_artist clips to the axes: a legend beside them would vanish
    style.bold_focus(legend.get_texts())
    return legend


def _criterion_handles(order: list[str], style: Style, dashed=frozenset(), suffix: str = "") -> list:
    """Legend lines for `order`, each in its criterion's style (dashed: those in `dashed`)."""
    return [Line2D([], [], marker="o", label=criterion + (suffix if criterion in dashed else ""),
                   linestyle="--" if criterion in dashed else "-", **style.series(criterion))
            for criterion in order]


def _kind_handles(kinds: list[tuple[str, str, str]]) -> list:
    """Neutral (grey) legend entries for kinds of points: (label, marker, linestyle) each."""
    return [Line2D([], [], color=NEUTRAL, marker=marker, linestyle=linestyle, label=label)
            for label, marker, linestyle in kinds]


def pruning_point(text: str) -> tuple[str, str]:
    """(level, family) of a pruning entry: entries of one level differ only in how they share it
    out; a family's entries lie on one line along the MACs axis. macs:0.404 -> ("MACs target
    0.404", "macs"), uniform-macs:0.404 -> ("MACs target 0.404", "uniform-macs"), uniform:0.1 ->
    ("uniform:0.1", "uniform"); rates:... and preset:hrank are their own level and family."""
    try:
        scheme = parse_scheme(text)
    except UserError:           # preset:hrank names no architecture here
        return text, text
    if scheme.kind == "rates":
        return text, text
    number = text.split(":")[1]
    family = text.replace(f":{number}", "", 1)
    return (text if scheme.kind == "uniform" else f"MACs target {scheme.value:g}"), family


def panel_title(metric: str, finetuned_at: str | None = None) -> str:
    """A panel's title; the fine-tuned panel names its budget ("after fine-tuning (2 epochs)")."""
    title = PANEL_TITLES[metric]
    return f"{title} ({budget_label(finetuned_at)})" if metric == "acc_finetuned" and finetuned_at else title


def _errorbar_lines(ax, table: pd.DataFrame, x: str, metric: str, order: list[str], style: Style,
                    log_x: bool = False, linestyle: str = "-", suffix: str = "") -> None:
    """One series per criterion of `order` found in `table`, in that order: `metric`'s mean ± std
    against column `x`."""
    for criterion in order:
        part = table[table.criterion == criterion].sort_values(x)
        if part.empty:
            continue
        ax.errorbar(part[x], part[f"{metric}_mean"], yerr=part[f"{metric}_std"].fillna(0), marker="o", capsize=3,
                    label=criterion + suffix, linestyle=linestyle, **style.series(criterion))
    if log_x:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)


def _families(table: pd.DataFrame) -> pd.Series:
    """Each row's pruning family (`pruning_point`)."""
    return table.pruning.map(lambda text: pruning_point(text)[1])


def _macs_lines(ax, table: pd.DataFrame, metric: str, order: list[str], families: list[str], style: Style) -> None:
    """`metric` against MACs removed (%): one series per criterion and pruning family, the
    family's marker and line style."""
    family_of = _families(table)
    for index, family in enumerate(families):
        for criterion in order:
            part = table[(family_of == family) & (table.criterion == criterion)].sort_values("macs_reduction_mean")
            if part.empty:
                continue
            ax.errorbar(part.macs_reduction_mean, part[f"{metric}_mean"], xerr=part.macs_reduction_std.fillna(0),
                        yerr=part[f"{metric}_std"].fillna(0), capsize=3, marker=KIND_MARKERS[index % 4],
                        linestyle=KIND_LINESTYLES[index % 4],
                        label=criterion if len(families) == 1 else f"{criterion}, {family}",
                        **style.series(criterion))
    ax.set_xlabel("MACs removed (%)")


def _dots_per_criterion(ax, table: pd.DataFrame, metric: str, order: list[str], families: list[str],
                        style: Style) -> None:
    """One pruning level: each criterion's mean ± std of `metric` as a dot at its place in
    `order`, one marker (and a small shift) per pruning family, on the y range of the data."""
    family_of = _families(table)
    shifts = np.linspace(-0.15, 0.15, len(families)) if len(families) > 1 else [0.0]
    for index, (family, shift) in enumerate(zip(families, shifts)):
        rows = table[family_of == family].set_index("criterion")
        for position, criterion in enumerate(order):
            if criterion not in rows.index:
                continue
            row = rows.loc[criterion]
            ax.errorbar(position + shift, row[f"{metric}_mean"], yerr=np.nan_to_num(row[f"{metric}_std"]),
                        marker=KIND_MARKERS[index % 4], capsize=3, linestyle="none",
                        label=criterion if len(families) == 1 else f"{criterion}, {family}",
                        **style.series(criterion))
    ax.set_xticks(range(len(order)), order, rotation=30, fontsize=8)
    style.bold_focus(ax.get_xticklabels())
    ax.set_xlabel("criterion")


def _family_handles(table: pd.DataFrame, families: list[str], along_macs: bool) -> list:
    """Neutral legend entries for the pruning families in `table`: an entry's name and MACs cut
    where the family has one entry there, else the family's name."""
    family_of = _families(table)
    kinds = []
    for index, family in enumerate(families):
        rows = table[family_of == family]
        if rows.empty:
            continue
        entries = rows.pruning.unique()
        label = (f"{entries[0]} (-{rows.macs_reduction_mean.mean():.1f}% MACs)" if len(entries) == 1
                 else f"{family}: {len(entries)} levels")
        kinds.append((label, KIND_MARKERS[index % 4], KIND_LINESTYLES[index % 4] if along_macs else "none"))
    return _kind_handles(kinds)


def plot_macs(by_pruning: pd.DataFrame, accs: list[str], order: list[str], main_pruning: str, style: Style,
              finetuned_at: str | None = None):
    """The MACs figure, one panel per accuracy of `accs` on its own y range. With two or more
    pruning levels (`pruning_point`) accuracy (%) against MACs removed (%); with one, a dot per
    criterion, titled by the level's pruning entries. Markers (neutral in the legend) tell the
    pruning families apart."""
    entries = sorted(by_pruning.pruning.unique(), key=lambda text: (text != main_pruning, text))
    points = [pruning_point(text) for text in entries]
    families = list(dict.fromkeys(family for _, family in points))
    along_macs = len({level for level, _ in points}) >= 2
    # Each panel on its own y range: accuracies before and after fine-tuning differ by tens of pp,
    # while the criteria differ by a few pp after fine-tuning.
    fig, axes = plt.subplots(1, len(accs), figsize=(5.5 * len(accs), 4.6), squeeze=False, layout="constrained")
    for ax, metric in zip(axes[0], accs):
        ax.set_title(panel_title(metric, finetuned_at))
        ax.grid(alpha=0.3)
        measured = by_pruning[by_pruning[f"{metric}_mean"].notna()]
        if measured.empty:          # e.g. a study (or an aggregate) without fine-tuned runs
            ax.text(0.5, 0.5, "no run of this study measured it", ha="center", va="center", transform=ax.transAxes)
            continue
        (_macs_lines if along_macs else _dots_per_criterion)(ax, measured, metric, order, families, style)
        ax.set_ylabel(METRIC_LABELS[metric])
        if not along_macs:
            ax.set_xlim(-0.5, len(order) - 0.5)
    handles = _family_handles(by_pruning, families, along_macs)
    fig.legend(handles=handles, title="pruning (marker)", loc="outside lower center", ncol=len(handles), fontsize=8,
               title_fontsize=8, handlelength=3)
    if along_macs:
        shown = [c for c in order if c in set(by_pruning.criterion)]
        fig.legend(handles=_criterion_handles(shown, style), title="criterion", loc="outside right center",
                   fontsize=7, title_fontsize=8)
        style.bold_focus(fig.legends[-1].get_texts())
        title = "Accuracy vs. MACs removed"
    else:
        title = f"Accuracy by criterion at {' and '.join(entries)}"
    fig.suptitle(f"{title} (mean ± std over seeds)")
    return fig


def plot_score_images(by_size: pd.DataFrame, accs: list[str], order: list[str], main_pruning: str, style: Style,
                      finetuned_at: str | None = None):
    """Accuracy (%) against the number of scoring images (log scale), one panel per accuracy of
    `accs`: a line per data-driven criterion, a dashed level per data-free one."""
    fig, axes = plt.subplots(1, len(accs), figsize=(5.5 * len(accs), 4), squeeze=False)     # own y ranges
    data_driven_rows, free = by_size[by_size.score_images > 0], by_size[by_size.score_images == 0]
    for ax, metric in zip(axes[0], accs):
        _errorbar_lines(ax, data_driven_rows, "score_images", metric, order, style, log_x=True)
        for criterion in [c for c in order if c in set(free.criterion)]:
            mean = free[free.criterion == criterion][f"{metric}_mean"].mean()
            series = style.series(criterion)
            ax.axhline(mean, linestyle="--", linewidth=series["linewidth"], color=series["color"],
                       label=f"{criterion} (data-free)")
        ax.set_xlabel("scoring images (log scale)")
        ax.set_title(panel_title(metric, finetuned_at))
    shown = [c for c in order if c in set(by_size.criterion)]
    _legend(axes[0][-1], _criterion_handles(shown, style, dashed=set(free.criterion), suffix=" (data-free)"),
            "criterion", style, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Accuracy vs. scoring data size ({main_pruning}, mean ± std over seeds)", y=1.02)
    return fig


def plot_label_noise(by_noise: pd.DataFrame, accs: list[str], order: list[str], main_pruning: str, style: Style,
                     finetuned_at: str | None = None):
    """Clean-test accuracy (%) against label noise (fraction of labels flipped): one line per
    criterion and noise kind (a line style each, neutral in the legend), each kind's line starting
    at the clean level; the baselines' panel first."""
    panels = ["acc_base", *[m for m in accs if by_noise[f"{m}_mean"].notna().sum() > by_noise.criterion.nunique()]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    kinds = sorted(by_noise.noise_kind.dropna().unique()) if "noise_kind" in by_noise else []
    kinds = kinds or [None]
    clean = by_noise.label_noise == by_noise.label_noise.min()
    for ax, metric in zip(axes[0], panels):
        for kind, linestyle in zip(kinds, KIND_LINESTYLES):
            # the clean level has no kind: it starts every kind's line
            part = by_noise if kind is None else by_noise[clean | (by_noise.noise_kind == kind)]
            _errorbar_lines(ax, part[part[f"{metric}_mean"].notna()], "label_noise", metric, order, style,
                            linestyle=linestyle, suffix="" if len(kinds) == 1 else f", {kind}")
        ax.set_xlabel("label noise (fraction of training labels flipped)")
        ax.set_title(panel_title(metric, finetuned_at))
    shown = [c for c in order if c in set(by_noise.criterion)]
    last = axes[0][-1]
    _legend(last, _criterion_handles(shown, style), "criterion", style, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if len(kinds) > 1:
        _legend(last, _kind_handles([(kind, "o", linestyle) for kind, linestyle in zip(kinds, KIND_LINESTYLES)]),
                "noise kind", style, loc="lower left", bbox_to_anchor=(1.02, 0.0))
    fig.suptitle(f"Accuracy on the clean test set vs. label noise ({main_pruning}, mean ± std over seeds)", y=1.02)
    return fig


def plot_score_stability(table: pd.DataFrame, order: list[str], counted: str, style: Style):
    """Spearman and Jaccard agreement with the largest scoring set against scoring images (log
    scale), one line per criterion; `counted` says what each mean is over."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ["spearman", "jaccard"]):
        _errorbar_lines(ax, table, "score_images", metric, order, style, log_x=True)
        ax.set_xlabel("scoring images (log scale)")
        ax.set_ylim(-0.05, 1.05)
    _legend(axes[1], _criterion_handles([c for c in order if c in set(table.criterion)], style), "criterion", style,
            loc="lower right")
    fig.suptitle(f"Score stability vs. the largest scoring set (mean ± std over {counted})")
    return fig


def budget_curve(runs: pd.DataFrame, main_score_images: int) -> pd.DataFrame:
    """Each clean run's accuracy along the budget axis: raw, BN-recalibrated, then every
    fine-tuning budget. Rows criterion, pruning, macs_reduction, seed, acc_base, budget, order,
    acc; only pruning levels that some budget fine-tuned. Drawn by `plot_budget_curve`, tabled as by_budget."""
    runs = runs[(runs.label_noise == main_label_noise(runs.label_noise)) & main_slice(runs, main_score_images)]
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


def plot_budget_curve(curve: pd.DataFrame, style: Style = DEFAULT_STYLE, alpha: float = 0.05):
    """Accuracy against fine-tuning budget (the rows of `budget_curve`): one panel per fine-tuned pruning
    level, one line per criterion in `style`'s order (mean over seeds, with its (1 - alpha) t
    interval), the x axis at raw and BN-recalibrated first and then each budget (categorical, in
    order of length); the baselines' mean as a dashed line. The figure answers: do criteria that
    differ before fine-tuning still differ after recovery?"""
    levels = sorted(curve.pruning.unique(), key=lambda text: (curve[curve.pruning == text].macs_reduction.mean(), text))
    points = sorted(set(curve.budget), key=budget_order)
    fig, axes = plt.subplots(1, max(len(levels), 1), figsize=(5.5 * max(len(levels), 1), 4.2), squeeze=False,
                             sharey=True)
    for ax, level in zip(axes[0], levels):
        part = curve[curve.pruning == level]
        for criterion in style.order(part.criterion.unique()):
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
                        **style.series(criterion))
        base = part.groupby("seed").acc_base.first().mean()
        ax.axhline(base, color=NEUTRAL, linestyle="--", linewidth=1, label=f"baselines' mean ({base:.2f}%)")
        ax.set_xticks(range(len(points)), [budget_label(p) for p in points], rotation=20, fontsize=8)
        ax.set_xlabel("fine-tuning budget")
        ax.set_title(f"{level} (-{part.macs_reduction.mean():.1f}% MACs)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    last = axes[0][-1]
    handles = _criterion_handles(style.order(curve.criterion.unique()), style)
    _legend(last, handles + [line for line in last.get_lines() if line.get_label().startswith("baselines'")],
            "criterion", style, loc="lower right")
    seeds = curve.seed.nunique()
    fig.suptitle(f"Accuracy vs. fine-tuning budget, clean labels: mean over {seeds} seed{'s' if seeds != 1 else ''}"
                 + (f", {100 * (1 - alpha):g}% t interval" if seeds > 1 else " (no interval from one seed)"))
    return fig
