"""One source of truth: the step specs (nnprune/plan/specs.py), the command line and the config schema
agree on names, defaults and choices; the CLI maps flags and --spec JSON onto the specs; each
workflow job's spec keeps lists as lists; run paths come from nnprune/plan/paths.py."""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from nnprune.errors import UserError
from nnprune.plan import jobspecs, paths
from nnprune.plan.specs import STEP_SPECS, TrainConfig, default_of, field_type, from_values
from nnprune.plan.studyconfig import SCHEMA as SCHEMA_FILE
from nnprune.plan.studyconfig import load_schema

SCHEMA = load_schema()
CONFIGS = ["config", "smoke", "paper-cifar10", "paper-imagenet", "gpu-fmnist"]


def step_parsers() -> dict[str, argparse.ArgumentParser]:
    from nnprune.pipeline.cli import build_parser

    return next(a for a in build_parser()._actions if a.dest == "command").choices


def spec_field(cls: type, name: str):
    return next(f for f in fields(cls) if f.name == name)




# ---------------------------------------------------------------- CLI = dataclasses
@pytest.mark.parametrize("command", list(STEP_SPECS))
def test_cli_options_are_the_spec_fields_with_their_defaults_and_choices(command):
    cls = STEP_SPECS[command]
    actions = {a.dest: a for a in step_parsers()[command]._actions if a.dest not in ("help", "spec")}
    assert set(actions) == {f.name for f in fields(cls)}
    for spec_field_ in fields(cls):
        action, default = actions[spec_field_.name], default_of(spec_field_)
        assert action.default == (argparse.SUPPRESS if default is MISSING else default), spec_field_.name
        kind, is_list, _ = field_type(cls, spec_field_.name)
        if not is_list and kind not in (bool, dict):     # lists and mappings are read after parsing
            assert action.choices == spec_field_.metadata["choices"], spec_field_.name
            assert action.type is kind, spec_field_.name


def test_finetune_has_its_own_optimisation_defaults_and_train_those_of_train_config():
    parsers = step_parsers()
    defaults = {c: {a.dest: a.default for a in parsers[c]._actions} for c in ("train", "finetune")}
    assert (defaults["train"]["epochs"], defaults["train"]["lr"]) == (TrainConfig.epochs, TrainConfig.lr) == (10, 0.1)
    assert (defaults["finetune"]["epochs"], defaults["finetune"]["lr"]) == (5, 0.01)
    for name in ("batch_size", "momentum", "weight_decay", "schedule", "augment", "amp_dtype", "compile"):
        assert defaults["train"][name] == defaults["finetune"][name] == getattr(TrainConfig, name), name


# ---------------------------------------------------------------- schema = dataclasses
def test_schema_scalar_keys_agree_with_their_spec_fields():
    for key, (cls, name) in jobspecs.CONFIG_FIELDS.items():
        prop, spec_field_ = SCHEMA["properties"][key], spec_field(cls, name)
        if "default" in prop or key not in SCHEMA["required"]:     # a required key has no default to compare
            assert prop["default"] == default_of(spec_field_), key
        choices = spec_field_.metadata["choices"]
        assert (set(prop["enum"]) - {None} if "enum" in prop else None) == (set(choices) if choices else None), key


def _enum(schema: dict) -> list | None:
    """A schema's enum, or that of its first anyOf branch (criteria and archs: the built-in names,
    then the forms of an outside one)."""
    return schema.get("enum") or (schema.get("anyOf") or [{}])[0].get("enum")


def test_schema_axes_allow_exactly_the_spec_choices():
    for key, (cls, name) in jobspecs.AXES.items():
        prop = SCHEMA["properties"][key]
        forms = prop.get("oneOf", [prop])    # noise_kind: one name or a list of names
        enums = [_enum(form.get("propertyNames", {})) or _enum(form.get("items", {})) or form.get("enum")
                 for form in forms]
        assert all(enum == enums[0] for enum in enums), (key, enums)
        enum = enums[0]
        if "default" in prop:
            assert prop["default"] == default_of(spec_field(cls, name)), key
        choices = spec_field(cls, name).metadata["choices"]
        assert (set(enum) if enum else None) == (set(choices) if choices else None), key


