"""`nnprune compare A B`: matching two studies' claims.json verdicts, the CLI, its one-line error, and
importing the comparison without torch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nnprune.analysis.compare import compare_studies, load_claims, render_markdown
from nnprune.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def point(comparison: str, comparator: str, label: str, verdict: str, mean: float | None,
          ci: tuple[float, float] | None, stratum: str | None = None, primary: bool = False,
          margin: float = 1.0) -> dict:
    return {"comparison": comparison, "comparator": comparator, "stratum": stratum, "label": label,
            "primary": primary, "mean_difference": mean, "ci_low": None if ci is None else ci[0],
            "ci_high": None if ci is None else ci[1], "verdict": verdict, "pairs": 5, "margin": margin}


def study_a() -> dict:
    """The committed study: old-format seed checks (`seed_split`)."""
    return {"focus": "nuclear", "claims": [
        {"name": "cnn", "verdict": "equivalent", "seed_split": {"status": "stable"},
         "points": [point("best other", "taylor", "2 epochs", "equivalent", -0.1412, (-0.3201, 0.0333),
                          stratum="global", primary=True),
                    point("random", "random", "2 epochs", "equivalent", 0.171, (-0.16, 0.49), stratum="global"),
                    point("best other", "l1", "30 batches", "not supported", -2.094, (-3.27, -0.9),
                          stratum="global")],
         "secondary": [{"name": "uniform allocation",
                        "points": [point("best other", "l1", "noise 0.4", "not supported", -30.38,
                                         (-58.37, -2.39))]}]},
        {"name": "data_size", "verdict": "unstable", "seed_split": {"status": "unstable"},
         "points": [point("best other", "hrank", "32 images", "supported", 0.04213, (0.0221, 0.0622),
                          primary=True, margin=0.02)],
         "secondary": []},
    ]}


def study_b() -> dict:
    """The regenerated study: new-format seed checks (`seed_check`), another comparator at 30 batches,
    a point A lacks."""
    return {"focus": "nuclear", "claims": [
        {"name": "cnn", "verdict": "equivalent", "seed_check": {"status": "stable"},
         "points": [point("best other", "taylor", "2 epochs", "equivalent", -0.1577, (-0.65, 0.34),
                          stratum="global", primary=True),
                    point("random", "random", "2 epochs", "equivalent", 0.11, (-0.36, 0.57), stratum="global"),
                    point("best other", "taylor", "30 batches", "inconclusive", -6.1, (-16.01, 3.81),
                          stratum="global"),
                    point("best other", "l1", "BN recalibrated", "inconclusive", -14.84, None, stratum="uniform")],
         "secondary": [{"name": "uniform allocation",
                        "points": [point("best other", "taylor", "noise 0.4", "not supported", -27.45,
                                         (-40.33, -14.57))]}]},
        {"name": "data_size", "verdict": "supported", "seed_check": {"status": "stable"},
         "points": [point("best other", "hrank", "32 images", "supported", 0.04449, (0.0121, 0.0762),
                          primary=True, margin=0.02)],
         "secondary": []},
    ]}


# Rows: cnn claim, 2 epochs vs best, 2 epochs vs random, 30 batches, uniform BN (B only), uniform allocation,
# data_size claim, 32 images. Agreeing: cnn claim, both 2-epoch points, uniform allocation, 32 images.
SUMMARY = "5 of 8 verdicts agree (claims: 1 of 2)"


@pytest.fixture
def studies(tmp_path: Path) -> tuple[Path, Path]:
    folders = []
    for name, data in (("committed", study_a()), ("regenerated", study_b())):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "claims.json").write_text(json.dumps(data), encoding="utf-8")
        folders.append(folder)
    return folders[0], folders[1]


def test_compare_studies_matches_points_across_studies(studies):
    a, b = studies
    frame = compare_studies(load_claims(a), load_claims(b), "A", "B")
    assert list(frame["kind"]) == ["claim", "point", "point", "point", "point", "point", "claim", "point"]
    assert list(frame["point"]) == ["claim verdict", "global, 2 epochs (primary)", "global, 2 epochs",
                                    "global, 30 batches", "uniform, BN recalibrated", "noise 0.4",
                                    "claim verdict", "32 images (primary)"]
    assert list(frame["section"][1:6]) == ["main", "main", "main", "main", "uniform allocation"]
    assert list(frame["agree"]) == [True, True, True, False, False, True, False, True]

    cnn = frame.iloc[0]
    assert (cnn["verdict_a"], cnn["verdict_b"]) == ("equivalent", "equivalent")
    assert (cnn["seed_check_a"], cnn["seed_check_b"]) == ("stable", "stable")      # seed_split vs seed_check
    data_size = frame.iloc[6]
    assert (data_size["verdict_a"], data_size["verdict_b"]) == ("unstable", "supported")
    assert (data_size["seed_check_a"], data_size["seed_check_b"]) == ("unstable", "stable")
    assert frame.iloc[1]["seed_check_a"] == "–"

    primary = frame.iloc[1]
    assert primary["comparison"] == "best other"
    assert primary["mean_a"] == pytest.approx(-0.1412) and primary["mean_b"] == pytest.approx(-0.1577)
    assert (primary["ci_low_b"], primary["ci_high_b"]) == (pytest.approx(-0.65), pytest.approx(0.34))
    assert bool(primary["overlap"])

    # the comparator is not part of the key: l1 in A, taylor in B, still one row
    batches = frame.iloc[3]
    assert (batches["comparator_a"], batches["comparator_b"]) == ("l1", "taylor")
    assert (batches["verdict_a"], batches["verdict_b"]) == ("not supported", "inconclusive")
    assert bool(batches["overlap"])        # [-3.27, -0.9] within [-16.01, 3.81]
    assert (frame.iloc[5]["comparator_a"], frame.iloc[5]["comparator_b"]) == ("l1", "taylor")

    only_b = frame.iloc[4]
    assert only_b["verdict_a"] is None and pd.isna(only_b["mean_a"]) and only_b["comparator_a"] is None
    assert only_b["verdict_b"] == "inconclusive" and only_b["mean_b"] == pytest.approx(-14.84)
    assert not only_b["agree"] and not only_b["overlap"]


def test_render_markdown_formats_numbers_by_margin(studies):
    a, b = studies
    frame = compare_studies(load_claims(a), load_claims(b), "committed", "regenerated")
    text = render_markdown(frame, "committed", "regenerated")
    lines = text.splitlines()
    assert lines[0] == SUMMARY
    assert "verdict: committed" in lines[2] and "verdict: regenerated" in lines[2]
    row_2_epochs = next(line for line in lines if "global, 2 epochs (primary)" in line)
    assert "-0.14 [-0.32, +0.03]" in row_2_epochs and "-0.16 [-0.65, +0.34]" in row_2_epochs   # margin 1.0
    row_32 = next(line for line in lines if "32 images" in line)
    assert "+0.042 [+0.022, +0.062]" in row_32 and "+0.044 [+0.012, +0.076]" in row_32         # margin 0.02
    row_batches = next(line for line in lines if "30 batches" in line)
    assert "l1 / taylor" in row_batches and "**no**" in row_batches
    row_only_b = next(line for line in lines if "uniform, BN recalibrated" in line)
    assert "-14.84 |" in row_only_b     # no interval on B's side


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NNPRUNE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "nnprune.pipeline.cli", "compare", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_prints_table_and_writes_files(studies, tmp_path: Path):
    a, b = studies
    out = tmp_path / "out"
    result = run_cli(str(a), str(b), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == SUMMARY
    assert f"verdict: {a}" in result.stdout
    written = pd.read_csv(out / "compare.csv")
    assert len(written) == 8
    assert list(written["agree"]) == [True, True, True, False, False, True, False, True]
    assert written.loc[6, "verdict_b"] == "supported" and written.loc[6, "seed_check_a"] == "unstable"
    assert written.loc[3, "mean_b"] == pytest.approx(-6.1)
    assert pd.isna(written.loc[4, "verdict_a"])
    markdown = (out / "compare.md").read_text(encoding="utf-8")
    assert markdown == result.stdout


def test_cli_folder_without_claims_is_one_line(studies, tmp_path: Path):
    a, _ = studies
    empty = tmp_path / "never-run"
    empty.mkdir()
    out = tmp_path / "out"
    result = run_cli(str(a), str(empty), "--out", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip()
    assert lines[0].startswith("nnprune compare: error: ")
    assert f"'{empty}' has no claims.json" in lines[0]
    assert "fix:" in lines[0] and f"nnprune claims --study-dir {empty}" in lines[0]
    assert not out.exists()

    missing = tmp_path / "no-such-folder"
    result = run_cli(str(missing), str(a))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert str(missing) in result.stderr and "fix:" in result.stderr


def test_load_claims_names_folder(tmp_path: Path):
    with pytest.raises(UserError) as error:
        load_claims(tmp_path)
    assert str(tmp_path) in error.value.problem and "snakemake" in error.value.fix


def test_compare_imports_without_torch(studies):
    a, b = studies
    script = (
        "import importlib.abc, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError(f'torch is blocked: {name}')\n"
        "        return None\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from nnprune.analysis.compare import compare_studies, load_claims\n"
        f"frame = compare_studies(load_claims({str(a)!r}), load_claims({str(b)!r}), 'A', 'B')\n"
        "assert 'torch' not in sys.modules\n"
        "print(len(frame), int(frame['agree'].sum()))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("NNPRUNE_")}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["8", "5"]


def test_a_claim_read_on_another_metric_is_flagged_not_replicated():
    """Two studies whose label-noise claim reads different accuracies (BN-recalibrated against
    fine-tuned): the verdicts may agree, but the claim row and its points say the metric differs."""
    from nnprune.analysis.compare import compare_studies, render_markdown, summary_line

    a, b = study_a(), study_b()
    a["claims"][0]["metric"] = "minus the accuracy drop (acc_pruned_bn, BatchNorm recalibrated)"
    b["claims"][0]["metric"] = "minus the accuracy drop (acc_finetuned, after fine-tuning)"
    frame = compare_studies(a, b, "A", "B")
    name = a["claims"][0]["name"]
    mine = frame[(frame.claim == name) & (frame.section.isna() | (frame.section == "main"))]
    assert len(mine) == 5 and not mine.same_metric.any()
    # its secondary family states no metric in either study (the same), and the other claim is untouched
    assert frame[(frame.claim == name) & (frame.section == "uniform allocation")].same_metric.all()
    assert frame[frame.claim != name].same_metric.all()
    assert summary_line(frame).endswith(f"; {name} reads another metric in each study: no replication either way")
    assert "claim verdict** (another metric in each study)" in render_markdown(frame, "A", "B")
