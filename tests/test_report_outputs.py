"""`nnprune report` writes exactly what the workflow declares (nnprune.plan.grid.report_outputs, passed
as --tables and --figures), or stops naming what the data cannot give; by hand (no lists) it writes
what the data give. runs.csv's from-scratch rows reach the leaderboard only."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from nnprune.analysis.aggregate import SCRATCH_KIND
from nnprune.analysis.report import write_report
from nnprune.errors import UserError
from nnprune.plan import grid
from nnprune.plan.defaults import with_defaults

MACS = {"macs-0.404": 41.0, "macs-0.75": 75.6, "macs-0.875": 87.6, "macs-0.95": 95.3}


def leaderboard_plan() -> grid.Plan:
    """The plan of config/leaderboard.yaml as a study of its own (no reused folder needed)."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "leaderboard.yaml").read_text())
    del config["reuse"]
    return grid.plan(with_defaults(config))


def planned_runs(plan: grid.Plan, scratch: bool = True) -> pd.DataFrame:
    """runs.csv of `plan`: a row per run and budget, random 3 pp behind at the hardest cut, then
    the focus's from-scratch controls (kind "scratch", 1 pp above it)."""
    rng = np.random.default_rng(5)
    rows = []
    for run in plan.runs:
        base = plan.baselines[run.base]
        cut = MACS[run.prune]
        acc = 91.0 - (cut - 41.0) / 10 - (3.0 if run.crit == "random" and cut > 80 else 0.0)
        for budget in plan.finetune_budgets(run):
            rows.append({"dataset": "fashion-mnist", "arch": "resnet20", "width": 0.5, "train_size": np.nan,
                         "train_epochs": 5, "label_noise": base["label_noise"], "noise_kind": "symmetric",
                         "seed": base["seed"], "criterion": run.crit, "score_images": run.si,
                         "pruning": plan.prunings[run.prune], "budget": budget, "acc_base": 91.5 + 0.1 * base["seed"],
                         "acc_pruned": 10.0, "acc_pruned_bn": 60.0, "acc_finetuned": acc + rng.normal(0, 0.05),
                         "macs_reduction": cut, "params_reduction": cut - 5, "latency_base_ms": np.nan,
                         "latency_pruned_ms": np.nan, "kind": "pruned"})
    frame = pd.DataFrame(rows)
    if scratch:
        focus = frame[frame.criterion == plan.focus]
        frame = pd.concat([frame, focus.assign(kind=SCRATCH_KIND, budget=f"{plan.scratch_epochs}e", acc_base=np.nan,
                                               acc_finetuned=focus.acc_finetuned + 1.0)], ignore_index=True)
    return frame


def stability_rows(plan: grid.Plan) -> pd.DataFrame:
    return pd.DataFrame([{"baseline": f"b{seed}", "criterion": crit, "score_images": 2048, "layer": "conv1",
                          "spearman": 1.0, "jaccard": 1.0, "label_noise": 0.0, "noise_kind": "symmetric",
                          "seed": seed} for crit in plan.data_criteria for seed in range(5)])


def study(tmp_path, runs: pd.DataFrame, plan: grid.Plan, name: str = "study"):
    folder = tmp_path / name
    folder.mkdir()
    runs.to_csv(folder / "runs.csv", index=False)
    stability_rows(plan).to_csv(folder / "stability.csv", index=False)
    return folder


def written_names(folder, sub: str, ext: str) -> list[str]:
    return sorted(p.stem for p in (folder / sub).glob(f"*.{ext}"))


def test_the_report_writes_exactly_what_the_leaderboard_plan_declares(tmp_path):
    plan = leaderboard_plan()
    assert plan.tables == ["by_pruning", "by_score_images", "by_label_noise", "paper_comparison", "score_stability",
                           "by_budget", "leaderboard"]
    assert plan.figures == ["acc_vs_macs", "acc_vs_budget", "leaderboard"]
    folder = study(tmp_path, planned_runs(plan), plan)
    write_report(folder, plan.main_pruning, plan.main_si, list(plan.criteria), plan.focus,
                 tables=plan.tables, figures=plan.figures)
    for ext in ("csv", "md", "tex"):
        assert written_names(folder, "tables", ext) == sorted(plan.tables)
    assert written_names(folder, "figures", "png") == written_names(folder, "figures", "pdf") == sorted(plan.figures)
    notes = (folder / "figures" / "notes.md").read_text()
    assert "each as .png and .pdf: acc_vs_macs, acc_vs_budget, leaderboard." in notes
    board = pd.read_csv(folder / "tables" / "leaderboard.csv")
    assert set(board.pruning) == {"macs:0.404", "macs:0.75", "macs:0.875", "macs:0.95"}
    assert board.groupby("pruning").size().to_dict() == {cut: 6 + 2 for cut in board.pruning.unique()}
    scratch = board[board.criterion == "scratch"].set_index("pruning").acc_mean
    nuclear = board[board.criterion == "nuclear"].set_index("pruning").acc_mean
    assert (scratch - nuclear).to_numpy() == pytest.approx([1.0] * 4)
    # by hand (no lists): what the data give is the same set
    again = study(tmp_path, planned_runs(plan), plan, "by_hand")
    write_report(again, plan.main_pruning, plan.main_si, list(plan.criteria), plan.focus)
    assert written_names(again, "tables", "csv") == sorted(plan.tables)
    assert written_names(again, "figures", "png") == sorted(plan.figures)


