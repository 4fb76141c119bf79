"""Outside criteria and models: how a config names them, the protocol they follow, and every
bad one ending in one clear line with nothing written (at the config parse, before any job, or
at scoring time naming the criterion and the layer)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_bad_input import SMOKE, assert_config_error, bad_config, written
from torch import nn

from conftest import REPO, run_snakemake
from nnprune.errors import UserError
from nnprune.plan import plugins
from nnprune.plan.studyconfig import check, study_criteria

PLUGIN = '''
import torch
from torch import nn
from nnprune.pruning.criteria import LayerInputs, criterion

@criterion(reads="weights")
def gamma(layer: LayerInputs):
    return layer.bn.weight.detach().abs()

@criterion(reads="weights")
def too_short(layer: LayerInputs):
    return torch.ones(layer.channels - 1)

@criterion(reads="features")
def nan_scores(layer: LayerInputs):
    stat = layer.features.abs().sum(dim=(0, 2, 3)).double()
    stat[0] = float("nan")
    return stat

def undeclared(layer):
    return layer.weight.abs().sum(dim=1)

not_a_function = 3

class NoConv(nn.Module):
    def __init__(self, num_classes, in_channels, width=1.0):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, 32), nn.ReLU(),
                                  nn.Linear(32, num_classes))
    def forward(self, x):
        return self.body(x)
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder with module `myplugin` (PLUGIN), on sys.path for this test."""
    folder = tmp_path / "plug"
    folder.mkdir()
    name = f"myplugin_{abs(hash(str(tmp_path))) % 10**8}"      # a fresh module name per test
    (folder / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(folder))
    return folder, name


def with_criteria(entries, **changes):
    config = {**SMOKE, "criteria": ["nuclear", *entries], **changes}
    config["grid"] = {k: v for k, v in SMOKE["grid"].items()}
    return config


# ---------------------------------------------------------------- naming an outside criterion
def test_short_names_come_from_the_function_or_the_config(plugin_dir):
    _, module = plugin_dir
    found = study_criteria(with_criteria([f"{module}:gamma", f"slim={module}:gamma"]))
    assert list(found) == ["nuclear", "gamma", "slim"]
    assert found["nuclear"] is None
    assert found["gamma"].target == f"{module}:gamma" and found["gamma"].reads == "weights"
    assert found["slim"].entry == f"slim={module}:gamma"
    assert len(found["gamma"].sha256) == 64 and found["gamma"].file.endswith(f"{module}.py")


def test_the_config_parse_does_not_run_the_module(plugin_dir):
    """find_spec and the syntax tree only: a module that would fail on import still parses."""
    folder, module = plugin_dir
    path = folder / f"{module}.py"
    path.write_text("raise RuntimeError('imported')\n" + path.read_text())
    assert study_criteria(with_criteria([f"{module}:gamma"]))["gamma"].reads == "weights"


def test_a_changed_module_changes_the_score_job_spec(plugin_dir):
    from nnprune.plan.jobspecs import score_job

    folder, module = plugin_dir
    config = with_criteria([f"{module}:gamma"], score_batch_size=128, feature_point=None)   # schema defaults
    before = score_job(config, 0, ["gamma"], None)
    (folder / f"{module}.py").write_text((folder / f"{module}.py").read_text() + "\n# edited\n")
    after = score_job(config, 0, ["gamma"], None)
    assert before != after and f'"gamma={module}:gamma"' in after
    builtin = {**SMOKE, "score_batch_size": 128, "feature_point": None}
    assert score_job(config, 0, ["nuclear"], [32]) == score_job(builtin, 0, ["nuclear"], [32])  # no sources key


@pytest.mark.parametrize("entry, problem, fix", [
    ("nosuchmodule_xyz:gamma", "module 'nosuchmodule_xyz' not found", "put its folder on PYTHONPATH"),
    ("{m}:not_a_function", "'not_a_function' in", "name a function decorated with @criterion"),
    ("{m}:undeclared", "function 'undeclared' in", "decorate it with @criterion(reads=...)"),
    ("{m}:missing", "defines no 'missing'", "name a function that"),
    ("nuclear={m}:gamma", "takes the name of the built-in criterion 'nuclear'", "give it another short name"),
    ("energy", "unknown criterion 'energy'", "package.module:function"),
])
def test_a_bad_outside_criterion_is_one_clear_error_at_the_parse(entry, problem, fix, plugin_dir):
    _, module = plugin_dir
    with pytest.raises(UserError) as raised:
        check(with_criteria([entry.format(m=module)]), require_data=False)
    assert problem in raised.value.problem and fix in raised.value.fix, (raised.value.problem, raised.value.fix)


