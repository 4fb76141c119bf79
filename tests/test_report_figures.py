"""The figures of nnprune.report drawn from the committed default study's runs.csv."""
from pathlib import Path

import pandas as pd

import nnprune.report as report

REPO = Path(__file__).resolve().parents[1]


def test_after_fine_tuning_panel_has_its_own_y_range(monkeypatch, tmp_path):
    """acc_vs_macs: the fine-tuned accuracies span ~2 pp at one pruning level; their panel must
    not inherit the 10-85% range of the panels before fine-tuning."""
    drawn = {}
    monkeypatch.setattr(report, "save_figure", lambda fig, folder, name: drawn.setdefault(name, fig) and [])
    runs = pd.read_csv(REPO / "results" / "default" / "runs.csv")
    tables = report.build_tables(runs, pd.DataFrame(), "macs:0.3", 2048)
    report.build_figures(runs, tables, "macs:0.3", tmp_path)
    before, recalibrated, tuned = drawn["acc_vs_macs"].axes
    by_pruning = tables["by_pruning"][0]
    finetuned = by_pruning.acc_finetuned_mean.dropna()
    low, high = tuned.get_ylim()
    assert low <= finetuned.min() and finetuned.max() <= high
    assert high - low < 3 * (finetuned.max() - finetuned.min()) + 2      # about the data's own range
    assert before.get_ylim()[1] - before.get_ylim()[0] > 10 * (high - low) / 3
    labels = [t.get_text() for t in tuned.get_xticklabels()]        # one dot per criterion, best last
    assert len(labels) == len(finetuned) and labels[-1] == by_pruning.criterion[finetuned.idxmax()]
    assert "macs:0.3 only" in tuned.get_title()