def test_scratch_rows_reach_the_leaderboard_only(tmp_path):
    """The tables other than the leaderboard are byte-identical with and without the scratch rows,
    and with a runs.csv written before the kind column."""
    plan = leaderboard_plan()
    with_scratch = study(tmp_path, planned_runs(plan), plan, "with")
    without = study(tmp_path, planned_runs(plan, scratch=False).drop(columns="kind"), plan, "without")
    for folder in (with_scratch, without):
        write_report(folder, plan.main_pruning, plan.main_si, list(plan.criteria), plan.focus)
    for path in sorted((without / "tables").iterdir()):
        same = path.read_bytes() == (with_scratch / "tables" / path.name).read_bytes()
        assert same == (path.stem != "leaderboard"), path.name
    assert "scratch" not in set(pd.read_csv(without / "tables" / "leaderboard.csv").criterion)


def test_a_declared_output_the_data_cannot_give_stops_the_report(tmp_path):
    """One fine-tuned cut: a declared leaderboard is an error naming it and why, before any file."""
    plan = leaderboard_plan()
    runs = planned_runs(plan)
    folder = study(tmp_path, runs[runs.pruning == "macs:0.404"], plan)
    with pytest.raises(UserError) as error:
        write_report(folder, plan.main_pruning, plan.main_si, list(plan.criteria), plan.focus,
                     tables=plan.tables, figures=plan.figures)
    assert error.value.problem == (
        "report: the workflow declares outputs that this study's runs.csv and stability.csv cannot give "
        "(table leaderboard: the clean runs at score_images 2048 are fine-tuned at the largest budget at 1 cut "
        "(macs:0.404); a leaderboard needs two or more; figure leaderboard: the clean runs at score_images 2048 "
        "are fine-tuned at the largest budget at 1 cut (macs:0.404); a leaderboard needs two or more)")
    assert "nnprune.plan.grid.report_outputs" in error.value.fix and "rerun the aggregate rule" in error.value.fix
    assert not (folder / "tables").exists() and not (folder / "figures").exists()
    with pytest.raises(UserError, match="an output .* \\(figure acc_vs_label_noise: one label-noise level only"):
        write_report(folder, plan.main_pruning, plan.main_si, figures=["acc_vs_macs", "acc_vs_label_noise"])
    with pytest.raises(UserError, match="table by_noise: not a table nnprune report writes"):
        write_report(folder, plan.main_pruning, plan.main_si, tables=["by_noise"])


def test_only_the_declared_outputs_are_written(tmp_path):
    """The data give acc_vs_budget and the leaderboard; declared without them, they are not written."""
    plan = leaderboard_plan()
    folder = study(tmp_path, planned_runs(plan), plan)
    write_report(folder, plan.main_pruning, plan.main_si, list(plan.criteria), plan.focus,
                 tables=["by_pruning", "paper_comparison"], figures=["acc_vs_macs"])
    assert written_names(folder, "tables", "csv") == ["by_pruning", "paper_comparison"]
    assert written_names(folder, "figures", "png") == ["acc_vs_macs"]


def test_the_cli_passes_the_declared_lists_and_the_claims_settings(tmp_path):
    """`nnprune report --tables ... --figures ... --settings JSON`: the leaderboard's regime flag
    follows claims.regime_gap_pp (the best criterion lies 0.7 to 6.1 pp below the baselines)."""
    from nnprune.pipeline.cli import main

    plan = leaderboard_plan()
    regimes = {}
    for gap in (1.0, 10.0):
        folder = study(tmp_path, planned_runs(plan), plan, f"gap{gap:g}")
        assert main(["report", "--study-dir", str(folder), "--main-pruning", plan.main_pruning,
                     "--main-score-images", str(plan.main_si), "--criteria", *plan.criteria,
                     "--tables", *plan.tables, "--figures", *plan.figures,
                     "--settings", json.dumps({"regime_gap_pp": gap})]) == 0
        board = pd.read_csv(folder / "tables" / "leaderboard.csv")
        regimes[gap] = board.groupby("pruning").regime.first().to_dict()
    assert regimes[1.0] == {"macs:0.404": "inside", "macs:0.75": "outside", "macs:0.875": "outside",
                            "macs:0.95": "outside"}
    assert set(regimes[10.0].values()) == {"inside"}
    folder = study(tmp_path, planned_runs(plan)[lambda f: f.pruning == "macs:0.404"], plan, "one_cut")
    assert main(["report", "--study-dir", str(folder), "--main-pruning", plan.main_pruning,
                 "--tables", *plan.tables, "--figures", *plan.figures]) == 2
