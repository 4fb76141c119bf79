"""The leaderboard of a study with several fine-tuned cuts: per cut and criterion, the accuracy after
the largest fine-tuning budget over seeds, the difference from random (paired by seed, Holm across
the table) with its verdict, the measured MACs and params cut, and a rank that noise cannot give.

Rank: at each cut the criterion with the highest mean leads; every criterion whose paired difference
from the leader is not a significant loss (verdict "equivalent" or "inconclusive" by the claims' rule,
`stats.verdict`, Holm across the cut) shares its rank; the rest are ranked the same way below.
The from-scratch control (runs.csv rows of kind "scratch") is a row of its own per cut, compared with
the focus criterion by the same rule; the baselines' mean is a row too. A cut where the best criterion
ends more than `regime_gap_pp` below the baselines is marked outside the paper's regime, and still
ranked. Written as tables/leaderboard.{csv,md,tex} and figures/leaderboard.{png,pdf}."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nnprune.analysis.aggregate import at_budget, study_budgets_of
from nnprune.analysis.stats import paired_family, t_interval
from nnprune.analysis.table_text import latex_escape, latex_table, markdown_table, number
from nnprune.files import write_text
from nnprune.plan.budgets import budget_label

FLOOR = "random"
SCRATCH = "scratch"
COLUMNS = ["pruning", "macs_cut", "params_cut", "criterion", "seeds", "acc_mean", "acc_ci_low", "acc_ci_high",
           "vs_random", "vs_random_ci_low", "vs_random_ci_high", "vs_random_verdict", "vs_random_mdd", "rank",
           "vs_best_verdict", "regime"]


def fine_tuned_cuts(runs: pd.DataFrame) -> list[str]:
    """The pruning levels fine-tuned at the study's largest budget, in order of measured MACs cut."""
    budgets = study_budgets_of(runs)
    if not budgets:
        return []
    done = runs[runs.budget.astype(str) == budgets[-1]]
    return list(done.groupby("pruning").macs_reduction.mean().sort_values().index)


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    low, high = t_interval(values)
    return float(np.mean(values)), low, high


