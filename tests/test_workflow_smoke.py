"""Real Snakemake runs of config/smoke.yaml on the real Fashion-MNIST files."""
import subprocess
import time

import pandas as pd
import pytest

from conftest import REPO

pytestmark = pytest.mark.integration

REQUIRED = ["dataset", "arch", "criterion", "score_images", "label_noise", "seed", "pruning",
            "macs_base", "macs_pruned", "params_base", "params_pruned", "acc_base", "acc_pruned",
            "acc_finetuned"]


def snakemake(snakemake_bin, workdir, data_root, *extra):
    cmd = [snakemake_bin, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config" / "smoke.yaml"), "--config", f"data_root={data_root}",
           "--cores", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, snakemake_bin, fashion_root):
    workdir = tmp_path_factory.mktemp("smoke")
    started = time.perf_counter()
    result = snakemake(snakemake_bin, workdir, fashion_root)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"smoke workflow: {seconds:.1f} s")
    return workdir, seconds


def test_smoke_runs_csv(smoke_run):
    workdir, _ = smoke_run
    runs = pd.read_csv(workdir / "results" / "smoke" / "runs.csv")
    assert set(REQUIRED) <= set(runs.columns)
    data_driven = runs[runs.score_images > 0]
    combos = data_driven.groupby(["criterion", "score_images", "label_noise"]).size()
    assert len(combos) >= 2 * 2 * 2
    assert (runs.macs_pruned < runs.macs_base).all()
    for column in ("acc_base", "acc_pruned", "acc_finetuned"):
        assert runs[column].between(0, 100).all(), column
    assert (runs.acc_base > 10.0 + 20).all(), runs.acc_base.tolist()   # well above 10% chance


def test_second_run_has_nothing_to_do(smoke_run, snakemake_bin, fashion_root):
    workdir, _ = smoke_run
    result = snakemake(snakemake_bin, workdir, fashion_root, "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr
