"""The workflow as a Snakemake module: a five-line Snakefile in a folder outside the repository
imports nnprune's rules with its own config (the README's "Use the workflow from your own
Snakefile", run as written), and a small study runs end to end with its outputs under that folder,
from a shell where the venv is not activated. A module use with a bad config stops before any job
in two lines, as a top-level run does."""
from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, shell_env

pytestmark = pytest.mark.integration

SECTION = "## Use the workflow from your own Snakefile"


def readme_blocks(text: str) -> list[str]:
    """The code blocks of the README's section SECTION in `text`: its Snakefile, its commands and
    the handlers, as written ("/path/to/nnprune" stands for the reader's checkout)."""
    section = text[text.index(SECTION) + len(SECTION):]
    section = section.split("\n## ", 1)[0]
    return [code for _, code in re.findall(r"```(\w+)\n(.*?)```", section, re.S)]


# The section's blocks as the README writes them: its Snakefile, its commands, and the handlers
# (Snakemake runs a module's handlers only when the importing Snakefile calls them: the dataset
# check before any job, and the warm server).
README_SNAKEFILE, README_COMMANDS, HANDLERS = readme_blocks((REPO / "README.md").read_text(encoding="utf-8"))

SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text(encoding="utf-8"))
STUDY = "module-example"
# config/smoke.yaml cut to one noise level, two criteria, one pruning level and one budget, and a
# one-epoch baseline: 13 jobs, about a minute on 2 cores
SMALL = {"study": STUDY, "train_size": [1000], "val_size": 500, "test_size": 500, "label_noise": [0.0],
         "criteria": ["nuclear", "l1"], "score_images": [32], "pruning": ["uniform:0.1"],
         "grid": {"mode": "full", "main_score_images": 32, "main_pruning": "uniform:0.1"},
         "latency": False, "bn_recalibration": 128,
         "train": {"epochs": 1, "batch_size": 128, "lr": 0.1, "schedule": "cosine"},
         "finetune": {"budgets": ["5b"], "batch_size": 128, "lr": 0.01, "schedule": "cosine"},
         "toy": {"datasets": ["moons"], "criteria": ["nuclear", "l1"], "seeds": 1, "width": 0.1, "steps": 30,
                 "train_points": 100, "test_points": 50, "fractions": [0.25, 0.5], "grid": 16}}


def user_folder(folder: Path, data_root: Path, config: dict, handlers: bool = False) -> Path:
    """A user's folder: the README's Snakefile (with this checkout's path), myconfig.yaml, data/."""
    folder.mkdir(parents=True, exist_ok=True)
    snakefile = README_SNAKEFILE.replace("/path/to/nnprune", str(REPO))
    (folder / "Snakefile").write_text(snakefile + ("\n" + HANDLERS if handlers else ""))
    (folder / "myconfig.yaml").write_text(yaml.safe_dump(config))
    (folder / "data").symlink_to(data_root)
    return folder


def small_config(**changes) -> dict:
    config = copy.deepcopy(SMOKE)
    config.update(copy.deepcopy(SMALL))
    config.update(changes)
    return config


def run(folder: Path, command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`command` in `folder` from a shell that activated nothing (no .venv/bin on PATH)."""
    return subprocess.run(["bash", "-c", command], cwd=folder, env=shell_env(), capture_output=True, text=True,
                          timeout=timeout)


def written(folder: Path) -> list[str]:
    """What a run wrote into the user's folder, besides its inputs and Snakemake's own log."""
    inputs = {"Snakefile", "myconfig.yaml", "data"}
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.relative_to(folder).parts[0] not in inputs and ".snakemake" not in p.parts)


def two_line_error(stderr: str) -> list[str]:
    """The last two non-empty lines of stderr: nnprune's problem and fix."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.strip()][-2:]


def test_a_study_runs_as_a_module_under_the_users_folder(tmp_path, fashion_root):
    assert not tmp_path.resolve().is_relative_to(REPO.resolve())
    ours = REPO / "results" / STUDY
    assert not ours.exists()
    folder = user_folder(tmp_path / "my-study", fashion_root, small_config())
    result = run(folder, "set -e\n" + README_COMMANDS.replace("/path/to/nnprune", str(REPO)))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "nnprune: fashion-mnist ready under data (present)" in result.stdout     # the linked data
    study = folder / "results" / STUDY
    runs = pd.read_csv(study / "runs.csv")
    assert sorted(zip(runs.criterion, runs.score_images, runs.budget)) == [("l1", 0, "5b"), ("nuclear", 32, "5b")]
    # uniform:0.1 removes int(0.1 n) channels of every group whatever the criterion: the same MACs
    # for both, a few percent at width 0.25 (groups of 4 channels lose none)
    assert runs.macs_reduction.nunique() == 1 and 1 < runs.macs_reduction.iloc[0] < 10, runs.macs_reduction
    assert runs.acc_finetuned.between(0, 100).all() and runs.acc_base.between(0, 100).all()
    claims = json.loads((study / "claims.json").read_text())
    # one noise level and one scoring size: the claims this study can test, of the default focus
    assert [claim["name"] for claim in claims["claims"]] == ["toy", "cnn"] and claims["focus"] == "nuclear"
    assert (study / "toy" / "toy.csv").is_file() and (study / "figures" / "notes.md").is_file()
    assert not ours.exists()           # nothing under the repository's results/
    # every job (all 13 but `all`, which runs nothing) found the `nnprune` command without the venv
    # on PATH: a log each, none with exit 127's "command not found"
    logs = list((study / "logs").rglob("*.log"))
    assert len(logs) == 12 and not [p for p in logs if "command not found" in p.read_text()], logs


def test_a_module_config_without_a_required_key_stops_before_any_job(tmp_path, fashion_root):
    config = {k: v for k, v in small_config().items() if k != "seeds"}
    folder = user_folder(tmp_path / "my-study", fashion_root, config)
    result = run(folder, f"{REPO}/.venv/bin/snakemake -n")
    assert result.returncode == 1, result.stderr[-3000:]
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "nnprune config error: config key 'seeds' is missing",
        "  fix: add it; config/config.yaml shows every setting"]
    assert written(folder) == []


def test_the_modules_handlers_check_the_data_before_any_job(tmp_path, fashion_root):
    """With the handlers called from the user's Snakefile, a data_root that does not exist stops
    a real run at its start, in two lines, with nothing written; a dry run still plans every job."""
    missing = tmp_path / "no-such-folder"
    folder = user_folder(tmp_path / "my-study", fashion_root, small_config(data_root=str(missing)), handlers=True)
    dry = run(folder, f"{REPO}/.venv/bin/snakemake -n")
    assert dry.returncode == 0 and re.search(r"^total\s+13$", dry.stdout, re.M), dry.stderr[-3000:]
    result = run(folder, f"{REPO}/.venv/bin/snakemake --cores 1")
    assert result.returncode == 1, result.stderr[-3000:]
    assert two_line_error(result.stderr) == [
        f"nnprune config error: config key 'data_root': the folder {missing} does not exist",
        f"  fix: run `nnprune fetch-data --dataset fashion-mnist --root {missing}`, or set data_root to the "
        "folder that holds the datasets"]
    assert written(folder) == []
