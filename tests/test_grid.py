"""The study plan (nnprune.plan.grid, nnprune.plan.reuse) from configs alone: no Snakemake, no torch."""
import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from nnprune.errors import UserError
from nnprune.plan import grid, jobspecs, paths
from nnprune.plan.defaults import with_defaults
from nnprune.plan.reuse import check_present, manifest, missing_files


def config_of(name: str, **changes) -> dict:
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    config.update(changes)
    return with_defaults(config)


def test_the_plan_imports_neither_torch_nor_snakemake():
    code = ("import sys, nnprune.plan.grid, nnprune.plan.reuse, nnprune.plan.defaults; "
            "print(sorted(m for m in ('torch', 'snakemake') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_default_study_plan():
    """config/config.yaml: 5 clean + 10 noisy baselines; the sparse grid's 85 runs: 4 criteria x 5
    seeds x 2 allocations (40), nuclear from 32 images (5), and the noisy baselines at the global
    cut (40); fine-tunes: 2 budgets for the 25 clean global runs, 2e for the 40 noisy ones."""
    plan = grid.plan(config_of("config"))
    assert len(plan.baselines) == 15
    assert sum(v["label_noise"] == 0.4 for v in plan.baselines.values()) == 10
    assert len(plan.runs) == 85
    assert sum(run.si == 32 for run in plan.runs) == 5
    assert {run.crit for run in plan.runs} == {"nuclear", "taylor", "l1", "random"}   # hrank only scored
    assert plan.job_count() == {"train": 15, "score_data": 15, "score_free": 15, "prune": 85, "finetune": 90}
    noisy = [run for run in plan.runs if plan.baselines[run.base]["label_noise"] > 0]
    assert {run.prune for run in noisy} == {"macs-0.404"} and all(plan.finetune_budgets(r) == ["2e"] for r in noisy)
    assert plan.scratch == [] and plan.source is None
    assert plan.figures == ["acc_vs_macs", "acc_vs_score_images", "acc_vs_label_noise", "score_stability",
                            "acc_vs_budget"]
    # every score file of each pruned baseline: 3 data-driven criteria x 4 sizes + 2 data-free, 15 baselines
    assert len(plan.score_files()) == 15 * (3 * 4 + 2)


def test_smoke_plan_is_the_full_grid():
    plan = grid.plan(config_of("smoke"))
    # 2 baselines x (2 data criteria x 2 sizes + 2 free) x 2 cuts
    assert len(plan.runs) == 2 * 6 * 2
    assert sum(len(plan.finetune_budgets(run)) for run in plan.runs) == 24   # uniform:0.1 only, 2 budgets


def test_figures_need_two_values_on_their_axis():
    plan = grid.plan(config_of("smoke", label_noise=[0.0], score_images=[256], grid={"mode": "full"}))
    assert plan.figures == ["acc_vs_macs", "acc_vs_budget"]
    assert "score_stability" in plan.tables


def _record(path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config}))


def reused_folder(root, config: dict, runs_with_finetunes: int = 2) -> None:
    """A synthetic results/default: every clean baseline's metrics, its nuclear and l1 scores, and
    the first `runs_with_finetunes` nuclear runs at macs:0.404 with their 2e fine-tune."""
    plan = grid.plan(config)
    for base, values in plan.baselines.items():
        study = root / "results" / "default"
        spec = json.loads(jobspecs.train_job(config, values))
        _record(study / "baselines" / base / "metrics.json", spec)
        for crit, si in (("nuclear", 2048), ("l1", 0)):
            _record(study / "scores" / base / paths.score_name(crit, si) / "metrics.json",
                    json.loads(jobspecs.score_job(config, values["seed"], [crit], None)))
    for run in [r for r in plan.runs if r.crit == "nuclear" and r.prune == "macs-0.404"][:runs_with_finetunes]:
        folder = root / "results" / "default" / "runs" / paths.run_name(*run)
        seed = plan.baselines[run.base]["seed"]
        _record(folder / "pruned" / "metrics.json", json.loads(jobspecs.prune_job(config, "macs:0.404", seed)))
        _record(folder / "finetuned-2e" / "metrics.json", json.loads(jobspecs.finetune_job(config, seed, "2e")))