def test_claims_focus_must_be_one_of_the_criteria(plugin_dir):
    _, module = plugin_dir
    check(with_criteria([f"{module}:gamma"], claims={"focus": "gamma"}), require_data=False)
    with pytest.raises(UserError) as raised:
        check({**SMOKE, "claims": {"focus": "gamma"}}, require_data=False)
    assert "config key 'claims.focus': 'gamma' is not one of the study's criteria" in raised.value.problem
    assert "nuclear, taylor, l1, random" in raised.value.fix


def test_rates_strings_are_refused_for_an_outside_model(plugin_dir):
    _, module = plugin_dir
    config = {**SMOKE, "archs": {f"{module}:NoConv": {}}, "pruning": ["rates:[0.1]*3"]}
    with pytest.raises(UserError) as raised:
        check(config, require_data=False)
    assert "rates: and preset: are for the built-in models" in raised.value.problem
    assert "macs:<fraction>" in raised.value.fix


# ---------------------------------------------------------------- the protocol at scoring time
def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()


def test_an_outside_criterion_reads_the_layers_batchnorm(plugin_dir):
    from nnprune.pruning.layout import model_layout
    from nnprune.pruning.scoring import score_model

    _, module = plugin_dir
    model = tiny_model()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.5, -2.0, 1.0, 0.1]))
    layers = model_layout(model, (1, 8, 8)).layers
    scores, used = score_model(model, layers, f"{module}:gamma", example=torch.zeros(1, 1, 8, 8))
    assert used == 0 and layers == ["0", "3"]
    torch.testing.assert_close(scores["0"], torch.tensor([0.5, 2.0, 1.0, 0.1]))


@pytest.mark.parametrize("function, problem", [
    ("too_short", "criterion 'too_short' on layer '0' returned scores of shape [3]; the layer has 4 output channels"),
    ("nan_scores", "criterion 'nan_scores' on layer '0' returned 1 NaN or infinite score(s) of 4"),
])
def test_bad_scores_name_the_criterion_and_the_layer_and_write_nothing(function, problem, plugin_dir, tmp_path):
    """Through the score step, on a real baseline file: nothing is written under --out."""
    from nnprune import api
    from nnprune.pruning.model_file import save_model

    _, module = plugin_dir
    model_path = save_model(tmp_path / "base" / "model.pt", _resnet(), "resnet20",
                            {"num_classes": 10, "in_channels": 1, "width": 0.25}, (1, 28, 28),
                            data=_data(), train={}, acc_test=10.0)
    out = tmp_path / "scores"
    with pytest.raises(UserError) as raised:
        api.score(api.ScoreSpec(model=str(model_path), criteria=[f"{module}:{function}"], score_images=[16],
                                device="cpu", out=str(out)))
    assert problem.replace("'0'", "'conv1'") in raised.value.problem or problem in raised.value.problem, \
        raised.value.problem
    assert "one finite score per output channel" in raised.value.fix
    assert not out.exists() or not any(out.rglob("*"))


def _resnet() -> nn.Module:
    from nnprune.models import build

    return build("resnet20", num_classes=10, in_channels=1, width=0.25)


def _data() -> dict:
    from conftest import DATA_ROOT

    return {"dataset": "fashion-mnist", "data_root": str(DATA_ROOT), "train_size": 64, "val_size": 100,
            "test_size": 100, "label_noise": 0.0, "noise_kind": "symmetric", "seed": 0, "split_seed": 0}


def test_the_score_job_refuses_an_attribute_that_is_not_callable(plugin_dir):
    from nnprune.pruning.criteria import resolve

    _, module = plugin_dir
    with pytest.raises(UserError, match=r"not_a_function is not callable \(a int\)"):
        resolve(f"{module}:not_a_function")
    with pytest.raises(UserError, match="is not declared as a criterion"):
        resolve(f"{module}:undeclared")
    assert resolve(f"g={module}:gamma").name == "g"


def test_an_outside_model_without_a_prunable_conv_fails_before_training(plugin_dir, tmp_path):
    from nnprune import api

    _, module = plugin_dir
    out = tmp_path / "baseline"
    spec = api.TrainSpec(arch=f"{module}:NoConv", **_data(), epochs=1, device="cpu", out=str(out))
    with pytest.raises(UserError) as raised:
        api.train(spec)
    assert "architecture 'NoConv' has no prunable convolution" in raised.value.problem
    assert not out.exists()


