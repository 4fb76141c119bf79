"""Fine-tuning budgets (nnprune/plan/budgets.py): their form, their schedules, their order on the budget
axis, and runs.csv rows per budget (nnprune/analysis/aggregate.py)."""
import json

import pandas as pd
import pytest

from nnprune.analysis.aggregate import at_budget, collect_runs, study_budgets_of
from nnprune.errors import UserError
from nnprune.plan.budgets import Budget, budget_label, budget_order, parse_budget, study_budgets
from nnprune.plan.specs import FinetuneSpec


@pytest.mark.parametrize("text, budget, schedule, label", [
    ("3e", Budget(3, "epochs"), {"epochs": 3, "batches_per_epoch": None}, "3 epochs"),
    ("30b", Budget(30, "batches"), {"epochs": 1, "batches_per_epoch": 30}, "30 batches"),
    (" 1E ", Budget(1, "epochs"), {"epochs": 1, "batches_per_epoch": None}, "1 epoch"),
])
def test_a_budget_sets_its_own_schedule(text, budget, schedule, label):
    parsed = parse_budget(text)
    assert parsed == budget and parsed.schedule() == schedule and parsed.label == label
    assert parse_budget(parsed.text) == parsed


@pytest.mark.parametrize("text, problem", [
    ("0e", "is 0 epochs: a budget is at least 1"), ("-3b", "is -3 batches: a budget is at least 1"),
    ("3x", "has unknown unit 'x'"), ("3", "has no unit"), ("e3", "is not a count and a unit"),
    ("3 weeks", "has unknown unit 'weeks'")])
def test_bad_budgets_say_what_is_wrong_and_the_form(text, problem):
    with pytest.raises(UserError) as error:
        parse_budget(text)
    assert problem in error.value.problem and "<n>e (n epochs) or <n>b" in error.value.fix


def test_study_budgets_are_sorted_unique_and_not_set_twice():
    assert [b.text for b in study_budgets({"budgets": ["3e", "30b", "1e"]})] == ["30b", "1e", "3e"]
    assert [b.text for b in study_budgets({"epochs": 6})] == ["6e"]          # a section without budgets
    assert [b.text for b in study_budgets({"epochs": 1, "batches_per_epoch": 30})] == ["30b"]
    assert [b.text for b in study_budgets({})] == ["5e"]                     # FinetuneSpec's default epochs
    for section, problem in (({"budgets": ["3e", "3E"]}, "repeats 3e"), ({"budgets": []}, "not a non-empty list"),
                             ({"budgets": "3e"}, "not a non-empty list"),
                             ({"budgets": ["3e"], "batches_per_epoch": 9}, "both budgets and batches_per_epoch"),
                             ({"epochs": 2, "batches_per_epoch": 30}, "epochs: 2 and batches_per_epoch: 30")):
        with pytest.raises(UserError) as error:
            study_budgets(section)
        assert problem in error.value.problem, error.value.problem


def test_budget_axis_order_and_labels():
    axis = ["3e", "bn", "30b", "raw", "1e", "500b"]
    assert sorted(axis, key=budget_order) == ["raw", "bn", "30b", "500b", "1e", "3e"]
    assert [budget_label(b) for b in ("raw", "bn", "0", "30b")] == ["raw (pruned)", "BN recalibrated",
                                                                    "not fine-tuned", "30 batches"]


def test_finetune_spec_takes_its_length_from_the_budget():
    spec = FinetuneSpec(model="m", out="o", budget="30B", epochs=7)
    assert (spec.budget, spec.epochs, spec.batches_per_epoch) == ("30b", 1, 30)
    assert FinetuneSpec(model="m", out="o", epochs=7).epochs == 7          # without a budget: its own epochs
    with pytest.raises(UserError, match="unknown unit"):
        FinetuneSpec(model="m", out="o", budget="2h")


def _metrics(folder, step, results, config):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"step": step, "config": config, "results": results,
                                                     "provenance": {"seconds": 1.5}}))
    return folder / "metrics.json"


def test_runs_csv_has_one_row_per_run_and_budget(tmp_path):
    """A run fine-tuned at 30b and 3e gives two rows alike but for budget and acc_finetuned; a
    run without fine-tuning one row with budget 0; a stale budget folder not in the study's
    budgets is not read; at_budget gives one row per run."""
    data = {"dataset": "fashion-mnist", "train_size": None, "label_noise": 0.0, "noise_kind": "symmetric",
            "seed": 0}
    paths = []
    for criterion, tuned in (("nuclear", {"30b": 80.0, "3e": 91.0, "9e": 99.0}), ("l1", {})):
        run = tmp_path / "runs" / criterion
        paths.append(_metrics(run / "pruned", "prune", {
            "base": {"macs": 100, "params": 10, "acc": 92.0}, "criterion": criterion, "score_images": 0,
            "pruned": {"macs": 60, "params": 6, "acc": 10.0, "acc_bn_recalibrated": 50.0}},
            {"data": data, "arch": "resnet20", "build_args": {"width": 0.5}, "pruning": "macs:0.404",
             "train": {"epochs": 8}}))
        for budget, acc in tuned.items():
            _metrics(run / f"finetuned-{budget}", "finetune", {"acc_test": acc}, {"budget": budget})
    runs = collect_runs(paths, tmp_path, budgets=["30b", "3e"])
    assert runs[["criterion", "budget", "acc_finetuned"]].fillna(-1).values.tolist() == [
        ["l1", "0", -1], ["nuclear", "30b", 80.0], ["nuclear", "3e", 91.0]]
    assert (runs.acc_pruned_bn == 50.0).all() and (runs.train_epochs == 8).all()
    written = tmp_path / "runs.csv"
    runs.to_csv(written, index=False)
    again = pd.read_csv(written)
    assert study_budgets_of(again) == ["30b", "3e"]
    one_each = at_budget(again)[["criterion", "acc_finetuned"]].fillna(-1).values.tolist()
    assert one_each == [["l1", -1], ["nuclear", 91.0]]
    assert at_budget(again, "30b").acc_finetuned.tolist()[1] == 80.0
    # without budgets (`nnprune aggregate` with no --budgets): every finetuned-* folder beside the run
    found = collect_runs(paths, tmp_path)
    assert found[found.criterion == "nuclear"].budget.tolist() == ["30b", "3e", "9e"]
