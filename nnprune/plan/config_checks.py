"""The checks of a config's meaning that a JSON schema cannot express: pruning levels that fit
each architecture, sizes that fit the dataset, budgets and sweeps that name settings of the study,
a focus among its criteria. Each takes a config that passed `config_schema.check_schema` and
raises a UserError that names the key, the bad value and the allowed values; the checks that read
the study's criteria or architectures take them as `References`, found once by the caller.
`studyconfig.check` runs them all, once each."""
from __future__ import annotations

from typing import Any

from nnprune.errors import UserError
from nnprune.plan.references import References, reads_of, study_archs, study_criteria


def check_pruning(config: dict[str, Any], references: References | None = None) -> None:
    """Every pruning string parses for each architecture (an outside model takes no rates: or
    preset: string, a rate string fits the model's prunable layers), and the grid and finetune
    name pruning levels and criteria of the study. `references`: the study's (found here if None)."""
    from nnprune.plan.schemes import parse_scheme

    archs = study_archs(config) if references is None else references.archs
    for arch, reference in archs.items():
        for text in config["pruning"]:
            if reference is not None and text.split(":")[0] in ("rates", "preset"):
                raise UserError(f"config key 'pruning': {text!r} is a per-layer rate string, but {arch} is a model "
                                "from outside nnprune (rates: and preset: are for the built-in models)",
                                "prune it with macs:<fraction>, uniform:<rate> or uniform-macs:<fraction>")
            scheme = parse_scheme(text, arch)
            if scheme.kind == "rates":
                _check_rates_length(arch, scheme)
    for key in ("main_pruning",):
        value = config.get("grid", {}).get(key)
        if value is not None and value not in config["pruning"]:
            raise UserError(f"config key 'grid.{key}': {value!r} is not one of the pruning levels",
                            f"use one of: {', '.join(config['pruning'])}")
    names = list(study_criteria(config) if references is None else references.criteria)
    for value in config.get("grid", {}).get("prune_criteria", []):
        if value not in names:
            raise UserError(f"config key 'grid.prune_criteria': {value!r} is not one of the criteria",
                            f"use criteria from: {', '.join(names)}")
    for value in config.get("grid", {}).get("noise_pruning", []):
        if value not in config["pruning"]:
            raise UserError(f"config key 'grid.noise_pruning': {value!r} is not one of the pruning levels",
                            f"use one of: {', '.join(config['pruning'])}")
    for value in config["finetune"].get("pruning", []):
        if value not in config["pruning"]:
            raise UserError(f"config key 'finetune.pruning': {value!r} is not one of the pruning levels",
                            f"use one of: {', '.join(config['pruning'])}")


def _check_rates_length(arch: str, scheme) -> None:
    """A rate string's length against the architecture's prunable layers (or rate units), from
    the torch-free table in nnprune.plan.schemes: parsing a config builds no model."""
    from nnprune.plan.schemes import PRUNABLE_LAYERS, RATE_UNIT_COUNTS, check_rates_count

    try:
        check_rates_count(len(scheme.value), PRUNABLE_LAYERS[arch], arch, RATE_UNIT_COUNTS.get(arch))
    except UserError as error:
        raise UserError(f"config key 'pruning', architecture {arch}: {error.problem}", error.fix) from None


def check_budgets(config: dict[str, Any]) -> None:
    """finetune.budgets: each one well formed (count >= 1, unit e or b), none repeated, and not
    set beside finetune.epochs / batches_per_epoch (nnprune.plan.budgets)."""
    from nnprune.plan.budgets import study_budgets

    try:
        study_budgets(config.get("finetune") or {})
    except UserError as error:
        raise UserError(f"config key 'finetune.budgets': {error.problem}", error.fix) from None