def test_the_protocol_rejects_an_unknown_declaration():
    from nnprune.pruning.criteria import criterion

    with pytest.raises(ValueError, match="reads must be one of weights, features, gradients, seed"):
        criterion(reads="labels")
    assert plugins.READS == ("weights", "features", "gradients", "seed")


# ---------------------------------------------------------------- real Snakemake: one line, nothing written
@pytest.mark.integration
@pytest.mark.parametrize("case", ["missing module", "not callable", "focus", "no conv"])
def test_snakemake_stops_a_bad_outside_plugin_in_one_line(case, plugin_dir, tmp_path, snakemake_bin, fashion_root):
    folder, module = plugin_dir
    changes, problem, fix = {
        "missing module": ({"criteria": ["nuclear", "nosuchmodule_xyz:gamma"]},
                           "module 'nosuchmodule_xyz' not found", "PYTHONPATH"),
        "not callable": ({"criteria": ["nuclear", f"{module}:not_a_function"]},
                         "'not_a_function' in", "name a function decorated with @criterion"),
        "focus": ({"claims": {"focus": "fpgm"}}, "config key 'claims.focus': 'fpgm' is not one of", "set claims.focus"),
        "no conv": ({"archs": {f"{module}:NoConv": {}}, "pruning": ["macs:0.2"],
                     "grid": {"mode": "full", "main_score_images": 256},
                     "finetune": {**SMOKE["finetune"], "pruning": ["macs:0.2"]}},
                    "architecture 'NoConv' has no prunable convolution", "nn.Conv2d"),
    }[case]
    workdir = tmp_path / "work"
    workdir.mkdir()
    configfile = bad_config(workdir, changes)
    result = run_snakemake(snakemake_bin, workdir, fashion_root, "--cores", "1", configfile=configfile,
                           timeout=300, env={"PYTHONPATH": str(folder)})
    assert result.returncode == 1, result.stderr[-2000:]
    stderr = result.stderr
    if case == "no conv":
        # found when execution starts (onstart builds the model), after Snakemake's banner and job
        # table and before any job: the error is the last two lines, and no traceback
        assert "Traceback" not in stderr, stderr[-2000:]
        stderr = "\n".join([line for line in stderr.splitlines() if line.strip()][-2:])
    assert_config_error(stderr, problem, fix, "nnprune config error: ")
    assert written(workdir, {configfile}) == []


def test_plugin_parse_stays_torch_free(plugin_dir):
    folder, module = plugin_dir
    code = ("import sys\n"
            "from nnprune.plan.studyconfig import study_criteria\n"
            f"print(study_criteria({{'criteria': ['{module}:gamma']}})['gamma'].reads, 'torch' in sys.modules)\n")
    env_path = f"{folder}:{REPO}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.stdout.split() == ["weights", "False"], out.stderr[-2000:]


def test_examples_folder_is_not_a_package():
    """examples/ is found on PYTHONPATH as plain modules (as a researcher's own folder would be)."""
    assert not (Path(REPO) / "examples" / "__init__.py").exists()


def test_an_installed_entry_point_names_a_criterion(plugin_dir):
    """A package that registers `nnprune.criteria` entry points (here a dist-info folder on
    sys.path, as pip installs one) is named in a config by the entry point's name alone."""
    from nnprune.pruning.criteria import resolve

    folder, module = plugin_dir
    info = folder / "mycriteria-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mycriteria\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[nnprune.criteria]\nslim_gamma = {module}:gamma\n")
    found = study_criteria(with_criteria(["slim_gamma"]))
    assert found["slim_gamma"].target == f"{module}:gamma" and found["slim_gamma"].reads == "weights"
    assert resolve("slim_gamma").name == "slim_gamma" and resolve("slim_gamma").origin == f"{module}:gamma"
    with pytest.raises(UserError, match="unknown criterion 'slim_gama'"):
        check(with_criteria(["slim_gama"]), require_data=False)


def test_toy_jobs_receive_an_outside_criterion_and_its_hash(plugin_dir):
    from nnprune.plan.jobspecs import toy_job
    from nnprune.plan.specs import ToySpec, from_values, read_spec

    _, module = plugin_dir
    config = {**SMOKE, "toy": {**SMOKE["toy"], "criteria": ["nuclear", f"g={module}:gamma"]}}
    values = read_spec(toy_job(config, "moons"))
    assert values["criteria"] == ["nuclear", f"g={module}:gamma"] and list(values["sources"]) == ["g"]
    assert from_values(ToySpec, {**values, "out": "x"}).criteria[1] == f"g={module}:gamma"
    assert "sources" not in read_spec(toy_job(SMOKE, "moons"))
