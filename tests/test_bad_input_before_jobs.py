"""Bad input that used to pass `nnprune check-config` and the workflow's checks, then fail the first
job, now stops before any job in two lines (the problem, the fix) with nothing written: a test_size
beyond the test set, baselines of 0 epochs, a built-in criterion listed twice, a dataset missing
under data_root and a data_root that does not exist. The dataset checks run in check-config and
when a run starts (Snakemake's onstart), not at parse time: `snakemake -n` still plans a study on a
machine without its data."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_bad_input import SMOKE, assert_config_error, bad_config, written

from conftest import run_snakemake

# case -> (changes to config/smoke.yaml, problem, fix, where Snakemake stops: "parse" or "start");
# {root} stands for the case's data_root
CASES = {
    "test_size beyond the test set": (
        {"test_size": 1_000_000_000},
        "config key 'test_size': 1000000000 is larger than the test set of fashion-mnist (10,000 images)",
        "set test_size to at most 10000, or remove it to use the whole test set", "parse"),
    "baselines of 0 epochs": (
        {"train": {**SMOKE["train"], "epochs": 0}},
        "config key 'train.epochs': 0 trains the baselines for no epochs, so the study would score and prune "
        "untrained networks", "set train.epochs to 1 or more", "parse"),
    "noisy baselines of 0 epochs": (
        {"grid": {**SMOKE["grid"], "noise_train": {"epochs": 0}}},
        "config key 'grid.noise_train.epochs': 0 trains the baselines for no epochs",
        "set grid.noise_train.epochs to 1 or more", "parse"),
    "a built-in criterion twice": (
        {"criteria": ["nuclear", "taylor", "l1", "random", "nuclear"]},
        "config key 'criteria': 'nuclear' is listed twice", "remove the repeated entry", "parse"),
    "dataset missing under data_root": (
        {"dataset": "cifar10"},
        "dataset cifar10 not found under data_root {root}: missing {root}/cifar-10-batches-py",
        "run `nnprune fetch-data --dataset cifar10 --root {root}`, or set data_root to the folder that holds it",
        "start"),
    # cuts are measured on the architecture with torch, when execution starts
    "unreachable cut": (
        {"pruning": ["uniform:0.1", "macs:0.999"]},
        "pruning 'macs:0.999' for resnet20: macs:0.999 cannot be reached: the largest MACs cut this model "
        "allows is 96.8% (every group keeps at least 1 channel(s))",
        "choose macs:0.967 or less (or a smaller round_to, or a larger max_share)", "start"),
    "two cuts at one measured point": (
        {"pruning": ["uniform:0.1", "macs:0.2", "macs:0.203"]},
        "pruning: 'macs:0.2' and 'macs:0.203' give resnet20 the same measured MACs cut (26.5% and 26.5%)",
        "remove one of them, or move one cut further away", "start"),
    "data_root that does not exist": (
        {},
        "config key 'data_root': the folder {root} does not exist",
        "run `nnprune fetch-data --dataset fashion-mnist --root {root}`, or set data_root to the folder that "
        "holds the datasets", "start"),
}


def case_config(case: str, folder: Path, data_root: Path) -> tuple[Path, Path, str, str, str]:
    """The case's config file in `folder`, with data_root set (a folder that does not exist for the
    data_root case): (path, data_root, problem, fix, stage)."""
    changes, problem, fix, stage = CASES[case]
    if case == "data_root that does not exist":
        data_root = folder / "no-such-folder"
    path = bad_config(folder, {**changes, "data_root": str(data_root)})
    return path, data_root, problem.format(root=data_root), fix.format(root=data_root), stage


@pytest.mark.parametrize("case", list(CASES))
def test_check_config_stops_in_two_lines(case, tmp_path, monkeypatch, capsys, fashion_root):
    from nnprune.pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()                 # a data_root without the dataset's files
    # the cut cases need the dataset (it is checked first); the others a data_root without it
    data_root = fashion_root if "{root}" not in CASES[case][1] and CASES[case][3] == "start" else tmp_path / "data"
    configfile, _, problem, fix, stage = case_config(case, tmp_path, data_root)
    assert main(["check-config", str(configfile)]) == 2
    assert_config_error(capsys.readouterr().err, problem, fix, "nnprune check-config: error: ")
    assert written(tmp_path, {configfile}) == []
    # --no-data leaves the dataset to the machine that runs the study; the other checks stay
    assert main(["check-config", "--no-data", str(configfile)]) == (0 if stage == "start" else 2)


@pytest.mark.integration
@pytest.mark.parametrize("case", list(CASES))
def test_snakemake_stops_before_any_job(case, snakemake_bin, fashion_root, tmp_path):
    """A real run (a check that let the config through would train and write). A parse-time error
    stops a dry run too; the dataset checks run when execution starts, so a dry run plans the jobs."""
    configfile, data_root, problem, fix, stage = case_config(case, tmp_path, fashion_root)
    dry = run_snakemake(snakemake_bin, tmp_path, data_root, "-n", configfile=configfile, timeout=300)
    assert dry.returncode == (0 if stage == "start" else 1), dry.stderr[-2000:]
    result = run_snakemake(snakemake_bin, tmp_path, data_root, "--cores", "1", configfile=configfile, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    if stage == "parse":
        assert_config_error(result.stderr, problem, fix, "nnprune config error: ")
    else:       # after Snakemake's plan of the jobs: the last two lines
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert "Traceback" not in result.stderr and lines[-2:] == [f"nnprune config error: {problem}",
                                                                   f"  fix: {fix}"], lines[-4:]
    assert written(tmp_path, {configfile}) == []
