"""Tables and figures of a study, drawn only from runs.csv and stability.csv.

Every table is written as .csv (mean, std and n columns per metric, full precision), .md and .tex
("mean ± std" with the metric's decimals, `nnprune.analysis.table_text`; a missing value is an en dash),
and every figure as .png and .pdf. Means and standard deviations are over seeds (std with
ddof=1; a single seed gives std NaN, shown as "n=1"), those of score_stability over layers and
seeds (its n counts both). runs.csv has one row per run and
fine-tuning budget: the tables by pruning level, score_images and label noise read each run at the
study's largest budget (`aggregate.at_budget`); `by_budget` and `acc_vs_budget` read every budget.
"""
from __future__ import annotations

import contextlib
import contextvars
import io
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from nnprune.analysis.aggregate import at_budget, one_per_run, study_budgets_of
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
from nnprune.errors import UserError
from nnprune.files import atomic_write, write_text
from nnprune.plan.budgets import BN, RAW, budget_label, budget_order
from nnprune.plan.names import CRITERION_SOURCES, DEFAULT_FOCUS, PAPER_CRITERION
from nnprune.plan.schemes import parse_scheme
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

# Published figures, for the paper-comparison table. Not measured here: CIFAR-10 / ResNet scale.
PAPER_COLUMNS = ("source", "setting", "criterion", "acc_base", "acc_pruned", "acc_finetuned", "macs_reduction",
                 "params_reduction", "n_seeds")
PAPER_ROWS = [
    ("Yeom et al. 2021 (energy-aware), reported", "ResNet-56 / CIFAR-10", PAPER_CRITERION, 93.26, None, 94.13, 40.4,
     45.9),
    ("Yeom et al. 2021 (energy-aware), reported", "ResNet-110 / CIFAR-10", PAPER_CRITERION, 93.50, None, 94.61, 49.8,
     52.9),
    ("HRank (Lin et al. 2020), reported", "ResNet-56 / CIFAR-10", "hrank", 93.26, None, 93.17, 50.0, 42.4),
    ("FPGM (He et al. 2019), reported", "ResNet-56 / CIFAR-10", "fpgm", 93.59, None, 93.49, 52.6, None),
    ("HRankPlus, reported", "ResNet-56 / CIFAR-10", "hrank", 93.26, None, 93.57, 47.4, None),
    ("CHIP (Sui et al. 2021), reported", "ResNet-56 / CIFAR-10", "chip", 93.26, None, 94.16, 47.4, None),
]


# One colour per registered criterion (nnprune/plan/names.py's order), the same in every figure of every
# study: matplotlib's tab10 without its grey, which the legends keep for kinds of points.
PALETTE = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9", "#7b4173")
NEUTRAL = "0.3"
KIND_MARKERS = ("o", "s", "^", "D")
KIND_LINESTYLES = ("-", "--", ":", "-.")