def test_leaderboard_reuses_what_the_other_study_holds(tmp_path):
    config = config_of("leaderboard")
    reused_folder(tmp_path, config)
    plan = grid.plan(config, root=tmp_path)
    assert plan.source == "results/default"
    assert len(plan.reused["baselines"]) == 5 and len(plan.reused["scores"]) == 10
    assert len(plan.reused["runs"]) == 2 and len(plan.reused["finetunes"]) == 2
    # 5 seeds x 6 criteria x 4 cuts, of which 2 reused; chip and fpgm and taylor scored here
    assert len(plan.runs) == 120
    assert plan.job_count() == {"score_data": 5, "score_free": 5, "prune": 118, "finetune": 118, "scratch": 20}
    reused_run = sorted(plan.reused["runs"])[0]
    assert plan.run_dir(reused_run).startswith("results/default/runs/")
    assert plan.finetune_dir(reused_run, "2e").startswith("results/default/runs/")
    own = next(run for run in plan.runs if run not in plan.reused["runs"])
    assert plan.run_dir(own).startswith("results/leaderboard/runs/")
    assert plan.score_file(own.base, "nuclear", 2048).startswith("results/default/scores/")
    assert plan.score_file(own.base, "chip", 2048).startswith("results/leaderboard/scores/")
    assert plan.own_data_scores() == [("taylor", 2048), ("chip", 2048)] and plan.own_free_scores() == ["random", "fpgm"]
    # scratch: the focus (nuclear) at each of the 4 cuts, each clean seed, 5 + 2 epochs
    assert len(plan.scratch) == 20 and {r.crit for r in plan.scratch} == {"nuclear"} and plan.scratch_epochs == 7
    assert plan.scratch_dir(plan.scratch[0]).endswith("/scratch-7e")
    # the *.pt files it reads from there are not committed: named before any job
    missing = missing_files(plan, tmp_path)
    assert f"{plan.baseline_dir(own.base)}/model.pt" in missing
    assert plan.score_file(own.base, "nuclear", 2048) in missing          # read by the stability analysis
    with pytest.raises(UserError, match="missing, e.g. results/default/"):
        check_present(plan, tmp_path)
    record = manifest(plan)
    assert record["source"] == "results/default" and len(record["finetunes"]) == 2


def test_reuse_with_another_recipe_names_the_file_and_key(tmp_path):
    reused_folder(tmp_path, config_of("leaderboard"))
    other = config_of("leaderboard", train={"epochs": 6, "batch_size": 128, "lr": 0.05, "momentum": 0.9,
                                            "weight_decay": 5.0e-4, "schedule": "cosine", "augment": "flip"})
    with pytest.raises(UserError) as error:
        grid.plan(other, root=tmp_path)
    assert "results/default/baselines/fashion-mnist__resnet20__nall__ln0.0__s0" in error.value.problem
    assert "epochs=5" in error.value.problem and "epochs=6" in error.value.problem
    changed = config_of("leaderboard", finetune={**config_of("leaderboard")["finetune"], "lr": 0.03})
    with pytest.raises(UserError, match="finetune lr=0.02"):
        grid.plan(changed, root=tmp_path)


def test_reuse_of_a_folder_that_does_not_exist(tmp_path):
    with pytest.raises(UserError) as error:
        grid.plan(config_of("leaderboard", reuse="results/nowhere"), root=tmp_path)
    assert "results/nowhere" in error.value.problem and "make run" in error.value.fix


def test_scratch_needs_a_fine_tuned_cut_and_an_epoch_budget(tmp_path):
    reused_folder(tmp_path, config_of("leaderboard"))
    config = config_of("leaderboard", scratch={"enabled": True, "pruning": ["macs:0.75"]},
                       finetune={**config_of("leaderboard")["finetune"], "pruning": ["macs:0.404"]})
    with pytest.raises(UserError, match="'macs:0.75' is not a fine-tuned cut"):
        grid.plan(config, root=tmp_path)
    batches = config_of("smoke", scratch={"enabled": True},
                        finetune={**config_of("smoke")["finetune"], "budgets": ["5b"]})
    with pytest.raises(UserError, match="not a number of epochs"):
        grid.plan(batches)
    smoke = grid.plan(config_of("smoke", scratch={"enabled": True}))
    # smoke: nuclear at the fine-tuned cut (uniform:0.1), main score_images 256, 8 + 2 epochs
    assert [(r.crit, r.si, r.prune) for r in smoke.scratch] == [("nuclear", 256, "uniform-0.1")]
    assert smoke.scratch_epochs == 10