@pytest.mark.parametrize("section", list(jobspecs.SECTIONS))
def test_schema_sections_name_spec_fields_with_the_same_choices(section):
    cls = jobspecs.SECTIONS[section]
    schema = SCHEMA["properties"][section]
    properties = {**SCHEMA["$defs"]["optimisation"]["properties"], **schema.get("properties", {})} \
        if section != "toy" else schema["properties"]
    # `pruning` of the shared optimisation block is finetune's (the schema forbids it under train)
    # finetune's job selectors sit in the shared optimisation block (the schema forbids them under train)
    settings = set(properties) - set(jobspecs.NOT_SETTINGS.get(section, ())) - set(jobspecs.NOT_SETTINGS["finetune"])
    names = {f.name for f in fields(cls)}
    assert settings <= names, settings - names
    if section != "toy":
        assert settings == {f.name for f in fields(TrainConfig)}      # the optimisation block, whole
    for key in settings:
        prop = properties[key]
        enum = prop.get("enum") or _enum(prop.get("items", {}))
        choices = spec_field(cls, key).metadata["choices"]
        assert (set(enum) if enum else None) == (set(choices) if choices else None), (section, key)
        if "default" in prop:
            assert prop["default"] == default_of(spec_field(cls, key)), (section, key)
    datasets = schema["properties"]["datasets"]["items"]["enum"] if section == "toy" else None
    if datasets:
        assert set(datasets) == set(spec_field(cls, "dataset").metadata["choices"])


# ---------------------------------------------------------------- the CLI maps onto specs
def parse(argv: list[str]):
    from nnprune.pipeline.cli import build_parser, spec_from_args

    return spec_from_args(build_parser().parse_args(argv), argv)


def test_flags_lists_and_spec_json_resolve_to_one_spec(tmp_path):
    spec = parse(["score", "--model", "m.pt", "--criterion", "nuclear,l1", "taylor", "--score-images", "32,128",
                  "2048", "--out", "o"])
    assert spec.criteria == ["nuclear", "l1", "taylor"] and spec.score_images == [32, 128, 2048]
    assert spec.batch_size == 128 and spec.feature_point is None
    (tmp_path / "spec.json").write_text(json.dumps({"criteria": ["hrank"], "score_images": [64, 512],
                                                    "batch_size": 64, "seed": 2}))
    from_file = parse(["score", "--spec", str(tmp_path / "spec.json"), "--model", "m.pt", "--seed", "5",
                       "--out", "o"])
    assert (from_file.criteria, from_file.score_images, from_file.batch_size) == (["hrank"], [64, 512], 64)
    assert from_file.seed == 5                                           # a flag beats the spec
    inline = parse(["train", "--spec", '{"arch": "vgg16", "epochs": 6, "amp": true, "train_size": null}',
                    "--epochs", "10", "--no-amp", "--out", "o"])
    assert (inline.arch, inline.epochs, inline.amp, inline.train_size, inline.lr) == ("vgg16", 10, False, None, 0.1)


@pytest.mark.parametrize("argv, problem", [
    (["train", "--spec", '{"arch": "resnet20", "epoch": 3}', "--out", "o"], "unknown setting(s) epoch"),
    (["train", "--spec", '{"arch": "resnet20", "epochs": "3"}', "--out", "o"], "epochs = '3' is not a int"),
    (["train", "--spec", '{"arch": "resnet21"}', "--out", "o"], "arch 'resnet21' is not one of"),
    (["train", "--arch", "resnet20"], "missing required setting(s): --out"),
    (["score", "--model", "m", "--criterion", "nuclear,l3", "--out", "o"], "criteria 'l3' is not one of"),
    (["score", "--model", "m", "--criterion", "l1", "--score-images", "32,x", "--out", "o"], "not a list of int"),
])
def test_bad_settings_raise_one_user_error(argv, problem):
    with pytest.raises(UserError) as error:
        parse(argv)
    assert problem in error.value.problem


# ---------------------------------------------------------------- each workflow job's spec
def study_config(name: str) -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    validate(config, str(SCHEMA_FILE))   # fills in the defaults
    return config