# Outside criteria (not in nnprune/plan/names.py): a colour of their own, from the name, the same
# in every figure of every study.
OUTSIDE_PALETTE = ("black", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f3b08")
# The criterion the claims test (claims.focus): first in every figure, drawn thicker and named in
# bold. `focused` sets it while a study's figures are drawn.
FOCUS: contextvars.ContextVar[str] = contextvars.ContextVar("focus", default=DEFAULT_FOCUS)


@contextlib.contextmanager
def focused(focus: str):
    """Draw the figures made inside this block for `focus` (claims.focus)."""
    token = FOCUS.set(focus)
    try:
        yield focus
    finally:
        FOCUS.reset(token)


def criterion_color(criterion: str) -> str:
    """The colour of `criterion` in every figure: a registered one's by nnprune/plan/names.py's
    order; an outside one's from its name (crc32)."""
    names = list(CRITERION_SOURCES)
    if criterion in names:
        return PALETTE[names.index(criterion) % len(PALETTE)]
    return OUTSIDE_PALETTE[zlib.crc32(criterion.encode()) % len(OUTSIDE_PALETTE)]


def criterion_order(present, criteria=()) -> list[str]:
    """The criteria in `present`, in the order of every figure: the focus first, then the order of
    `criteria` (the config's), then nnprune/plan/names.py's, then any other name sorted."""
    present = set(present)
    ranked = [c for c in dict.fromkeys([FOCUS.get(), *criteria, *CRITERION_SOURCES]) if c in present]
    return ranked + sorted(present - set(ranked))


def criterion_style(criterion: str) -> dict:
    """Matplotlib style of a criterion's series: its colour; the focus thicker, larger and on top."""
    focus = criterion == FOCUS.get()
    return {"color": criterion_color(criterion), "linewidth": 2.6 if focus else 1.3,
            "markersize": 8 if focus else 5, "zorder": 5 if focus else 2}


def _bold_focus(texts) -> None:
    """Bold the tick or legend labels that name the focus (e.g. `l1` and `l1, pairwise`)."""
    for text in texts:
        if text.get_text().replace(",", " ").split(" ")[0] == FOCUS.get():
            text.set_fontweight("bold")


def _legend(ax, handles: list, title: str, **where):
    """A legend of `handles` that leaves the axis' other legends in place; the focus in bold."""
    from matplotlib.legend import Legend

    legend = Legend(ax, handles, [h.get_label() for h in handles], title=title, fontsize=7,
                    title_fontsize=8, handlelength=3, **where)
    ax.add_artist(legend)
    legend.set_clip_on(False)       # add_artist clips to the axes: a legend beside them would vanish
    _bold_focus(legend.get_texts())
    return legend


def _criterion_handles(order: list[str], dashed=frozenset(), suffix: str = "") -> list:
    """Legend lines for `order`, each in its criterion's style (dashed: those in `dashed`)."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], marker="o", label=criterion + (suffix if criterion in dashed else ""),
                   linestyle="--" if criterion in dashed else "-", **criterion_style(criterion))
            for criterion in order]


def _kind_handles(kinds: list[tuple[str, str, str]]) -> list:
    """Neutral (grey) legend entries for kinds of points: (label, marker, linestyle) each."""
    from matplotlib.lines import Line2D

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


def summarise(frame: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, std and n of each metric per key combination: columns {metric}_mean/_std/_n."""
    grouped = frame.groupby(keys, dropna=False)[metrics]
    stats = grouped.agg(["mean", "std", "count"])
    stats.columns = [f"{metric}_{'n' if stat == 'count' else stat}" for metric, stat in stats.columns]
    return stats.reset_index()


def _pretty(table: pd.DataFrame, keys: list[str], metrics: list[str],
            latex: bool) -> tuple[list[str], list[list[str]], list[bool]]:
    """(header, rows of text cells, right-aligned per column) of a table, as Markdown or LaTeX text.
    A summary (`metrics` given): the key columns, each metric as mean ± std with its decimals
    (table_text.METRIC_DECIMALS), and n, the most values behind a cell. A plain table (no
    `metrics`): every column, floats with their metric's decimals. Missing values: an en dash."""
    text = latex_escape if latex else str
    dash = LATEX_DASH if latex else DASH
    names, columns, right = [], [], []
    for key in keys if metrics else list(table.columns):
        digits = None if metrics else METRIC_DECIMALS.get(key, DEFAULT_DECIMALS)
        names.append(KEY_LABELS.get(key, METRIC_LABELS.get(key, key)))
        columns.append([text(cell) for cell in column_text(table[key], digits, dash)])
        right.append(is_numeric(table[key]))
    records = table.to_dict("records")
    for metric in metrics:
        digits = METRIC_DECIMALS.get(metric, DEFAULT_DECIMALS)
        names.append(METRIC_LABELS.get(metric, metric))
        columns.append([mean_sd(r[f"{metric}_mean"], r[f"{metric}_std"], r[f"{metric}_n"], digits, latex)
                        for r in records])
        right.append(True)
    n_columns = [f"{m}_n" for m in metrics if f"{m}_n" in table]
    if n_columns:
        names.append("n")
        columns.append([str(int(n)) for n in table[n_columns].max(axis=1)])
        right.append(True)
    header = [latex_escape(name) for name in names] if latex else names
    return header, [list(row) for row in zip(*columns)], right


def _plain_csv(table: pd.DataFrame) -> str:
    """A plain table's CSV: each float column at its metric's decimals, a missing value empty."""
    text = pd.DataFrame({column: column_text(table[column], METRIC_DECIMALS.get(column, DEFAULT_DECIMALS), "")
                         for column in table.columns})
    return text.to_csv(index=False)


def write_table(folder: Path, name: str, table: pd.DataFrame, keys: list[str],
                metrics: list[str], caption: str) -> list[Path]:
    """{name}.csv (a summary: the mean, std and n columns at full precision), {name}.md and
    {name}.tex (booktabs, compiles in pdflatex) in `folder`."""
    header, rows, right = _pretty(table, keys, metrics, latex=False)
    markdown = markdown_table(header, rows, right)
    header, rows, right = _pretty(table, keys, metrics, latex=True)
    latex = latex_table(header, rows, right, caption, f"tab:{name}")
    return [write_text(folder / f"{name}.csv", table.to_csv(index=False) if metrics else _plain_csv(table)),
            write_text(folder / f"{name}.md", f"{caption}\n\n{markdown}\n"),
            write_text(folder / f"{name}.tex", latex)]


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
                                     "largest score_images (mean ± std over layers and seeds; n = layers "
                                     "x seeds).")
    ours = summarise(runs[noise0 & main_si & main_level], ["dataset", "arch", "criterion"],
                     ["acc_base", "acc_pruned", "acc_finetuned", "macs_reduction", "params_reduction"])
    rows = [{"source": "nnprune, measured", "setting": f"{r.arch} / {r.dataset}",
             "criterion": r.criterion, "acc_base": r.acc_base_mean, "acc_pruned": r.acc_pruned_mean,
             "acc_finetuned": r.acc_finetuned_mean, "macs_reduction": r.macs_reduction_mean,
             "params_reduction": r.params_reduction_mean, "n_seeds": int(r.acc_base_n)}
            for r in ours.itertuples()]
    rows += [{"source": s, "setting": setting, "criterion": c if c in CRITERION_SOURCES else f"{c} (reported only)",
              "acc_base": b, "acc_pruned": p, "acc_finetuned": f, "macs_reduction": m, "params_reduction": q,
              "n_seeds": None} for s, setting, c, b, p, f, m, q in PAPER_ROWS]
    comparison = pd.DataFrame(rows, columns=list(PAPER_COLUMNS)).astype({"n_seeds": "Int64"})
    tables["paper_comparison"] = (comparison.astype({c: float for c in PAPER_COLUMNS[3:-1]}), [], [],
                                  f"Our runs (pruning {main_pruning}, means over seeds) beside "
                                  "figures reported in the literature (docs/background.md §1, §5, §6). Reported "
                                  "rows are other datasets and networks: compare trends, not values.")
    return tables


