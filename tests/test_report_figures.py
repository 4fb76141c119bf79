"""The figures of `nnprune report` (nnprune.analysis.figures), read back from the matplotlib objects they
are drawn with: titles, axis labels, the plotted x and y values, one series per criterion in the study's
fixed order, and one colour per criterion across every figure. Studies: the committed default (one MACs target at two
allocations, one score_images), and small synthetic ones with two pruning levels, two score_images
and two label-noise levels."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import nnprune.analysis.report as report
from nnprune.analysis.aggregate import at_budget
from nnprune.analysis.figures import budget_curve, plot_budget_curve, pruning_point
from nnprune.analysis.style import NEUTRAL, Style, criterion_color
from nnprune.analysis.tables import build_tables
from nnprune.plan.names import DEFAULT_FOCUS as FOCUS

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
ORDER = ["nuclear", "taylor", "l1", "random"]          # FOCUS first, then the synthetic config's order
DATA_DRIVEN = {"nuclear", "taylor"}


def synthetic_runs(prunings: list[str], sizes: list[int], noises: list[float], seeds: int = 3) -> pd.DataFrame:
    """runs.csv of a study of ORDER's criteria: every pruning level at every score_images (data-free
    criteria at 0) and label noise, fine-tuned at 2e only; accuracies distinct per criterion."""
    rng = np.random.default_rng(0)
    rows = []
    for pruning in prunings:
        cut = float(pruning.split(":")[-1])
        for noise in noises:
            for criterion in ORDER:
                for size in sizes if criterion in DATA_DRIVEN else [0]:
                    for seed in range(seeds):
                        base = 90.0 - 20 * noise + rng.normal(0, 0.3)
                        rows.append({
                            "dataset": "fashion-mnist", "arch": "resnet20", "width": 0.5, "train_size": None,
                            "label_noise": noise, "noise_kind": "symmetric", "seed": seed, "criterion": criterion,
                            "score_images": size, "pruning": pruning, "budget": "2e", "acc_base": base,
                            "acc_pruned": 60 - 40 * cut - 5 * ORDER.index(criterion) + rng.normal(0, 1),
                            "acc_pruned_bn": 70 - 30 * cut - 3 * ORDER.index(criterion) + rng.normal(0, 1),
                            "acc_finetuned": base - 2 * cut - 0.4 * ORDER.index(criterion) + rng.normal(0, 0.2),
                            "macs_reduction": 100 * cut + rng.normal(0, 0.5), "params_reduction": 80 * cut,
                            "latency_base_ms": np.nan, "latency_pruned_ms": np.nan})
    return pd.DataFrame(rows)


def synthetic_stability(sizes: list[int], layers: int = 4, seeds: int = 3) -> pd.DataFrame:
    rows = [{"baseline": f"b_s{seed}", "criterion": criterion, "score_images": size, "layer": f"conv{layer}",
             "spearman": 1.0 - 0.1 * (size != max(sizes)) * (1 + layer % 2), "jaccard": 0.8, "label_noise": 0.0,
             "noise_kind": "symmetric", "seed": seed}
            for criterion in sorted(DATA_DRIVEN) for size in sizes for layer in range(layers) for seed in range(seeds)]
    return pd.DataFrame(rows)


def draw(runs: pd.DataFrame, main: str, main_si: int, stability=None, criteria=ORDER, focus=FOCUS) -> dict:
    """Every figure of one study, drawn as write_report draws them, without writing them."""
    figures = {}
    style = Style(focus=focus, criteria=tuple(criteria))
    saved = report.save_figure
    report.save_figure = lambda fig, folder, name: figures.setdefault(name, fig) and []
    try:
        stability = pd.DataFrame() if stability is None else stability
        tables = build_tables(runs, stability, main, main_si)
        report.build_figures(runs, tables, main, Path("/nonexistent"), style, stability)
        figures["acc_vs_budget"] = plot_budget_curve(budget_curve(runs, main_si), style)
    finally:
        report.save_figure = saved
    return figures


def series(ax) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """(label, x, y, colour) of each errorbar series of `ax`, in drawing order."""
    from matplotlib.colors import to_hex

    out = []
    for container in ax.containers:
        line = container.lines[0]
        out.append((container.get_label(), np.asarray(line.get_xdata(), float),
                    np.asarray(line.get_ydata(), float), to_hex(line.get_color())))
    return out


def criteria_in_order(labels: list[str]) -> list[str]:
    """The criterion of each series label ("nuclear", "l1, macs"), first appearances only."""
    return list(dict.fromkeys(label.split(",")[0].split(" ")[0] for label in labels))


def test_one_pruning_level_is_a_per_criterion_figure_titled_by_the_level():
    """The committed default study prunes at one MACs target (macs:0.404 and uniform-macs:0.404):
    acc_vs_macs puts the criteria on x in the config's order, the focus criterion first, says the
    level in its title and never claims a MACs axis; each dot is the mean over seeds of its
    criterion and entry; each panel keeps its own y range; the entries' legend is neutral."""
    from matplotlib.colors import to_hex

    runs = pd.read_csv(REPO / "results" / "default" / "runs.csv")
    main = CONFIG["grid"]["main_pruning"]
    figures = draw(runs, main, 2048, criteria=CONFIG["criteria"])
    fig = figures["acc_vs_macs"]
    title = "Accuracy by criterion at macs:0.404 and uniform-macs:0.404 (mean ± std over seeds)"
    assert fig._suptitle.get_text() == title
    order = [c for c in CONFIG["criteria"] if c in set(runs.criterion)]
    assert order[0] == FOCUS
    clean = at_budget(runs)
    clean = clean[(clean.label_noise == 0.0) & clean.score_images.isin([0, 2048])]
    entries = {"macs:0.404": 0, "uniform-macs:0.404": 1}
    from nnprune.plan.budgets import budget_label, budget_order

    largest = budget_label(max(CONFIG["finetune"]["budgets"], key=budget_order))       # "2 epochs"
    assert [ax.get_title() for ax in fig.axes[:3]] == [
        "before fine-tuning", "BN recalibrated, no fine-tuning", f"after fine-tuning ({largest})"]
    for ax, metric in zip(fig.axes, ["acc_pruned", "acc_pruned_bn", "acc_finetuned"]):
        assert ax.get_xlabel() == "criterion" and "MACs" not in ax.get_xlabel()
        ticks = ax.get_xticklabels()
        assert [t.get_text() for t in ticks] == order
        assert [t.get_fontweight() for t in ticks] == ["bold"] + ["normal"] * (len(order) - 1)
        means = clean.groupby(["pruning", "criterion"])[metric].mean().dropna()
        plotted = series(ax)
        assert len(plotted) == len(means)
        for pruning in entries:
            shown = [s for s in plotted if s[0].endswith(f", {pruning.split(':')[0]}")]
            expected = [c for c in order if (pruning, c) in means.index]
            assert criteria_in_order([s[0] for s in shown]) == expected
            for label, x, y, colour in shown:
                criterion = label.split(",")[0]
                assert round(x[0]) == order.index(criterion)
                assert y[0] == pytest.approx(means[(pruning, criterion)])
                assert colour == to_hex(criterion_color(criterion))
        low, high = ax.get_ylim()                      # the panel's own range, about the data's
        assert low <= means.min() and means.max() <= high and high - low < 3 * (means.max() - means.min()) + 2
    assert fig.axes[0].get_ylim() != fig.axes[2].get_ylim()
    legend = fig.legends[0]                     # the entries' markers, neutral grey
    assert {to_hex(h.get_color()) for h in legend.legend_handles} == {to_hex(NEUTRAL)}
    macs = clean.groupby("pruning").macs_reduction.mean()
    assert [t.get_text() for t in legend.get_texts()] == [f"{p} (-{macs[p]:.1f}% MACs)" for p in entries]


