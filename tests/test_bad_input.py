"""Every bad input ends in one clear message and writes nothing: a config error names the key, the
value and the allowed form in at most three lines (no traceback, no regex), whether Snakemake or
`nnprune check-config` reads it; a bad file given to the CLI exits 2 with one error line and its fix."""
from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_snakemake
from nnprune.errors import UserError
from nnprune.plan.studyconfig import check, check_config_file, check_schema

SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
# change to config/smoke.yaml -> text in the problem line, text in the fix line
CONFIG_CASES = {
    "criteria a string": ({"criteria": "nuclear"},
                          "config key 'criteria': 'nuclear' is a string, but it must be a list",
                          "e.g. criteria: [nuclear]"),
    "archs a string": ({"archs": "resnet20"},
                       "config key 'archs': 'resnet20' is a string, but it must be a mapping",
                       "e.g. archs: {resnet20: {}}"),
    "criteria a number": ({"criteria": 5}, "config key 'criteria': 5 is a whole number, but it must be a list",
                          "each one of: nuclear, nuclear-stacked, hrank"),
    "study leaving results/": ({"study": ".."}, "config key 'study': '..' is not allowed",
                               "a plain name (letters, digits, - and _)"),
    "macs not a number": ({"pruning": ["macs:abc"]},
                          "pruning 'macs:abc': macs needs a number above 0 and below 1, got 'abc'",
                          "write e.g. macs:0.5"),
    "unknown preset": ({"pruning": ["preset:nonexistent"]},
                       "pruning 'preset:nonexistent': unknown preset 'nonexistent'", "use preset:hrank"),
    "label noise 1.5": ({"label_noise": [0.0, 1.5]}, "config key 'label_noise': 1.5 is out of range",
                        "use a number >= 0 and < 1"),
    "unknown pruning option": ({"pruning": ["macs:0.3:foo=1"]},
                               "pruning 'macs:0.3:foo=1': unknown option 'foo=1'",
                               "the options are :round_to=<n> and, for macs:, :max_share=<s>"),
    "repeated seed": ({"seeds": [0, 0]}, "config key 'seeds': [0, 0] repeats 0", "give each value once"),
    "cut of 0": ({"pruning": ["macs:0"]}, "pruning 'macs:0': a cut of 0 removes nothing",
                 "a number above 0 and below 1"),
    # the label-noise claim's fine-tunes need a noisy level to fine-tune
    "noisy fine-tunes without noise": (
        {"label_noise": [0.0], "finetune": {**SMOKE["finetune"], "noisy_baselines": True}},
        "config key 'finetune.noisy_baselines': true, but label_noise [0.0] has no noisy level",
        "add a noisy level to label_noise (e.g. [0.0, 0.4]) or remove finetune.noisy_baselines"),
    "noisy budget not a budget of the study": (
        {"finetune": {**SMOKE["finetune"], "noisy_budgets": ["3e"]}},
        "config key 'finetune.noisy_budgets': '3e' is not one of the fine-tuning budgets (5b, 2e)",
        "use budgets from: 5b, 2e"),
    # the data-size claim's accuracy points: a data-free criterion, a scoring size that is not scored
    "data-size accuracy of a data-free criterion": (
        {"grid": {**SMOKE["grid"], "mode": "sparse", "score_sweep": [32], "score_sweep_criteria": ["nuclear", "l1"]}},
        "config key 'grid.score_sweep_criteria': 'l1' is data-free (it reads weights)",
        "list data-driven criteria only: nuclear, taylor"),
    "data-size accuracy at a size not scored": (
        {"grid": {**SMOKE["grid"], "mode": "sparse", "score_sweep": [64], "score_sweep_criteria": ["nuclear"]}},
        "config key 'grid.score_sweep': [64] not in score_images", "use values from: [32, 256]"),
    # the leaderboard's inputs: reuse of a folder that holds no study, a scratch control at a cut that is
    # not fine-tuned (cuts are measured when execution starts: tests/test_bad_input_before_jobs.py)
    "reuse of a missing study folder": (
        {"reuse": "results/nowhere"}, "reuse: results/nowhere holds no study (no results/nowhere/baselines folder)",
        "run that study first (`make run` makes results/default), or remove `reuse:` from the config"),
    "scratch at a cut not fine-tuned": (
        {"scratch": {"enabled": True, "pruning": ["macs:0.2"]}},
        "scratch.pruning: 'macs:0.2' is not a fine-tuned cut (finetune.pruning: ['uniform:0.1'])",
        "give scratch.pruning cuts of finetune.pruning, or add 'macs:0.2' to finetune.pruning"),
}