def _paired(rows: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """The seeds both criteria ran: replicate (the seed), a (first's accuracy), b (second's)."""
    pair = rows[rows.criterion.isin([first, second])].pivot_table(index="seed", columns="criterion",
                                                                   values="acc_finetuned").dropna()
    return pd.DataFrame({"replicate": pair.index, "a": pair[first], "b": pair[second]})


def _versus(rows: pd.DataFrame, first: str, second: str, margin: float, alpha: float, power: float) -> dict:
    """One paired comparison (first - second, by seed) with its verdict."""
    frame = _paired(rows, first, second).assign(point=0)
    return paired_family(frame, ["point"], margin, alpha, power).iloc[0].to_dict()


def _ranks(rows: pd.DataFrame, margin: float, alpha: float, power: float) -> tuple[dict, dict]:
    """criterion -> rank, and criterion -> its verdict against the leader of its rank."""
    means = rows.groupby("criterion").acc_finetuned.mean().sort_values(ascending=False)
    left, ranks, against = list(means.index), {}, {}
    rank = 1
    while left:
        leader = left[0]
        ranks[leader], against[leader] = rank, "leader"
        for other in left[1:]:
            found = _versus(rows, other, leader, margin, alpha / max(1, len(left) - 1), power)["verdict"]
            if found in ("equivalent", "inconclusive"):
                ranks[other], against[other] = rank, found
        left = [c for c in left if c not in ranks]
        rank += 1
    return ranks, against


def leaderboard(runs: pd.DataFrame, scratch: pd.DataFrame, focus: str, margin: float, regime_gap_pp: float,
                alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """The leaderboard frame (COLUMNS), from runs.csv's pruned rows at the main score_images and
    clean labels (`runs`) and its scratch rows: one row per cut and criterion, then "scratch" and
    "baselines" rows per cut (their rank and vs_random empty)."""
    if "params_reduction" not in runs:          # older runs.csv files: reported as missing
        runs = runs.assign(params_reduction=np.nan)
    budgets = study_budgets_of(runs)
    runs = at_budget(runs, budgets[-1]) if budgets else runs
    records = []
    family = []
    for cut in fine_tuned_cuts(runs):
        rows = runs[(runs.pruning == cut) & runs.acc_finetuned.notna()]
        ranks, against = _ranks(rows, margin, alpha, power)
        base = rows.groupby("seed").acc_base.first().to_numpy(float)
        best = max(rows.groupby("criterion").acc_finetuned.mean())
        regime = "outside" if base.mean() - best > regime_gap_pp else "inside"
        for criterion, part in rows.groupby("criterion", sort=False):
            mean, low, high = _interval(part.acc_finetuned.to_numpy(float))
            records.append({"pruning": cut, "macs_cut": part.macs_reduction.mean(),
                            "params_cut": part.params_reduction.mean(), "criterion": criterion,
                            "seeds": part.seed.nunique(), "acc_mean": mean, "acc_ci_low": low, "acc_ci_high": high,
                            "rank": ranks[criterion], "vs_best_verdict": against[criterion], "regime": regime})
            if criterion != FLOOR and FLOOR in set(rows.criterion):
                family.append(_paired(rows, criterion, FLOOR).assign(pruning=cut, criterion=criterion))
        own = scratch[scratch.pruning == cut] if len(scratch) else scratch
        if len(own):
            mean, low, high = _interval(own.acc_finetuned.to_numpy(float))
            records.append({"pruning": cut, "macs_cut": rows[rows.criterion == focus].macs_reduction.mean(),
                            "params_cut": rows[rows.criterion == focus].params_reduction.mean(),
                            "criterion": SCRATCH, "seeds": own.seed.nunique(), "acc_mean": mean,
                            "acc_ci_low": low, "acc_ci_high": high, "regime": regime})
        mean, low, high = _interval(base)
        records.append({"pruning": cut, "macs_cut": 0.0, "params_cut": 0.0, "criterion": "baselines",
                        "seeds": len(base), "acc_mean": mean, "acc_ci_low": low, "acc_ci_high": high,
                        "regime": regime})
    frame = pd.DataFrame(records, columns=COLUMNS)
    if family:
        tested = paired_family(pd.concat(family), ["pruning", "criterion"], margin, alpha, power)
        tested = tested.rename(columns={"mean_difference": "vs_random", "ci_low": "vs_random_ci_low",
                                        "ci_high": "vs_random_ci_high", "verdict": "vs_random_verdict",
                                        "mdd": "vs_random_mdd"})
        keep = ["pruning", "criterion", "vs_random", "vs_random_ci_low", "vs_random_ci_high", "vs_random_verdict",
                "vs_random_mdd"]
        frame = frame.drop(columns=keep[2:]).merge(tested[keep], on=["pruning", "criterion"], how="left")[COLUMNS]
    return frame


def scratch_comparison(runs: pd.DataFrame, scratch: pd.DataFrame, focus: str, margin: float,
                       alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Per cut: the focus criterion pruned and fine-tuned minus its architecture trained from scratch,
    paired by seed, Holm across the cuts (`stats.paired_family`)."""
    budgets = study_budgets_of(runs)
    pruned = at_budget(runs, budgets[-1]) if budgets else runs
    pruned = pruned[(pruned.criterion == focus) & pruned.acc_finetuned.notna()]
    both = pruned.merge(scratch, on=["pruning", "seed"], suffixes=("", "_scratch"))
    frame = pd.DataFrame({"pruning": both.pruning, "replicate": both.seed, "a": both.acc_finetuned,
                          "b": both.acc_finetuned_scratch})
    return paired_family(frame, ["pruning"], margin, alpha, power)


def focus_against_each(runs: pd.DataFrame, focus: str, margin: float, alpha: float = 0.05,
                       power: float = 0.8) -> pd.DataFrame:
    """The focus criterion minus each other criterion at each fine-tuned cut, at the largest budget,
    paired by seed, Holm across the whole table (`stats.paired_family`): one row per (pruning,
    criterion)."""
    budgets = study_budgets_of(runs)
    runs = at_budget(runs, budgets[-1]) if budgets else runs
    family = []
    for cut in fine_tuned_cuts(runs):
        rows = runs[(runs.pruning == cut) & runs.acc_finetuned.notna()]
        if focus not in set(rows.criterion):
            continue
        family += [_paired(rows, focus, other).assign(pruning=cut, criterion=other)
                   for other in sorted(set(rows.criterion) - {focus})]
    if not family:
        return pd.DataFrame()
    return paired_family(pd.concat(family), ["pruning", "criterion"], margin, alpha, power)


def _text_rows(frame: pd.DataFrame, latex: bool) -> tuple[list[str], list[list[str]], list[bool]]:
    header = ["cut", "MACs cut (%)", "params cut (%)", "criterion", "seeds", "accuracy (%) [95% CI]",
              "vs random (pp) [95% CI]", "verdict", "MDD (pp)", "rank", "regime"]
    rows = []
    for row in frame.itertuples():
        interval = f"{number(row.acc_mean, 2)} [{number(row.acc_ci_low, 2)}, {number(row.acc_ci_high, 2)}]"
        versus = ("" if pd.isna(row.vs_random) else
                  f"{number(row.vs_random, 2, sign=True)} [{number(row.vs_random_ci_low, 2, sign=True)}, "
                  f"{number(row.vs_random_ci_high, 2, sign=True)}]")
        rank = "" if pd.isna(row.rank) else f"{int(row.rank)}" + ("=" if row.vs_best_verdict not in ("leader",) else "")
        cells = [row.pruning, number(row.macs_cut, 1), number(row.params_cut, 1), row.criterion, str(row.seeds),
                 interval, versus, "" if pd.isna(row.vs_random_verdict) else row.vs_random_verdict,
                 "" if pd.isna(row.vs_random_mdd) else number(row.vs_random_mdd, 2), rank, row.regime]
        rows.append([latex_escape(c) for c in cells] if latex else cells)
    right = [False, True, True, False, True, True, True, False, True, True, False]
    return ([latex_escape(h) for h in header] if latex else header), rows, right


def write_leaderboard(frame: pd.DataFrame, folder: Path, budget: str | None) -> list[Path]:
    """tables/leaderboard.csv (full precision), .md and .tex (booktabs)."""
    caption = ("Leaderboard: test accuracy after fine-tuning" + (f" ({budget_label(budget)})" if budget else "")
               + " per cut and criterion over seeds; difference from random paired by seed (Holm); "
               "rank 1= shares the first place (not separated from the leader); regime: the best criterion "
               "within the regime gap of the baselines.")
    header, rows, right = _text_rows(frame, latex=False)
    markdown = markdown_table(header, rows, right)
    latex = latex_table(*_text_rows(frame, latex=True), caption, "tab:leaderboard")
    return [write_text(folder / "leaderboard.csv", frame.to_csv(index=False)),
            write_text(folder / "leaderboard.md", f"{caption}\n\n{markdown}\n"),
            write_text(folder / "leaderboard.tex", latex)]


def plot_leaderboard(frame: pd.DataFrame, style):
    """Accuracy against the measured MACs cut (numeric axis): one line per criterion with its 95%
    interval, the from-scratch control dashed, the baselines' mean as a horizontal line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    present = frame[~frame.criterion.isin([SCRATCH, "baselines"])]
    for criterion in style.order(present.criterion.unique()):
        part = present[present.criterion == criterion].sort_values("macs_cut")
        ax.errorbar(part.macs_cut, part.acc_mean, yerr=[part.acc_mean - part.acc_ci_low,
                                                        part.acc_ci_high - part.acc_mean],
                    marker="o", capsize=3, label=criterion,
                    **style.series(criterion))
    scratch = frame[frame.criterion == SCRATCH].sort_values("macs_cut")
    if len(scratch):
        ax.errorbar(scratch.macs_cut, scratch.acc_mean, yerr=[scratch.acc_mean - scratch.acc_ci_low,
                                                              scratch.acc_ci_high - scratch.acc_mean],
                    marker="s", capsize=3, color="black", linestyle="--",
                    label=f"{style.focus}'s architecture from scratch")
    base = frame[frame.criterion == "baselines"].acc_mean
    if len(base):
        ax.axhline(float(base.iloc[0]), color="0.3", linestyle=":", label="baselines (mean)")
    ax.set_xlabel("MACs removed (%, measured)")
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.set_title("Accuracy against compression, 95% intervals over seeds")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return fig