PANEL_TITLES = {"acc_pruned": "before fine-tuning", "acc_pruned_bn": "BN recalibrated, no fine-tuning",
                "acc_finetuned": "after fine-tuning", "acc_base": "unpruned baseline"}


def panel_title(metric: str, finetuned_at: str | None = None) -> str:
    """A panel's title; the fine-tuned panel names its budget ("after fine-tuning (2 epochs)")."""
    title = PANEL_TITLES[metric]
    return f"{title} ({budget_label(finetuned_at)})" if metric == "acc_finetuned" and finetuned_at else title


def _errorbar_lines(ax, table: pd.DataFrame, x: str, metric: str, order: list[str], log_x: bool = False,
                    linestyle: str = "-", suffix: str = "") -> None:
    """One series per criterion of `order` found in `table`, in that order: `metric`'s mean ± std
    against column `x`."""
    for criterion in order:
        part = table[table.criterion == criterion].sort_values(x)
        if part.empty:
            continue
        ax.errorbar(part[x], part[f"{metric}_mean"], yerr=part[f"{metric}_std"].fillna(0), marker="o", capsize=3,
                    label=criterion + suffix, linestyle=linestyle, **criterion_style(criterion))
    if log_x:
        from matplotlib.ticker import ScalarFormatter
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)


def _families(table: pd.DataFrame) -> pd.Series:
    """Each row's pruning family (`pruning_point`)."""
    return table.pruning.map(lambda text: pruning_point(text)[1])


def _macs_lines(ax, table: pd.DataFrame, metric: str, order: list[str], families: list[str]) -> None:
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
                        **criterion_style(criterion))
    ax.set_xlabel("MACs removed (%)")


def _dots_per_criterion(ax, table: pd.DataFrame, metric: str, order: list[str], families: list[str]) -> None:
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
                        **criterion_style(criterion))
    ax.set_xticks(range(len(order)), order, rotation=30, fontsize=8)
    _bold_focus(ax.get_xticklabels())
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