def bad_config(folder: Path, changes: dict) -> Path:
    config = copy.deepcopy(SMOKE)
    config.update(changes)
    path = folder / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def written(folder: Path, given: set[Path]) -> list[str]:
    """Files under `folder` besides those `given` and Snakemake's own run log."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p not in given and ".snakemake/log" not in str(p))


def assert_config_error(stderr: str, problem: str, fix: str, prefix: str) -> None:
    """Two lines: `<prefix>PROBLEM` / `  fix: FIX`; no traceback, no regex from the schema."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and "^" not in stderr and "[0-9" not in stderr, stderr[-2000:]
    assert len(lines) == 2, lines
    assert lines[0].startswith(prefix) and problem in lines[0], lines
    assert lines[1].startswith("  fix: ") and fix in lines[1], lines


@pytest.mark.integration
@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_stops_snakemake_with_one_clear_message(case, snakemake_bin, fashion_root, tmp_path):
    """A real run (not a dry run): a check that let the config through would train and write."""
    changes, problem, fix = CONFIG_CASES[case]
    configfile = bad_config(tmp_path, changes)
    result = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--cores", "1",
                           configfile=configfile, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert_config_error(result.stderr, problem, fix, "nnprune config error: ")
    assert written(tmp_path, {configfile}) == []


def test_check_config_names_the_same_problem(tmp_path, capsys):
    from nnprune.pipeline.cli import main

    changes, problem, fix = CONFIG_CASES["criteria a string"]
    assert main(["check-config", str(bad_config(tmp_path, changes))]) == 2
    assert_config_error(capsys.readouterr().err, problem, fix, "nnprune check-config: error: ")


@pytest.mark.parametrize("text, problem", [
    ("", "bad.yaml is empty"),
    ("study: smoke\ncriteria: [nuclear\nseeds: [0]\n",
     "bad.yaml, line 3, column 6: not valid YAML (expected ',' or ']', but got ':')"),
    ("study: smoke\n  dataset: mnist\n",
     "bad.yaml, line 2, column 10: not valid YAML (mapping values are not allowed here)"),
])
def test_check_config_names_an_empty_file_and_the_line_of_a_yaml_error(text, problem, tmp_path, capsys):
    """Snakemake reads a --configfile before the workflow's checks and names no line:
    `nnprune check-config` (which `make run` calls first) does."""
    from nnprune.pipeline.cli import main

    (tmp_path / "bad.yaml").write_text(text)
    assert main(["check-config", str(tmp_path / "bad.yaml")]) == 2
    assert_config_error(capsys.readouterr().err, problem, "", "nnprune check-config: error: ")
    assert written(tmp_path, {tmp_path / "bad.yaml"}) == []


def test_make_run_checks_the_config_before_snakemake():
    recipes = re.findall(r"^(run|smoke): setup\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert [name for name, _ in recipes] == ["run", "smoke"]
    for _, recipe in recipes:
        config = re.search(r"--configfile (\S+)", recipe).group(1)
        assert recipe.index(f"nnprune check-config {config}") < recipe.index("snakemake"), recipe


@pytest.mark.parametrize("name", ["config", "smoke", "paper-cifar10", "paper-imagenet", "gpu-fmnist"])
def test_every_committed_config_passes_check_config(name):
    assert check_config_file(REPO / "config" / f"{name}.yaml") == yaml.safe_load(
        (REPO / "config" / f"{name}.yaml").read_text())["study"]


@pytest.mark.parametrize("changes, problem, fix", [
    ({"study": "a/b"}, "config key 'study': 'a/b' is not allowed", "letters, digits, - and _"),
    ({"study": "v1.2"}, "config key 'study': 'v1.2' is not allowed", "letters, digits, - and _"),
    ({"grid": {"mode": "sparse", "foo": 1}}, "config key 'grid.foo' is not a known setting",
     "remove it or use one of: main_pruning, main_score_images, mode"),
    ({"archs": {"resnet20": {"width": -1}}}, "config key 'archs.resnet20.width': -1 is out of range",
     "use a number > 0"),
    ({"train_size": [0]}, "config key 'train_size': 0 is not allowed", "use a whole number >= 1 or null"),
    ({"device": "gpu"}, "config key 'device': 'gpu' is not allowed", "use auto, cpu, cuda or cuda:<index>"),
    ({"dataset": "svhn"}, "config key 'dataset': 'svhn' is not allowed", "use one of: fashion-mnist, mnist"),
    ({"criteria": []}, "config key 'criteria' is empty", "give at least 1 item"),
    ({"criteria": ["nuclear", "energy"]}, "config key 'criteria': unknown criterion 'energy'",
     "use criteria from: nuclear, nuclear-stacked"),
    ({"claims": {"primary": {"pruning": "macs:x"}}},
     "config key 'claims.primary.pruning': pruning 'macs:x': macs needs a number above 0 and below 1",
     "write e.g. macs:0.5"),
    ({"pruning": ["macs:0.3:round_to=8:foo=1"]}, "unknown option 'foo=1'", ":round_to=<n>"),
    ({"pruning": ["uniform:0.0"]}, "pruning 'uniform:0.0': a cut of 0 removes nothing", "e.g. uniform:0.5"),
    ({"train": {"epochs": "five"}}, "config key 'train.epochs': 'five' is a string, but it must be a whole number",
     "write a whole number >= 0"),
])
def test_schema_errors_name_key_value_and_allowed_form(changes, problem, fix):
    config = copy.deepcopy(SMOKE)
    config.update(changes)
    with pytest.raises(UserError) as raised:
        check_schema(config)
        check(config, require_data=False)
    assert problem in raised.value.problem and fix in raised.value.fix, (raised.value.problem, raised.value.fix)
    assert "^" not in str(raised.value) and "[0-9" not in str(raised.value)


def test_missing_keys_are_all_named():
    config = {k: v for k, v in SMOKE.items() if k not in ("study", "seeds")}
    with pytest.raises(UserError, match=r"config keys 'study', 'seeds' are missing"):
        check_schema(config)


def test_unreachable_macs_cut_names_the_largest_reachable_one():
    """macs:0.999 on ResNet-20 (width 0.5): every group keeps one channel, so the largest cut is
    about 97%; the message says so, and the cut it suggests can be reached."""
    from nnprune.models import build
    from nnprune.plan.schemes import parse_scheme
    from nnprune.pruning.allocation import allocate, build_macs_model
    from nnprune.pruning.layout import model_layout
    from nnprune.pruning.scoring import score_model

    model = build("resnet20", width=0.5).eval()
    layout = model_layout(model, (3, 32, 32))
    macs_model = build_macs_model(model, (3, 32, 32), layout)
    scores, _ = score_model(model, layout.layers, "l1")
    with pytest.raises(UserError) as raised:
        allocate(layout, scores, parse_scheme("macs:0.999"), macs_model)
    problem, fix = raised.value.problem, raised.value.fix
    largest = float(re.search(r"the largest MACs cut this model allows is (\d+\.\d)%", problem).group(1))
    assert 90 < largest < 99.9 and "every group keeps at least 1 channel(s)" in problem, problem
    suggested = re.fullmatch(r"choose (macs:0\.\d+) or less \(or a smaller round_to, or a larger max_share\)", fix)
    assert suggested and abs(float(suggested.group(1)[5:]) * 100 - largest) < 0.15, fix
    assert allocate(layout, scores, parse_scheme(suggested.group(1)), macs_model)   # reachable


@pytest.mark.parametrize("content, problem", [
    (b"", "is empty (0 bytes)"),
    (b"epochs: 3\n", "is not a file written by torch.save (it starts with b'epoc')"),
])
def test_bad_model_file_is_one_line_and_exit_2(content, problem, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "nnprune.pipeline.cli", "evaluate", "--model", str(model),
                             "--device", "cpu", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, lines
    assert lines[0] == f"nnprune evaluate: error: model file {model} {problem}", lines
    assert lines[1].startswith("  fix: "), lines
    assert written(tmp_path, {model}) == []