def check_sweeps(config: dict[str, Any], references: References | None = None) -> None:
    """The readings that fine-tune more than the main runs: grid.score_sweep_criteria (data-driven
    criteria of grid.prune_criteria, for the data-size claim's accuracy reading) and
    finetune.noisy_baselines / noisy_budgets (a noisy level to fine-tune, budgets of the study)."""
    from nnprune.plan.budgets import parse_budget, study_budgets
    from nnprune.plan.names import DATA_DRIVEN_SOURCES

    grid, section = config.get("grid", {}), config.get("finetune") or {}
    criteria = study_criteria(config) if references is None else references.criteria
    pruned = grid.get("prune_criteria", list(criteria))
    for name in grid.get("score_sweep_criteria", []):
        if name not in pruned:
            raise UserError(f"config key 'grid.score_sweep_criteria': {name!r} is not one of the pruned criteria "
                            f"(grid.prune_criteria: {', '.join(pruned)})",
                            "list criteria that are pruned, or add it to grid.prune_criteria")
        if reads_of(name, criteria) not in DATA_DRIVEN_SOURCES:
            raise UserError(f"config key 'grid.score_sweep_criteria': {name!r} is data-free (it reads "
                            f"{reads_of(name, criteria)}): its scores do not depend on score_images, so a "
                            "data-size accuracy point has nothing to compare",
                            "list data-driven criteria only: "
                            + ", ".join(c for c in pruned if reads_of(c, criteria) in DATA_DRIVEN_SOURCES))
    if "score_sweep_criteria" in grid and not set(grid.get("score_sweep", config["score_images"])) - {
            grid.get("main_score_images", max(config["score_images"]))}:
        raise UserError("config key 'grid.score_sweep_criteria' is set, but grid.score_sweep names no scoring size "
                        "besides the main one, so nothing is pruned from fewer images",
                        f"add sizes from score_images {config['score_images']} to grid.score_sweep")
    levels = config.get("label_noise", [])
    noisy = any(level > min(levels) for level in levels) if levels else False
    if section.get("noisy_baselines") is True and not noisy:
        raise UserError(f"config key 'finetune.noisy_baselines': true, but label_noise {levels} has no noisy "
                        "level (above the main one), so there is no noisy baseline to fine-tune",
                        "add a noisy level to label_noise (e.g. [0.0, 0.4]) or remove finetune.noisy_baselines")
    if "noisy_budgets" in section:
        if section.get("noisy_baselines") is False:
            raise UserError("config key 'finetune.noisy_budgets' is set, but finetune.noisy_baselines is false",
                            "set finetune.noisy_baselines: true, or remove finetune.noisy_budgets")
        study = [budget.text for budget in study_budgets(section)]
        for value in section["noisy_budgets"]:
            try:
                text = parse_budget(value).text
            except UserError as error:
                raise UserError(f"config key 'finetune.noisy_budgets': {error.problem}", error.fix) from None
            if text not in study:
                raise UserError(f"config key 'finetune.noisy_budgets': {value!r} is not one of the fine-tuning "
                                f"budgets ({', '.join(study)})", f"use budgets from: {', '.join(study)}")


def check_sizes(config: dict[str, Any]) -> None:
    """grid.main_score_images and grid.score_sweep are sizes of score_images, and no scoring size
    exceeds the smallest train_size (scoring data comes from the training set)."""
    grid = config.get("grid", {})
    main_si = grid.get("main_score_images")
    if main_si is not None and main_si not in config["score_images"]:
        raise UserError(f"config key 'grid.main_score_images': {main_si} is not in score_images",
                        f"use one of: {config['score_images']}")
    unknown = sorted(set(grid.get("score_sweep", [])) - set(config["score_images"]))
    if unknown:
        raise UserError(f"config key 'grid.score_sweep': {unknown} not in score_images",
                        f"use values from: {config['score_images']}")
    sizes = [s for s in [*config["train_size"], grid.get("noise_train_size")] if s is not None]
    if sizes and max(config["score_images"]) > min(sizes):
        raise UserError(f"config key 'score_images': {max(config['score_images'])} is larger than "
                        f"the smallest train_size {min(sizes)}",
                        "score with at most train_size images (scoring data comes from the training set)")


def check_test_size(config: dict[str, Any]) -> None:
    """test_size fits the dataset's test set (`names.DATASET_TEST_IMAGES`, from the dataset's spec in
    nnprune.data), and is not set for imagenet (its val/ folder is always evaluated whole)."""
    from nnprune.plan.names import DATASET_TEST_IMAGES

    test_size, dataset = config.get("test_size"), config["dataset"]
    if test_size is None:
        return
    if dataset not in DATASET_TEST_IMAGES:
        raise UserError(f"config key 'test_size': {test_size} is set, but {dataset} has no fixed test set to "
                        "draw a subset from (its val/ folder is evaluated whole)", "remove test_size")
    largest = DATASET_TEST_IMAGES[dataset]
    if test_size > largest:
        raise UserError(f"config key 'test_size': {test_size} is larger than the test set of {dataset} "
                        f"({largest:,} images)",
                        f"set test_size to at most {largest}, or remove it to use the whole test set")


def check_train(config: dict[str, Any]) -> None:
    """The baselines train for at least one epoch: with 0 the study would score and prune untrained
    networks. (The schema's optimisation block allows 0 because finetune shares it; a fine-tune of 0
    epochs is a budget of 0, which nnprune.plan.budgets rejects.)"""
    sections = {"train": config.get("train") or {}, "grid.noise_train": (config.get("grid") or {}).get("noise_train")}
    for key, section in sections.items():
        if section and section.get("epochs") == 0:
            raise UserError(f"config key '{key}.epochs': 0 trains the baselines for no epochs, so the study "
                            "would score and prune untrained networks", f"set {key}.epochs to 1 or more")




def check_focus(config: dict[str, Any], references: References | None = None) -> None:
    """claims.focus (default the paper's criterion) is one of the study's criteria."""
    from nnprune.plan.names import DEFAULT_FOCUS

    focus = (config.get("claims") or {}).get("focus", DEFAULT_FOCUS)
    names = list(study_criteria(config) if references is None else references.criteria)
    if focus not in names:
        given = "claims" in config and "focus" in (config.get("claims") or {})
        raise UserError(f"config key 'claims.focus': {focus!r}{'' if given else ' (the default)'} is not one of "
                        "the study's criteria", f"set claims.focus to one of: {', '.join(names)}, or add "
                        f"{focus} to criteria")