def plot_macs(by_pruning: pd.DataFrame, accs: list[str], order: list[str], main_pruning: str,
              finetuned_at: str | None = None):
    """The MACs figure, one panel per accuracy of `accs` on its own y range. With two or more
    pruning levels (`pruning_point`) accuracy (%) against MACs removed (%); with one, a dot per
    criterion, titled by the level's pruning entries. Markers (neutral in the legend) tell the
    pruning families apart."""
    import matplotlib.pyplot as plt

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
        (_macs_lines if along_macs else _dots_per_criterion)(ax, measured, metric, order, families)
        ax.set_ylabel(METRIC_LABELS[metric])
        if not along_macs:
            ax.set_xlim(-0.5, len(order) - 0.5)
    handles = _family_handles(by_pruning, families, along_macs)
    fig.legend(handles=handles, title="pruning (marker)", loc="outside lower center", ncol=len(handles), fontsize=8,
               title_fontsize=8, handlelength=3)
    if along_macs:
        shown = [c for c in order if c in set(by_pruning.criterion)]
        fig.legend(handles=_criterion_handles(shown), title="criterion", loc="outside right center", fontsize=7,
                   title_fontsize=8)
        _bold_focus(fig.legends[-1].get_texts())
        title = "Accuracy vs. MACs removed"
    else:
        title = f"Accuracy by criterion at {' and '.join(entries)}"
    fig.suptitle(f"{title} (mean ± std over seeds)")
    return fig


