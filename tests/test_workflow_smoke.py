"""Real Snakemake runs of config/smoke.yaml on the real Fashion-MNIST files."""
import pandas as pd
import pytest

from conftest import run_snakemake

pytestmark = pytest.mark.integration

REQUIRED = ["dataset", "arch", "criterion", "score_images", "label_noise", "seed", "pruning",
            "macs_base", "macs_pruned", "params_base", "params_pruned", "acc_base", "acc_pruned",
            "acc_finetuned"]


def test_smoke_runs_csv(smoke_local):
    workdir, _ = smoke_local
    runs = pd.read_csv(workdir / "results" / "smoke" / "runs.csv")
    assert set(REQUIRED) <= set(runs.columns)
    data_driven = runs[runs.score_images > 0]
    combos = data_driven.groupby(["criterion", "score_images", "label_noise"]).size()
    assert len(combos) >= 2 * 2 * 2
    assert (runs.macs_pruned < runs.macs_base).all()
    for column in ("acc_base", "acc_pruned"):
        assert runs[column].between(0, 100).all(), column
    # Fine-tuning runs at the levels named in finetune.pruning (smoke: uniform:0.1), once per budget
    # (5b and 2e: one row each), NaN elsewhere (budget 0: not fine-tuned).
    tuned = runs[runs.pruning == "uniform:0.1"]
    assert len(tuned) >= 16 and tuned.acc_finetuned.between(0, 100).all(), tuned.acc_finetuned.tolist()
    assert sorted(tuned.budget.unique()) == ["2e", "5b"]
    per_run = tuned.groupby(["criterion", "score_images", "label_noise", "seed"]).budget.apply(sorted)
    assert all(budgets == ["2e", "5b"] for budgets in per_run)
    others = runs[runs.pruning != "uniform:0.1"]
    assert others.acc_finetuned.isna().all() and set(others.budget.astype(str)) == {"0"}
    assert (runs.acc_base > 30.0).all(), runs.acc_base.tolist()   # chance is 10%
    # smoke.yaml sets latency: true, so every run has both latencies (ms at batch 64)
    for column in ("latency_base_ms", "latency_pruned_ms"):
        assert (runs[column] > 0).all() and (runs[column] < 60_000).all(), runs[column].tolist()


def test_second_run_has_nothing_to_do(smoke_local, snakemake_bin, fashion_root):
    workdir, _ = smoke_local
    result = run_snakemake(snakemake_bin, workdir, fashion_root, "--cores", "2", "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr
