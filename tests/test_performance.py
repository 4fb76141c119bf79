"""Performance-related behaviour that could silently regress: latency reaches the tables, and
the steps' imports stay light (every short job of a study pays for them at start-up)."""
import subprocess
import sys

import numpy as np
import pandas as pd

from nnprune.aggregate import COLUMNS
from nnprune.report import build_tables


def _runs(latency: bool) -> pd.DataFrame:
    rows = []
    for seed in range(2):
        row = {column: np.nan for column in COLUMNS}
        row.update(dataset="fashion-mnist", arch="resnet20", width=0.5, train_size=100,
                   label_noise=0.0, noise_kind="symmetric", seed=seed, criterion="l1",
                   score_images=0, pruning="macs:0.3", acc_base=90.0, acc_pruned=50.0 + seed,
                   acc_finetuned=80.0, macs_reduction=30.0, params_reduction=20.0)
        if latency:
            row.update(latency_base_ms=10.0 + seed, latency_pruned_ms=6.0)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def test_by_pruning_has_latency_columns_only_when_measured():
    with_latency = build_tables(_runs(True), pd.DataFrame(), "macs:0.3", 0)["by_pruning"]
    table, _, metrics, _ = with_latency
    assert metrics[-2:] == ["latency_base_ms", "latency_pruned_ms"]
    assert table.latency_base_ms_mean.iloc[0] == 10.5 and table.latency_pruned_ms_n.iloc[0] == 2
    without = build_tables(_runs(False), pd.DataFrame(), "macs:0.3", 0)["by_pruning"]
    assert not any(metric.startswith("latency") for metric in without[2])


def test_steps_do_not_import_torchvision():
    # torchvision brings torch._dynamo along: 1-2 s of start-up in each of 100+ short jobs.
    code = ("import sys, nnprune.cli, nnprune.steps, nnprune.models, nnprune.pruning, "
            "nnprune.scoring; print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
