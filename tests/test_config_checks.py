"""A config is checked once: each check of nnprune.plan (the form in config_schema, the meaning in
config_checks, the study's outside references, the dataset) runs exactly once
during one `check_config_file`, one workflow-style parse and one `check`."""
from __future__ import annotations

import functools
import sys
from collections import Counter

import pytest
import yaml

from conftest import REPO
from nnprune.errors import UserError
from nnprune.plan import studyconfig

CONFIG = REPO / "config" / "config.yaml"
FORM = ["check_schema", "check_keys", "schema_errors"]
MEANING = ["check", "check_sizes", "check_test_size", "check_train", "check_pruning", "check_budgets",
           "check_sweeps", "check_focus", "study_references", "study_criteria", "toy_criteria", "study_archs"]

@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Calls of each check by name, through whichever module calls it."""
    counts: Counter = Counter()
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("nnprune.plan")]
    for name in [*FORM, *MEANING, "check_dataset", "outside"]:
        original = getattr(studyconfig, name, None) or next(getattr(m, name) for m in modules if hasattr(m, name))

        def counted(*args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        for module in modules:
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, functools.wraps(original)(counted))
    return counts


def test_check_config_file_runs_each_check_once(calls):
    assert studyconfig.check_config_file(CONFIG) == "default"
    assert calls == Counter({name: 1 for name in [*FORM, *MEANING]} | {"outside": 3})


def test_check_runs_each_check_once_and_the_dataset_check_with_require_data(calls, monkeypatch, tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    studyconfig.check(config, require_data=False)
    assert calls == Counter({name: 1 for name in MEANING} | {"outside": 3})
    calls.clear()
    monkeypatch.chdir(tmp_path)                 # no data here: the dataset check runs, once, and fails
    with pytest.raises(UserError, match="config key 'data_root': the folder data does not exist"):
        studyconfig.check(config)
    assert calls["check_dataset"] == 1 and calls["check_sizes"] == 1 and calls["check_keys"] == 0


def test_the_workflow_parse_runs_each_check_once_and_finds_outside_references_once(calls):
    """workflow/rules/common.smk: check_schema, snakemake's validate (the defaults), then check
    with the references that check_schema found."""
    from importlib.resources import as_file

    from snakemake.utils import validate

    config = yaml.safe_load(CONFIG.read_text())
    references = studyconfig.check_schema(config)
    with as_file(studyconfig.SCHEMA) as schema_file:
        validate(config, str(schema_file))
    studyconfig.check(config, require_data=False, references=references)
    assert calls == Counter({name: 1 for name in [*FORM, *MEANING]} | {"outside": 3})


SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


@pytest.mark.parametrize("changes, problem", [
    # a pruning string before any other schema rule, in the parser's words (not the schema's regex)
    ({"pruning": ["macs:abc"], "label_noise": [0.0, 1.5]},
     "pruning 'macs:abc': macs needs a number above 0 and below 1, got 'abc'"),
    ({"criteria": ["nuclear", "nuclear"]}, "config key 'criteria': 'nuclear' is listed twice"),
    ({"criteria": ["nuclear", "foo.bar"]}, "config key 'criteria': unknown criterion 'foo.bar'"),
])
def test_check_schema_names_errors_of_form_before_validate_could(changes, problem):
    with pytest.raises(UserError) as raised:
        studyconfig.check_schema({**SMOKE, **changes})
    assert raised.value.problem == problem


@pytest.mark.parametrize("changes, problem", [
    ({"pruning": ["preset:hrank"]}, "pruning 'preset:hrank': no HRank preset for architecture 'resnet20'"),
    ({"grid": {"mode": "full", "main_pruning": "macs:0.5"}},
     "config key 'grid.main_pruning': 'macs:0.5' is not one of the pruning levels"),
    ({"toy": {**SMOKE["toy"], "criteria": ["chip"]}}, "config key 'toy.criteria': 'chip' needs feature maps"),
])
def test_check_names_errors_of_meaning_in_a_config_of_the_right_form(changes, problem):
    config = {**SMOKE, **changes}
    references = studyconfig.check_schema(config) if "toy" not in changes else None
    with pytest.raises(UserError) as raised:
        studyconfig.check(config, require_data=False, references=references)
    assert raised.value.problem.startswith(problem), raised.value.problem