@pytest.mark.parametrize("name", CONFIGS)
def test_every_job_spec_of_a_study_is_a_valid_spec_with_lists_kept(name):
    from nnprune.plan.specs import FinetuneSpec, PruneSpec, ScoreSpec, ToySpec, TrainSpec

    config = study_config(name)
    arch, options = next(iter(config["archs"].items()))
    baseline = {"arch": arch, "train_size": config["train_size"][0], "label_noise": config["label_noise"][-1],
                "seed": config["seeds"][-1], **(options or {})}
    io = {"out": "o"}
    train = from_values(TrainSpec, {**json.loads(jobspecs.train_job(config, baseline)), **io})
    assert (train.arch, train.label_noise, train.seed, train.latency) == \
        (arch, baseline["label_noise"], baseline["seed"], config["latency"])
    assert train.epochs == config["train"].get("epochs", TrainConfig.epochs)
    assert train.width == (options or {}).get("width", 1.0)
    score = from_values(ScoreSpec, {**json.loads(jobspecs.score_job(config, 3, config["criteria"],
                                                                    config["score_images"])), "model": "m", **io})
    assert score.score_images == config["score_images"] and all(type(n) is int for n in score.score_images)
    assert score.criteria == config["criteria"] and score.batch_size == config["score_batch_size"]
    prune = from_values(PruneSpec, {**json.loads(jobspecs.prune_job(config, config["pruning"][-1], 3)),
                                    "model": "m", "scores": "s", **io})
    assert (prune.pruning, prune.bn_recalibration, prune.seed) == (config["pruning"][-1], config["bn_recalibration"], 3)
    from nnprune.plan.budgets import study_budgets

    for budget in study_budgets(config["finetune"]):   # each budget sets the fine-tune's own schedule
        finetune = from_values(FinetuneSpec, {**json.loads(jobspecs.finetune_job(config, 3, budget.text)),
                                              "model": "m", **io})
        assert finetune.budget == budget.text
        assert (finetune.epochs, finetune.batches_per_epoch) == (
            (budget.count, None) if budget.unit == "epochs" else (1, budget.count))
        assert finetune.lr == config["finetune"].get("lr", 0.01)
    toy = from_values(ToySpec, {**json.loads(jobspecs.toy_job(config, "spiral")), **io})
    for key, value in config["toy"].items():
        if key not in jobspecs.NOT_SETTINGS["toy"]:
            assert getattr(toy, key) == value, key       # fractions and input_noise: lists of floats


# ---------------------------------------------------------------- run paths
def test_paths_reproduce_the_committed_default_study_layout():
    """Every committed run of results/default sits where nnprune.plan.paths puts a run with the
    parameters its metrics.json records."""
    from nnprune.plan.schemes import scheme_slug

    study = REPO / "results" / "default"
    pruned = sorted(study.glob("runs/*/*/*/pruned/metrics.json"))
    # runs.csv has one row per run and fine-tuning budget; each pruned run appears in it
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    grid = config["grid"]          # clean baselines at every pruning level, noisy ones at grid.noise_pruning,
    #                                the score_images sweep's criteria from grid.score_sweep images
    planned = (len(config["seeds"]) * len(grid["prune_criteria"]) * len(config["pruning"])
               + len(config["seeds"]) * len(grid["score_sweep_criteria"]) * len(grid["score_sweep"])
               + len(config["noise_kind"]) * len(grid["noise_seeds"]) * len(grid["prune_criteria"])
               * len(grid["noise_pruning"]))
    assert len(pruned) == len({row["pruned_metrics"] for row in csv.DictReader((study / "runs.csv").open())}) \
        == planned == 85
    for path in pruned:
        record = json.loads(path.read_text())
        config, data = record["config"], record["config"]["data"]
        base = paths.baseline_id(data["dataset"], config["arch"], data["train_size"], data["label_noise"], data["seed"],
                                 data["noise_kind"])
        run = paths.run_dir("results/default", base, record["results"]["criterion"],
                            record["results"]["score_images"], scheme_slug(config["pruning"]))
        assert Path(REPO / run / paths.PRUNED / "metrics.json") == path
        score_dir = paths.score_dir("results/default", base, record["results"]["criterion"],
                                    record["results"]["score_images"])
        assert config["scores"] == f"{score_dir}/scores.pt"
        assert config["model"] == f"{paths.baseline_dir('results/default', base)}/model.pt"


def test_stability_reads_the_baseline_from_metrics_json_not_the_path(tmp_path):
    import torch

    from nnprune.analysis.aggregate import score_stability
    from nnprune.files import save_torch, write_json
    from nnprune.pruning.score_file import score_record

    files = []
    for size, scores in ((32, [3.0, 1.0, 2.0, 0.0]), (256, [3.0, 2.0, 1.0, 0.0])):
        folder = tmp_path / "scores" / "a-misleading__ln0.9__s7" / f"nuclear-{size}"   # a name that says nothing true
        save_torch(folder / "scores.pt", score_record("resnet20", "nuclear", ["conv1"],
                                                      {"conv1": torch.tensor(scores)}, size, None))
        write_json(folder / "metrics.json", {"config": {"arch": "resnet20", "data": {
            "dataset": "fashion-mnist", "train_size": 3000, "label_noise": 0.2, "seed": 1}}})
        files.append(folder / "scores.pt")
    frame = score_stability(files)
    assert set(frame.baseline) == {"fashion-mnist__resnet20__n3000__ln0.2__s1"}
    assert frame.label_noise.tolist() == [0.2, 0.2] and frame.seed.tolist() == [1, 1]
    assert frame.spearman.round(3).tolist() == [0.8, 1.0]
