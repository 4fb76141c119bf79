"""The figures of nnprune.report drawn from the committed default study's runs.csv."""
from pathlib import Path

import pandas as pd

import nnprune.report as report

REPO = Path(__file__).resolve().parents[1]


def test_after_fine_tuning_panel_has_its_own_y_range(monkeypatch, tmp_path):
    """acc_vs_macs: the fine-tuned accuracies span a few pp at one MACs target (two allocations);
    their panel must not inherit the 10-85% range of the panels before fine-tuning, and shows one
    dot per criterion and level rather than lines along an axis with one value."""
    import yaml

    drawn = {}
    monkeypatch.setattr(report, "save_figure", lambda fig, folder, name: drawn.setdefault(name, fig) and [])
    runs = pd.read_csv(REPO / "results" / "default" / "runs.csv")
    main = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["grid"]["main_pruning"]
    tables = report.build_tables(runs, pd.DataFrame(), main, 2048)
    report.build_figures(runs, tables, main, tmp_path)
    before, recalibrated, tuned = drawn["acc_vs_macs"].axes
    by_pruning = tables["by_pruning"][0]
    finetuned = by_pruning.acc_finetuned_mean.dropna()
    low, high = tuned.get_ylim()
    assert low <= finetuned.min() and finetuned.max() <= high
    assert high - low < 3 * (finetuned.max() - finetuned.min()) + 2      # about the data's own range
    raw = by_pruning.acc_pruned_mean.dropna()                       # the panel before fine-tuning has its own
    raw_low, raw_high = before.get_ylim()
    assert (raw_low, raw_high) != (low, high) and raw_low <= raw.min() <= raw.max() <= raw_high
    labels = [t.get_text() for t in tuned.get_xticklabels()]        # one column per criterion
    assert sorted(labels) == sorted(by_pruning.criterion.unique())
    dots = [line for line in tuned.get_lines() if len(line.get_xdata()) == 1 and line.get_marker() not in ("_", None)]
    assert len(dots) == len(finetuned)                               # one dot per criterion and level
    levels = set(by_pruning.pruning[finetuned.index])
    if len(levels) > 1:                       # a marker per level, named in the legend
        legend = [t.get_text() for t in tuned.get_legend().get_texts()]
        assert {text.split(" ")[0] for text in legend} == levels
    else:                                     # one fine-tuned level: the x label names its MACs cut
        macs = by_pruning[by_pruning.pruning.isin(levels)].macs_reduction_mean.mean()
        assert tuned.get_legend() is None and f"-{macs:.1f}% MACs" in tuned.get_xlabel()