def test_entries_of_one_macs_target_share_a_level():
    """A level is a MACs target; its entries differ in how they share it out (their family)."""
    assert pruning_point("macs:0.404") == ("MACs target 0.404", "macs")
    assert pruning_point("uniform-macs:0.404") == ("MACs target 0.404", "uniform-macs")
    assert pruning_point("macs:0.5:round_to=8") == ("MACs target 0.5", "macs:round_to=8")
    assert pruning_point("uniform:0.1") == ("uniform:0.1", "uniform")
    assert pruning_point("preset:hrank") == ("preset:hrank", "preset:hrank")


def test_two_pruning_levels_have_a_macs_axis():
    """Two MACs targets: each panel plots accuracy against the measured MACs removed, one series per
    criterion in the fixed order, at the means over seeds."""
    runs = synthetic_runs(["macs:0.2", "macs:0.5"], [64, 256], [0.0])
    fig = draw(runs, "macs:0.2", 256)["acc_vs_macs"]
    assert fig._suptitle.get_text() == "Accuracy vs. MACs removed (mean ± std over seeds)"
    means = runs[runs.score_images.isin([0, 256])].groupby(["criterion", "pruning"]).mean(numeric_only=True)
    for ax, metric in zip(fig.axes, ["acc_pruned", "acc_pruned_bn", "acc_finetuned"]):
        assert ax.get_xlabel() == "MACs removed (%)"
        plotted = series(ax)
        assert [label for label, *_ in plotted] == ORDER
        for criterion, x, y, _ in plotted:
            assert x == pytest.approx(means.loc[criterion].macs_reduction.to_numpy())
            assert y == pytest.approx(means.loc[criterion][metric].to_numpy())
    criteria_legend = fig.legends[-1]
    assert [t.get_text() for t in criteria_legend.get_texts()] == ORDER
    assert [t.get_fontweight() for t in criteria_legend.get_texts()] == ["bold", "normal", "normal", "normal"]


