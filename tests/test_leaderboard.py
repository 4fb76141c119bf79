"""The leaderboard (nnprune.analysis.leaderboard) on synthetic runs whose answer is known: where
criteria part ways, the rank that noise cannot give, the regime flag, the from-scratch control."""
import numpy as np
import pandas as pd
import pytest
from test_tables_latex import compile_table, pdflatex  # noqa: F401  (fixture)

from nnprune.analysis.leaderboard import leaderboard, plot_leaderboard, scratch_comparison, write_leaderboard
from nnprune.analysis.style import Style

CUTS = {"macs:0.404": 40.6, "macs:0.75": 75.6, "macs:0.875": 87.6}
# true accuracy per cut and criterion; seed noise is shared by every criterion of a seed
TRUE = {"macs:0.404": {"nuclear": 91.2, "taylor": 91.3, "l1": 91.25, "random": 91.1},
        "macs:0.75": {"nuclear": 89.3, "taylor": 89.2, "l1": 89.1, "random": 88.4},
        "macs:0.875": {"nuclear": 86.0, "taylor": 86.1, "l1": 85.9, "random": 83.0}}
BASE = 91.6


def synthetic(seeds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    rows, scratch = [], []
    for seed in range(seeds):
        shared = rng.normal(0, 0.4)
        for cut, accs in TRUE.items():
            for criterion, acc in accs.items():
                rows.append({"pruning": cut, "criterion": criterion, "seed": seed, "budget": "2e",
                             "acc_finetuned": acc + shared + rng.normal(0, 0.05), "acc_base": BASE + shared,
                             "macs_reduction": CUTS[cut], "params_reduction": CUTS[cut] - 8,
                             "score_images": 2048})
            scratch.append({"pruning": cut, "criterion": "nuclear", "seed": seed, "budget": "7e",
                            "acc_finetuned": accs["nuclear"] + 0.8 + shared + rng.normal(0, 0.05)})
    return pd.DataFrame(rows), pd.DataFrame(scratch)


def test_criteria_part_ways_at_the_harder_cuts_and_share_ranks_elsewhere():
    runs, scratch = synthetic()
    frame = leaderboard(runs, scratch, "nuclear", margin=0.5, regime_gap_pp=1.0)
    at = frame.set_index(["pruning", "criterion"])
    # at the paper's cut all four lie within 0.2 pp: equivalent to random, one shared first place
    assert at.loc[("macs:0.404", "nuclear"), "vs_random_verdict"] == "equivalent"
    assert {at.loc[("macs:0.404", c), "rank"] for c in TRUE["macs:0.404"]} == {1}
    # at -88% random is 3 pp behind: every other criterion beats it, random ranks second
    assert at.loc[("macs:0.875", "nuclear"), "vs_random_verdict"] == "supported"
    assert at.loc[("macs:0.875", "nuclear"), "vs_random"] == pytest.approx(3.0, abs=0.1)
    assert at.loc[("macs:0.875", "random"), "rank"] == 2 and at.loc[("macs:0.875", "taylor"), "rank"] == 1
    # regime: the best criterion 0.3 pp below the baselines at -41%, 2.3 and 5.5 pp at the harder cuts
    assert at.loc[("macs:0.404", "nuclear"), "regime"] == "inside"
    assert at.loc[("macs:0.75", "nuclear"), "regime"] == "outside"
    assert at.loc[("macs:0.875", "scratch"), "acc_mean"] == pytest.approx(86.8 + np.mean(
        [r for r in runs.groupby("seed").acc_base.first() - BASE]), abs=0.1)
    baselines = runs.groupby("seed").acc_base.first().mean()
    assert at.loc[("macs:0.875", "baselines"), "acc_mean"] == pytest.approx(baselines)


def test_focus_against_scratch_by_the_claims_rule():
    runs, scratch = synthetic()
    found = scratch_comparison(runs, scratch, "nuclear", margin=0.5).set_index("pruning")
    assert list(found.index) == ["macs:0.404", "macs:0.75", "macs:0.875"]
    assert (found.mean_difference.round(1) == -0.8).all()
    assert set(found.verdict) == {"not supported"}            # scratch beats the pruned network
    assert (found.pairs == 5).all()


def test_figure_plots_the_table(tmp_path):
    runs, scratch = synthetic()
    frame = leaderboard(runs, scratch, "nuclear", margin=0.5, regime_gap_pp=1.0)
    fig = plot_leaderboard(frame, Style(focus="nuclear", criteria=("nuclear", "taylor", "l1", "random")))
    ax = fig.axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}        # each errorbar's data line
    lines.update({line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")})
    nuclear = frame[frame.criterion == "nuclear"].sort_values("macs_cut")
    assert list(lines["nuclear"].get_xdata()) == pytest.approx(list(nuclear.macs_cut))
    assert list(lines["nuclear"].get_ydata()) == pytest.approx(list(nuclear.acc_mean))
    scratch_line = lines["nuclear's architecture from scratch"]
    assert list(scratch_line.get_ydata()) == pytest.approx(list(frame[frame.criterion == "scratch"].sort_values(
        "macs_cut").acc_mean))
    baselines = frame[frame.criterion == "baselines"].acc_mean.iloc[0]
    assert lines["baselines (mean)"].get_ydata()[0] == pytest.approx(baselines)
    assert ax.get_xlabel().startswith("MACs removed")


def test_leaderboard_tex_compiles(tmp_path, pdflatex):  # noqa: F811
    runs, scratch = synthetic()
    frame = leaderboard(runs, scratch, "nuclear", margin=0.5, regime_gap_pp=1.0)
    written = write_leaderboard(frame, tmp_path, "2e")
    assert [p.name for p in written] == ["leaderboard.csv", "leaderboard.md", "leaderboard.tex"]
    assert pd.read_csv(tmp_path / "leaderboard.csv").shape[0] == len(frame) == 3 * 6
    compile_table(pdflatex, tmp_path / "leaderboard.tex", tmp_path / "tex")