def plot_score_images(by_size: pd.DataFrame, accs: list[str], order: list[str], main_pruning: str,
                      finetuned_at: str | None = None):
    """Accuracy (%) against the number of scoring images (log scale), one panel per accuracy of
    `accs`: a line per data-driven criterion, a dashed level per data-free one."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(accs), figsize=(5.5 * len(accs), 4), squeeze=False)     # own y ranges
    data_driven_rows, free = by_size[by_size.score_images > 0], by_size[by_size.score_images == 0]
    for ax, metric in zip(axes[0], accs):
        _errorbar_lines(ax, data_driven_rows, "score_images", metric, order, log_x=True)
        for criterion in [c for c in order if c in set(free.criterion)]:
            mean = free[free.criterion == criterion][f"{metric}_mean"].mean()
            style = criterion_style(criterion)
            ax.axhline(mean, linestyle="--", linewidth=style["linewidth"], color=style["color"],
                       label=f"{criterion} (data-free)")
        ax.set_xlabel("scoring images (log scale)")
        ax.set_title(panel_title(metric, finetuned_at))
    shown = [c for c in order if c in set(by_size.criterion)]
    _legend(axes[0][-1], _criterion_handles(shown, dashed=set(free.criterion), suffix=" (data-free)"), "criterion",
            loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Accuracy vs. scoring data size ({main_pruning}, mean ± std over seeds)", y=1.02)
    return fig


def plot_label_noise(by_noise: pd.DataFrame, accs: list[str], order: list[str], main_pruning: str,
                     finetuned_at: str | None = None):
    """Clean-test accuracy (%) against label noise (fraction of labels flipped): one line per
    criterion and noise kind (a line style each, neutral in the legend), each kind's line starting
    at the clean level; the baselines' panel first."""
    import matplotlib.pyplot as plt

    panels = ["acc_base", *[m for m in accs if by_noise[f"{m}_mean"].notna().sum() > by_noise.criterion.nunique()]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    kinds = sorted(by_noise.noise_kind.dropna().unique()) if "noise_kind" in by_noise else []
    kinds = kinds or [None]
    clean = by_noise.label_noise == by_noise.label_noise.min()
    for ax, metric in zip(axes[0], panels):
        for kind, linestyle in zip(kinds, KIND_LINESTYLES):
            # the clean level has no kind: it starts every kind's line
            part = by_noise if kind is None else by_noise[clean | (by_noise.noise_kind == kind)]
            _errorbar_lines(ax, part[part[f"{metric}_mean"].notna()], "label_noise", metric, order,
                            linestyle=linestyle, suffix="" if len(kinds) == 1 else f", {kind}")
        ax.set_xlabel("label noise (fraction of training labels flipped)")
        ax.set_title(panel_title(metric, finetuned_at))
    shown = [c for c in order if c in set(by_noise.criterion)]
    last = axes[0][-1]
    _legend(last, _criterion_handles(shown), "criterion", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if len(kinds) > 1:
        _legend(last, _kind_handles([(kind, "o", style) for kind, style in zip(kinds, KIND_LINESTYLES)]),
                "noise kind", loc="lower left", bbox_to_anchor=(1.02, 0.0))
    fig.suptitle(f"Accuracy on the clean test set vs. label noise ({main_pruning}, mean ± std over seeds)", y=1.02)
    return fig


def plot_score_stability(table: pd.DataFrame, order: list[str], counted: str):
    """Spearman and Jaccard agreement with the largest scoring set against scoring images (log
    scale), one line per criterion; `counted` says what each mean is over."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ["spearman", "jaccard"]):
        _errorbar_lines(ax, table, "score_images", metric, order, log_x=True)
        ax.set_xlabel("scoring images (log scale)")
        ax.set_ylim(-0.05, 1.05)
    _legend(axes[1], _criterion_handles([c for c in order if c in set(table.criterion)]), "criterion",
            loc="lower right")
    fig.suptitle(f"Score stability vs. the largest scoring set (mean ± std over {counted})")
    return fig


def save_figure(fig, folder: Path, name: str) -> list[Path]:
    import matplotlib.pyplot as plt

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


def plot_budget_curve(curve: pd.DataFrame, alpha: float = 0.05, criteria=()):
    """Accuracy against fine-tuning budget: one panel per fine-tuned pruning level, one line per
    criterion (mean over seeds, with its (1 - alpha) t interval), the x axis at raw and BN-recalibrated
    first and then each budget (categorical, in order of length); the baselines' mean as a dashed
    line; criteria in `criterion_order` (`criteria`: the config's order). The figure answers: do
    criteria that differ before fine-tuning still differ after recovery?"""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnprune.analysis.stats import t_interval

    levels = sorted(curve.pruning.unique(), key=lambda text: (curve[curve.pruning == text].macs_reduction.mean(), text))
    points = sorted(set(curve.budget), key=budget_order)
    fig, axes = plt.subplots(1, max(len(levels), 1), figsize=(5.5 * max(len(levels), 1), 4.2), squeeze=False,
                             sharey=True)
    for ax, level in zip(axes[0], levels):
        part = curve[curve.pruning == level]
        for criterion in criterion_order(part.criterion.unique(), criteria):
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
                        **criterion_style(criterion))
        base = part.groupby("seed").acc_base.first().mean()
        ax.axhline(base, color=NEUTRAL, linestyle="--", linewidth=1, label=f"baselines' mean ({base:.2f}%)")
        ax.set_xticks(range(len(points)), [budget_label(p) for p in points], rotation=20, fontsize=8)
        ax.set_xlabel("fine-tuning budget")
        ax.set_title(f"{level} (-{part.macs_reduction.mean():.1f}% MACs)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    last = axes[0][-1]
    handles = _criterion_handles(criterion_order(curve.criterion.unique(), criteria))
    _legend(last, handles + [line for line in last.get_lines() if line.get_label().startswith("baselines'")],
            "criterion", loc="lower right")
    seeds = curve.seed.nunique()
    fig.suptitle(f"Accuracy vs. fine-tuning budget, clean labels: mean over {seeds} seed{'s' if seeds != 1 else ''}"
                 + (f", {100 * (1 - alpha):g}% t interval" if seeds > 1 else " (no interval from one seed)"))
    return fig


def absent_figures(tables: dict, main_pruning: str) -> dict[str, str]:
    """The figures this study does not draw, each with why: their axis would have one value."""
    absent = {}
    sizes = sorted(tables["by_score_images"][0].query("score_images > 0").score_images.unique())
    if len(sizes) < 2:
        pruned = (f"the data-driven criteria were pruned at one score_images only ({sizes[0]}, grid.score_sweep)"
                  if sizes else "no data-driven criterion was pruned (grid.prune_criteria)")
        absent["acc_vs_score_images"] = (f"{pruned} at {main_pruning}: a score_images axis would have "
                                         f"{len(sizes)} value{'s' if len(sizes) != 1 else ''}. The data-size "
                                         "evidence is tables/score_stability.")
    noise = sorted(tables["by_label_noise"][0].label_noise.unique())
    if len(noise) < 2:
        absent["acc_vs_label_noise"] = (f"one label-noise level only ({', '.join(f'{n:g}' for n in noise)}) at "
                                        f"{main_pruning}: a label-noise axis would have one value. "
                                        "tables/by_label_noise holds its accuracies.")
    if "score_stability" in tables and tables["score_stability"][0].score_images.nunique() < 2:
        absent["score_stability"] = ("scores at one score_images only, the reference itself: agreement "
                                     "with it is 1 by definition.")
    return absent


def write_figure_notes(folder: Path, drawn: list[str], absent: dict[str, str]) -> Path:
    """figures/notes.md: the figures drawn, and each one left out with why."""
    lines = ["# Figures of this study", "",
             "Drawn by `nnprune report` from runs.csv and stability.csv, each as .png and .pdf: "
             + ", ".join(drawn) + ".", "",
             "Not drawn:" if absent else "Not drawn: none (every axis has two values or more)."]
    lines += [f"- {name}: {why}" for name, why in absent.items()]
    return write_text(folder / "notes.md", "\n".join(lines) + "\n")


def build_figures(runs: pd.DataFrame, tables: dict, main_pruning: str, folder: Path, criteria=(),
                  stability: pd.DataFrame | None = None) -> list[Path]:
    """The study's figures (those of `absent_figures` left out), criteria in `criterion_order`
    (`criteria`: the config's order) and their colours; `stability` (stability.csv) says what the
    score-stability means are over. Returns the files written."""
    import matplotlib
    matplotlib.use("Agg")

    budgets = study_budgets_of(runs)
    at = budgets[-1] if budgets else None          # the budget of the fine-tuned panels
    runs = at_budget(runs)
    accs = accuracy_metrics(runs)
    order = criterion_order(runs.criterion.unique(), criteria)
    absent = absent_figures(tables, main_pruning)
    figures = {"acc_vs_macs": lambda: plot_macs(tables["by_pruning"][0], accs, order, main_pruning, at),
               "acc_vs_score_images": lambda: plot_score_images(tables["by_score_images"][0], accs, order,
                                                                main_pruning, at),
               "acc_vs_label_noise": lambda: plot_label_noise(tables["by_label_noise"][0], accs, order,
                                                              main_pruning, at)}
    if "score_stability" in tables:
        table = tables["score_stability"][0]
        figures["score_stability"] = lambda: plot_score_stability(
            table, criterion_order(table.criterion.unique(), criteria), _stability_counted(stability))
    written = []
    for name, draw in figures.items():
        if name not in absent:
            written += save_figure(draw(), folder, name)
        for stale in (folder / f"{name}.png", folder / f"{name}.pdf") if name in absent else ():
            stale.unlink(missing_ok=True)       # an earlier report's figure, along an axis this study lacks
    return written


def _stability_counted(stability: pd.DataFrame | None) -> str:
    """What each score-stability mean is over: "19 layers x 5 seeds (n = 95)" at the main label noise."""
    if stability is None or not len(stability):
        return "layers and seeds"
    main = stability[stability.label_noise == main_label_noise(stability.label_noise)]
    layers, seeds = main.layer.nunique(), main.baseline.nunique()
    return f"{layers} layers × {seeds} seeds, n = {layers * seeds}"


def write_report(study_dir: Path, main_pruning: str | None = None,
                 main_score_images: int | None = None, criteria=(), focus: str = DEFAULT_FOCUS) -> list[Path]:
    """Write tables/ and figures/ under `study_dir` from runs.csv and stability.csv, and
    figures/notes.md (which figures were drawn, why any was not); `criteria`: the config's order
    of the criteria, kept by every figure; `focus`: the criterion the claims test, first and
    thicker in every figure."""
    with focused(focus):
        return _write_report(study_dir, main_pruning, main_score_images, criteria)


def _write_report(study_dir: Path, main_pruning: str | None, main_score_images: int | None, criteria) -> list[Path]:
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
    written += build_figures(runs, tables, main_pruning, study_dir / "figures", criteria, stability)
    if len(curve):
        written += save_figure(plot_budget_curve(curve, criteria=criteria), study_dir / "figures", "acc_vs_budget")
    drawn = [path.stem for path in written if path.parent.name == "figures" and path.suffix == ".png"]
    written.append(write_figure_notes(study_dir / "figures", drawn, absent_figures(tables, main_pruning)))
    return written
