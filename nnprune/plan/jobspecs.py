"""The spec of each workflow job, from the study config: where each config key goes in the steps'
specs (`nnprune.plan.specs`).

workflow/rules/common.smk passes the result to `nnprune STEP --spec '<json>'`: a list in the config
(score_images, criteria, fractions) stays a JSON list of numbers or names on its way into the
step's dataclass, and no config value is turned into a flag string by hand. Paths (`--model`,
`--out`), `--threads` and `--deterministic` stay flags of the rule. Importable without torch.
"""
from __future__ import annotations

from typing import Any

from nnprune.plan.specs import (
    FinetuneSpec,
    PruneSpec,
    ScoreSpec,
    ScratchSpec,
    StudyScale,
    ToySpec,
    TrainSpec,
    default_of,
    spec_json,
)
from nnprune.plan.studyconfig import entry_of, sources_of, study_archs, study_criteria, toy_criteria

# Scalar study-config keys -> the spec field they set (the schema test holds the defaults and
# choices of each pair equal). Sections: `train` -> TrainSpec's TrainConfig fields, `finetune` ->
# FinetuneSpec's, `toy` -> ToySpec; axes (lists in the config): archs -> arch, seeds -> seed, ...
CONFIG_FIELDS: dict[str, tuple[type, str]] = {
    "dataset": (TrainSpec, "dataset"), "data_root": (TrainSpec, "data_root"),
    "val_size": (TrainSpec, "val_size"), "test_size": (TrainSpec, "test_size"),
    "device": (TrainSpec, "device"),
    "deterministic": (TrainSpec, "deterministic"), "feature_point": (ScoreSpec, "feature_point"),
    "score_batch_size": (ScoreSpec, "batch_size"), "latency": (PruneSpec, "latency"),
    "bn_recalibration": (PruneSpec, "bn_recalibration"),
}
AXES: dict[str, tuple[type, str]] = {
    "archs": (TrainSpec, "arch"), "train_size": (TrainSpec, "train_size"),
    "label_noise": (TrainSpec, "label_noise"), "noise_kind": (TrainSpec, "noise_kind"), "seeds": (TrainSpec, "seed"),
    "criteria": (ScoreSpec, "criteria"), "score_images": (ScoreSpec, "score_images"),
    "pruning": (PruneSpec, "pruning"),
}
SECTIONS: dict[str, type] = {"train": TrainSpec, "finetune": FinetuneSpec, "toy": ToySpec}
# keys that select jobs, not settings
NOT_SETTINGS = {"finetune": ("pruning", "noisy_baselines", "noisy_budgets", "budgets"), "toy": ("datasets", "enabled")}


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in (config.get(name) or {}).items() if k not in NOT_SETTINGS.get(name, ())}


def train_job(config: dict[str, Any], baseline: dict[str, Any]) -> str:
    """`train` of one baseline: {arch, train_size, label_noise, noise_kind, seed[, width][, recipe]}
    from the grid; `recipe` (a noisy baseline's grid.noise_train) overrides the train section."""
    values = {key: config[key] for key in ("dataset", "data_root", "val_size", "test_size", "device", "latency")}
    values.update({k: v for k, v in baseline.items() if k != "recipe"})
    values.update(_section(config, "train"))
    values.update(baseline.get("recipe") or {})
    return spec_json(TrainSpec, values)


def score_job(config: dict[str, Any], seed: int, criteria: list[str], score_images: list[int] | None,
              references: dict | None = None) -> str:
    """`score` of one baseline with `criteria` (short names) at `score_images` (None for data-free
    criteria). `references` (studyconfig.study_criteria): an outside criterion goes to the job as
    short=module:function, with its file's SHA-256 in `sources`, so a changed module reruns the job."""
    references = study_criteria(config) if references is None else references
    values = {"criteria": [entry_of(name, references) for name in criteria], "seed": seed, "device": config["device"],
              "batch_size": config["score_batch_size"], "feature_point": config["feature_point"]}
    if sources_of(criteria, references):
        values["sources"] = sources_of(criteria, references)
    if score_images is not None:
        values["score_images"] = list(score_images)
    return spec_json(ScoreSpec, values)


def noise_kinds(config: dict[str, Any]) -> list[str]:
    """The config's `noise_kind`, one name or a list, as a list."""
    kinds = config.get("noise_kind", "symmetric")
    return [kinds] if isinstance(kinds, str) else list(kinds)


def prune_job(config: dict[str, Any], pruning: str, seed: int) -> str:
    return spec_json(PruneSpec, {"pruning": pruning, "seed": seed, "device": config["device"],
                                 "latency": config["latency"], "bn_recalibration": config["bn_recalibration"]})


def finetune_job(config: dict[str, Any], seed: int, budget: str) -> str:
    """`finetune` of one pruned run for one budget (`budgets.Budget.text`): the budget sets the
    fine-tune's epochs and batches per epoch, so the section's own are left out."""
    section = {k: v for k, v in _section(config, "finetune").items() if k not in ("epochs", "batches_per_epoch")}
    return spec_json(FinetuneSpec, {**section, "budget": budget, "seed": seed, "device": config["device"]})


def toy_job(config: dict[str, Any], dataset: str) -> str:
    """`toy` of one toy dataset; always on the CPU (a few small MLPs). Outside criteria go as
    short=module:function with their files' SHA-256 in `sources` (as in `score_job`)."""
    values = {**_section(config, "toy"), "dataset": dataset, "device": "cpu"}
    if "criteria" in values:
        references = toy_criteria(config)
        values["criteria"] = [entry_of(name, references) for name in references]
        if sources_of(references, references):
            values["sources"] = sources_of(references, references)
    return spec_json(ToySpec, values)


def claims_scale(config: dict[str, Any]) -> str:
    """The StudyScale of `nnprune claims --scale`: what the study trains, fine-tunes and seeds,
    from the validated config (keys left out take the train and toy specs' defaults)."""
    from dataclasses import fields

    from nnprune.plan.budgets import study_budgets

    def default(cls: type, name: str) -> Any:
        return default_of(next(f for f in fields(cls) if f.name == name))

    toy, grid, train = config.get("toy") or {}, config.get("grid") or {}, config.get("train") or {}
    epochs = train.get("epochs", default(TrainSpec, "epochs"))
    noisy = any(level > min(config["label_noise"]) for level in config["label_noise"])
    values = {"dataset": config["dataset"], "archs": list(study_archs(config)),
              "widths": [float((options or {}).get("width", 1.0)) for options in config["archs"].values()],
              "train_sizes": list(config["train_size"]),
              "train_epochs": epochs, "seeds": list(config["seeds"]),
              "budgets": [budget.text for budget in study_budgets(config["finetune"])]}
    if noisy:
        values.update(noise_seeds=list(grid.get("noise_seeds", config["seeds"])),
                      noise_train_sizes=[grid["noise_train_size"]] if "noise_train_size" in grid else
                      list(config["train_size"]), noise_epochs=(grid.get("noise_train") or {}).get("epochs", epochs))
    if toy.get("enabled", True):
        values.update({f"toy_{name}": toy.get(name, default(ToySpec, name)) for name in ("width", "steps", "seeds")})
    return spec_json(StudyScale, values)


def scratch_job(config: dict[str, Any], seed: int, epochs: int) -> str:
    """`scratch` of one pruned run: its architecture re-initialised and trained with the baselines'
    recipe (the `train` section) for `epochs`, on the data its pruned model records."""
    return spec_json(ScratchSpec, {**_section(config, "train"), "epochs": epochs, "seed": seed,
                                   "device": config["device"]})