def test_every_figure_keeps_one_order_and_one_colour_per_criterion():
    """Every figure of a study with every axis: the series follow the fixed order (focus first,
    drawn thicker), each criterion has one colour in all of them and no two criteria share one;
    legends of kinds of points (pruning entries, noise kinds) are neutral grey."""
    from matplotlib.colors import to_hex

    runs = synthetic_runs(["macs:0.2", "macs:0.5", "uniform-macs:0.2"], [64, 256], [0.0, 0.3])
    runs = pd.concat([runs, runs[runs.label_noise > 0].assign(noise_kind="pairwise")], ignore_index=True)
    figures = draw(runs, "macs:0.2", 256, synthetic_stability([64, 256]))
    assert set(figures) == {"acc_vs_macs", "acc_vs_score_images", "acc_vs_label_noise", "score_stability",
                            "acc_vs_budget"}
    colours = {}
    for name, fig in figures.items():
        for ax in fig.axes:
            plotted = series(ax)
            labels = [label for label, *_ in plotted]
            criteria = criteria_in_order(labels)
            assert criteria == [c for c in ORDER if c in criteria], (name, labels)
            assert criteria[0] == FOCUS, (name, labels)
            for label, _, _, colour in plotted:
                colours.setdefault(label.split(",")[0], set()).add(colour)
            widths = {label.split(",")[0]: c.lines[0].get_linewidth() for label, c in zip(labels, ax.containers)}
            assert all(widths[FOCUS] > w for c, w in widths.items() if c != FOCUS), (name, widths)
            for legend in [ax.get_legend(), *ax.artists, *fig.legends]:
                if legend is not None and legend.get_title().get_text() in ("pruning (marker)", "noise kind"):
                    assert {to_hex(h.get_color()) for h in legend.legend_handles} == {to_hex(NEUTRAL)}
    assert set(colours) == set(ORDER)
    assert all(len(found) == 1 for found in colours.values()), colours
    assert len({found.pop() for found in colours.values()}) == len(ORDER)


def test_the_focus_is_passed_to_every_figure():
    """Another focus (claims.focus), passed in the style: first and thickest in every panel of every
    figure; drawing again with the default focus puts the paper's criterion back first (no state
    carried from one drawing to the next)."""
    import matplotlib.pyplot as plt

    runs = synthetic_runs(["macs:0.2", "macs:0.5"], [64, 256], [0.0, 0.3])
    for focus in ("taylor", FOCUS):
        figures = draw(runs, "macs:0.2", 256, synthetic_stability([64, 256]), focus=focus)
        assert len(figures) == 5
        for name, fig in figures.items():
            for ax in fig.axes:
                labels = [label for label, *_ in series(ax)]
                if not labels:
                    continue
                assert criteria_in_order(labels)[0] == focus, (name, labels)
                widths = {label.split(",")[0]: c.lines[0].get_linewidth() for label, c in zip(labels, ax.containers)}
                assert all(widths[focus] > w for c, w in widths.items() if c != focus), (name, widths)
            plt.close(fig)


