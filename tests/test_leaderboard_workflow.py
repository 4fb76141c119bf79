"""A second study that reuses the smoke study's work (config `reuse:`), run by real Snakemake: it trains
no baseline, reads the shared runs in place, prunes the cut the smoke study did not fine-tune, trains
the focus criterion's architectures from scratch, and writes the leaderboard."""
import json

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.integration


def board_config(folder, data_root) -> dict:
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config.update(study="smoke-board", reuse="results/smoke", data_root=str(data_root), label_noise=[0.0],
                  criteria=["nuclear", "l1", "random"], score_images=[256],
                  grid={"mode": "full", "main_score_images": 256, "main_pruning": "uniform:0.1"},
                  scratch={"enabled": True}, toy={"enabled": False},
                  finetune={**config["finetune"], "pruning": ["uniform:0.1", "macs:0.2"]})
    path = folder / "board.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_study_that_reuses_the_smoke_study(smoke_local, snakemake_bin, fashion_root, tmp_path):
    # its own working folder (the smoke study's stays as the other tests read it), with the smoke
    # study's results where `reuse:` names them
    smoke_dir, _ = smoke_local
    workdir = tmp_path
    (workdir / "results").mkdir()
    (workdir / "results" / "smoke").symlink_to(smoke_dir / "results" / "smoke")
    configfile = board_config(workdir, fashion_root)
    dry = run_snakemake(snakemake_bin, workdir, fashion_root, "-n", "--quiet", "rules", configfile=configfile)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "train " not in dry.stdout                       # the baselines are the smoke study's
    result = run_snakemake(snakemake_bin, workdir, fashion_root, "--cores", "2", configfile=configfile)
    assert result.returncode == 0, result.stderr[-4000:]
    study = workdir / "results" / "smoke-board"
    assert not (study / "baselines").exists()
    reused = json.loads((study / "reused.json").read_text())
    assert reused["source"] == "results/smoke" and len(reused["baselines"]) == 1
    # uniform:0.1 by nuclear, l1 and random was fine-tuned at both budgets in the smoke study
    assert len(reused["pruned_runs"]) == 3 and len(reused["finetunes"]) == 6
    runs = pd.read_csv(study / "runs.csv")
    pruned, scratch = runs[runs.kind == "pruned"], runs[runs.kind == "scratch"]
    shared = pruned[pruned.pruning == "uniform:0.1"]
    assert shared.pruned_metrics.str.startswith("../smoke/runs/").all()
    assert pruned[pruned.pruning == "macs:0.2"].pruned_metrics.str.startswith("runs/").all()
    smoke_runs = pd.read_csv(smoke_dir / "results" / "smoke" / "runs.csv")
    same = smoke_runs[(smoke_runs.pruning == "uniform:0.1") & (smoke_runs.label_noise == 0.0)
                      & smoke_runs.criterion.isin(["nuclear", "l1", "random"]) & smoke_runs.score_images.isin([0, 256])]
    key = ["criterion", "budget"]
    assert (shared.set_index(key).acc_finetuned.sort_index()
            == same.set_index(key).acc_finetuned.sort_index()).all()     # read, not recomputed
    # the focus (nuclear) at both fine-tuned cuts, trained 8 + 2 epochs from scratch
    assert sorted(scratch.pruning) == ["macs:0.2", "uniform:0.1"] and set(scratch.budget) == {"10e"}
    assert set(scratch.criterion) == {"nuclear"} and scratch.acc_finetuned.between(10, 100).all()
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.tex"):
        assert (study / "tables" / name).is_file()
    assert (study / "figures" / "leaderboard.png").is_file()
    board = pd.read_csv(study / "tables" / "leaderboard.csv")
    assert set(board.pruning) == {"uniform:0.1", "macs:0.2"}
    assert {"scratch", "baselines", "nuclear", "l1", "random"} == set(board.criterion)