def test_axis_with_one_value_draws_no_figure_and_the_notes_say_why(tmp_path):
    """One score_images and one label-noise level: write_report draws neither acc_vs_score_images nor
    acc_vs_label_noise (and removes an earlier report's), and figures/notes.md says why. Both pruning
    levels are fine-tuned at 2e: a cut axis, so the leaderboard is drawn and listed."""
    study = tmp_path / "one"
    (study / "figures").mkdir(parents=True)
    (study / "figures" / "acc_vs_score_images.png").write_bytes(b"an earlier report's figure")
    synthetic_runs(["macs:0.2", "macs:0.5"], [256], [0.0]).to_csv(study / "runs.csv", index=False)
    synthetic_stability([64, 256]).to_csv(study / "stability.csv", index=False)
    written = report.write_report(study, "macs:0.2", 256, ORDER)
    figures = sorted(p.name for p in (study / "figures").iterdir())
    assert figures == ["acc_vs_budget.pdf", "acc_vs_budget.png", "acc_vs_macs.pdf", "acc_vs_macs.png",
                       "leaderboard.pdf", "leaderboard.png", "notes.md", "score_stability.pdf", "score_stability.png"]
    assert study / "figures" / "notes.md" in written
    notes = (study / "figures" / "notes.md").read_text()
    assert ("acc_vs_score_images: the data-driven criteria were pruned at one score_images only (256, "
            "grid.score_sweep) at macs:0.2") in notes
    assert "acc_vs_label_noise: one label-noise level only (0) at macs:0.2" in notes
    assert "each as .png and .pdf: acc_vs_macs, score_stability, acc_vs_budget, leaderboard." in notes


def test_score_stability_says_what_its_n_counts():
    """The committed default study's stability figure names what each mean is over, layers x seeds,
    and that product is the table's n."""
    runs = pd.read_csv(REPO / "results" / "default" / "runs.csv")
    stability = pd.read_csv(REPO / "results" / "default" / "stability.csv")
    figures = draw(runs, CONFIG["grid"]["main_pruning"], 2048, stability, CONFIG["criteria"])
    table = build_tables(runs, stability, CONFIG["grid"]["main_pruning"], 2048)["score_stability"].frame
    main = stability[stability.label_noise == 0.0]
    layers, seeds = main.layer.nunique(), main.seed.nunique()
    assert table.spearman_n.max() == layers * seeds == 95
    assert figures["score_stability"]._suptitle.get_text() == (
        f"Score stability vs. the largest scoring set (mean ± std over {layers} layers × {seeds} seeds, "
        f"n = {layers * seeds})")


@pytest.mark.integration
def test_the_rule_declares_the_figures_that_report_draws(snakemake_bin, tmp_path):
    """The default study's report rule (its figures from the grid, aggregate.smk) declares exactly
    the figures that report draws from the committed runs.csv and stability.csv, and notes.md."""
    import re

    from conftest import run_snakemake

    result = run_snakemake(snakemake_bin, tmp_path, REPO / "data", "--dry-run", "--printshellcmds",
                           configfile=REPO / "config" / "config.yaml", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rule = result.stdout.split("rule report_tables_figures:")[1].split("\nrule ")[0]
    declared = set(re.findall(r"figures/(\w+)\.png", rule))
    assert "figures/notes.md" in rule
    runs = pd.read_csv(REPO / "results" / "default" / "runs.csv")
    stability = pd.read_csv(REPO / "results" / "default" / "stability.csv")
    drawn = draw(runs, CONFIG["grid"]["main_pruning"], CONFIG["grid"]["main_score_images"], stability,
                 CONFIG["criteria"])
    # grid.score_sweep prunes from fewer images (the data-size claim's accuracy): a score_images axis
    assert declared == set(drawn) and ("acc_vs_score_images" in declared) == bool(CONFIG["grid"]["score_sweep"])
    assert f"--criteria {' '.join(CONFIG['criteria'])}" in rule
