"""Checks of a study config that a JSON schema cannot express, with messages that name the key,
the bad value and the allowed values. Called by workflow/rules/common.smk before any job runs,
right after `snakemake.utils.validate` has applied the schema (`SCHEMA`)."""
from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nnprune.errors import UserError

if TYPE_CHECKING:       # importlib.resources.abc is Python 3.11+; the annotations are strings
    from importlib.resources.abc import Traversable

# The config schema ships inside the package (package data, pyproject.toml), so that an installed
# wheel checks configs as the checkout does: nnprune/plan/schemas/config.schema.yaml.
SCHEMA: Traversable = files("nnprune.plan") / "schemas" / "config.schema.yaml"


def load_schema(resource: Traversable = SCHEMA) -> dict:
    """The config schema as a dict (its defaults are applied by `snakemake.utils.validate`)."""
    return yaml.safe_load(resource.read_text(encoding="utf-8"))


def main_label_noise(levels: Iterable[float]) -> float:
    """The main label-noise level of a study: the lowest of its `label_noise` levels (the
    cleanest data, usually 0.0), wherever it stands in the list. The sparse grid's pruning-level
    and score_images sweeps run at it, and the tables and claims use it as the reference."""
    return float(min(levels))


def check_keys(config: dict[str, Any], schema: dict | None = None) -> None:
    """Unknown top-level keys, then settings of the wrong type or missing (so that a string
    given for a list is named as such, not read letter by letter), then unknown criteria and
    architectures, each named with the allowed ones."""
    from nnprune.plan.names import ARCHITECTURES, CRITERION_SOURCES

    schema = schema or load_schema()
    if not isinstance(config, dict) or not config:
        raise UserError("the config is empty" if not config else
                        f"the config is {_kind(config)}, not a mapping of settings",
                        "start from config/config.yaml, which sets every required key")
    allowed = sorted(schema["properties"])
    for key in config:
        if key not in schema["properties"]:
            raise UserError(f"config key {key!r} is not a known setting",
                            f"remove it or use one of: {', '.join(allowed)}")
    structural = [e for e in _schema_errors(config, schema) if e.validator in ("type", "required")]
    if structural:
        raise schema_error(structural[0])
    for name in config.get("criteria", []):
        if name not in CRITERION_SOURCES and not _outside_form(name, "criterion"):
            raise UserError(f"config key 'criteria': unknown criterion {name!r}",
                            f"use criteria from: {', '.join(CRITERION_SOURCES)}, or package.module:function")
    for name in config.get("archs", {}) or {}:
        if name not in ARCHITECTURES and not _outside_form(name, "model"):
            raise UserError(f"config key 'archs': unknown architecture {name!r}",
                            f"use architectures from: {', '.join(sorted(ARCHITECTURES))}, or package.module:function")
    study_criteria(config)          # outside ones: found without running them (nnprune.plan.plugins)
    toy_criteria(config)
    study_archs(config)


def _outside_form(entry: str, kind: str) -> bool:
    from nnprune.plan import plugins

    return plugins.is_reference(entry) or plugins.entry_point(kind, entry) is not None


def _reference(entry: str, kind: str, key: str):
    from nnprune.plan import plugins

    return plugins.resolve(entry, kind, key)


def outside(entries: Iterable[str], kind: str, key: str) -> dict:
    """Short name -> `plugins.Reference` (None for a built-in) of config key `key`'s `entries`
    ("criterion" or "model" kind). Raises a UserError when an outside one cannot be found, is not
    a function, shares a short name with another entry, or takes a built-in's name."""
    from nnprune.plan.names import ARCHITECTURES, CRITERION_SOURCES

    builtin = CRITERION_SOURCES if kind == "criterion" else ARCHITECTURES
    found: dict = {}
    written: dict[str, str] = {}        # short name -> the entry as the config writes it
    for entry in entries:
        reference = None if entry in builtin else _reference(entry, kind, key)
        name = entry if reference is None else reference.name
        if reference is not None and name in builtin:
            raise UserError(f"config key {key!r}: {entry!r} takes the name of the built-in {kind} {name!r}",
                            f"give it another short name: other_name={reference.target}")
        if name in found and written[name] == entry:
            # the same entry twice (a built-in, say): renaming one would run the same jobs twice
            raise UserError(f"config key {key!r}: {entry!r} is listed twice", "remove the repeated entry")
        if name in found:
            raise UserError(f"config key {key!r}: two entries have the short name {name!r}",
                            "give one of them another name: short_name=package.module:function")
        found[name], written[name] = reference, entry
    return found


def study_criteria(config: dict[str, Any]) -> dict:
    """The study's criteria: short name -> Reference of an outside one (None: built-in)."""
    return outside(config.get("criteria", []), "criterion", "criteria")


def toy_criteria(config: dict[str, Any]) -> dict:
    """The toy study's criteria (toy.criteria; none given: the built-in ones that score MLP units),
    as `study_criteria`. A criterion that needs spatial maps (chip) is refused: the toy MLP's units
    have 1 x 1 maps."""
    from nnprune.plan.names import SPATIAL_CRITERIA, TOY_CRITERIA

    entries = (config.get("toy") or {}).get("criteria", list(TOY_CRITERIA))
    for name in entries:
        if name in SPATIAL_CRITERIA:
            raise UserError(f"config key 'toy.criteria': {name!r} needs feature maps of more than one position "
                            "(H x W > 1); the toy study's MLP units have 1 x 1 maps",
                            f"remove {name!r} from toy.criteria; use it in criteria: on a convolutional network")
    return outside(entries, "criterion", "toy.criteria")


def study_archs(config: dict[str, Any]) -> dict:
    """The study's architectures (archs keys): short name -> Reference of an outside one (None: built-in)."""
    return outside(config.get("archs", {}) or {}, "model", "archs")


def entry_of(name: str, references: dict) -> str:
    """What a job receives for short name `name`: a built-in name, or short=module:function."""
    return name if references[name] is None else references[name].entry


def reads_of(name: str, references: dict) -> str:
    """What criterion `name` reads (weights, features, gradients, seed), built-in or outside."""
    from nnprune.plan.names import CRITERION_SOURCES

    return CRITERION_SOURCES[name] if references[name] is None else references[name].reads


def sources_of(names: Iterable[str], references: dict) -> dict[str, str]:
    """{short name: file SHA-256} of the outside ones among `names` (a job spec's `sources`)."""
    return {name: references[name].sha256 for name in names if references[name] is not None}


def check_focus(config: dict[str, Any]) -> None:
    """claims.focus (default the paper's criterion) is one of the study's criteria."""
    from nnprune.plan.names import DEFAULT_FOCUS

    focus = (config.get("claims") or {}).get("focus", DEFAULT_FOCUS)
    names = list(study_criteria(config))
    if focus not in names:
        given = "claims" in config and "focus" in (config.get("claims") or {})
        raise UserError(f"config key 'claims.focus': {focus!r}{'' if given else ' (the default)'} is not one of "
                        "the study's criteria", f"set claims.focus to one of: {', '.join(names)}, or add "
                        f"{focus} to criteria")


def check_schema(config: dict[str, Any], schema: dict | None = None) -> None:
    """The config against the schema (`SCHEMA`; defaults are not set here), with
    nnprune's own messages: `check_keys`, then the pruning strings as nnprune.plan.schemes parses
    them, then any other schema rule. Raises a UserError naming the key, the value and the
    allowed form, never the schema's regex."""
    schema = schema or load_schema()
    check_keys(config, schema)
    check_pruning(config)
    errors = _schema_errors(config, schema)
    if errors:
        raise schema_error(errors[0])


def _schema_errors(config: dict[str, Any], schema: dict) -> list:
    """jsonschema's errors for `config`, in the order of their key paths."""
    from jsonschema import Draft202012Validator

    return sorted(Draft202012Validator(schema).iter_errors(config),
                  key=lambda error: [str(part) for part in error.absolute_path])


_KINDS = {bool: "true/false", int: "a whole number", float: "a number", str: "a string",
          list: "a list", dict: "a mapping", type(None): "empty"}
_TYPES = {"integer": "a whole number", "number": "a number", "string": "a string",
          "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null"}
_BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A value as a user wrote it in YAML (a string quoted), cut to 60 characters."""
    text = repr(value) if isinstance(value, str) else \
        yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def allowed_form(schema: dict) -> str:
    """What a schema allows, in words: its enum, its types with their bounds, a list's items, or
    for a pattern the schema's description (a regex is no help to a user)."""
    if "enum" in schema:
        return "one of: " + ", ".join("null" if value is None else str(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(allowed_form(branch) for branch in schema[key])
    if "pattern" in schema or "type" not in schema:
        return schema.get("description", "a value of the form that config/config.yaml shows")
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    words = " or ".join(_TYPES[name] for name in types)
    bounds = [f"{sign} {schema[key]:g}" for key, sign in _BOUNDS if key in schema]
    if bounds:
        words += " " + " and ".join(bounds)
    if "array" in types:
        if schema.get("minItems"):
            words += f" of at least {_items(schema['minItems'])}"
        if "items" in schema:
            words += f", each {allowed_form(schema['items'])}"
        if schema.get("uniqueItems"):
            words += ", none repeated"
    return words


def _items(count: int) -> str:
    return f"{count} item" + ("s" if count > 1 else "")


def _list_example(key: str, schema: dict, value: Any) -> str:
    """"; e.g. criteria: [nuclear]" for a list setting: its items' first allowed value (or an
    example of their type); "; e.g. archs: {resnet20: {}}" for a mapping of names; else ""."""
    if schema.get("type") == "object" and "propertyNames" in schema and isinstance(value, str):
        return f"; e.g. {key.split('.')[-1]}: {{{value}: {{}}}}"
    if schema.get("type") != "array":
        return ""
    items = schema.get("items", {})
    items = items["anyOf"][0] if "anyOf" in items else items     # criteria: the built-in names first
    example = items["enum"][0] if "enum" in items else {"integer": 1, "number": 0.5}.get(items.get("type"), "...")
    return f"; e.g. {key.split('.')[-1]}: [{example}]"


def schema_error(error) -> UserError:
    """A jsonschema ValidationError as one UserError: the key path, the value, what is allowed."""
    key = ".".join(str(part) for part in error.absolute_path if isinstance(part, str)) or "(top level)"
    value, rule, schema = error.instance, error.validator, error.schema
    if rule == "type":
        return UserError(f"config key {key!r}: {_shown(value)} is {_kind(value)}, but it must be "
                         f"{allowed_form({'type': error.validator_value})}",
                         f"write {allowed_form(schema)}{_list_example(key, schema, value)}")
    if rule == "required":
        missing = [name for name in error.validator_value if name not in value]
        where = "" if key == "(top level)" else f"{key}."
        keys = ", ".join(repr(where + name) for name in missing)
        return UserError(f"config key {keys} is missing" if len(missing) == 1 else f"config keys {keys} are missing",
                         f"add {'it' if len(missing) == 1 else 'them'}; config/config.yaml shows every setting")
    if rule == "additionalProperties":
        unknown = sorted(set(value) - set(schema.get("properties", {})))
        return UserError(f"config key {key + '.' + unknown[0]!r} is not a known setting",
                         f"remove it or use one of: {', '.join(sorted(schema.get('properties', {})))}")
    if rule == "not":
        names = error.validator_value.get("required", [])
        return UserError(f"config key {key + '.' + ''.join(names[:1])!r} does not belong under {key}",
                         "remove it (it is a finetune setting)")
    if rule == "uniqueItems":
        repeated = sorted({_shown(item) for item in value if value.count(item) > 1})
        return UserError(f"config key {key!r}: {_shown(value)} repeats {', '.join(repeated)}",
                         "give each value once (a repeat would run the same jobs twice)")
    if rule in ("minItems", "minProperties"):
        return UserError(f"config key {key!r} is empty", f"give at least {_items(error.validator_value)}")
    if rule == "pattern" and key.endswith("pruning"):
        from nnprune.plan.schemes import parse_scheme

        try:
            parse_scheme(value)
        except UserError as parsed:
            return UserError(f"config key {key!r}: {parsed.problem}", parsed.fix)
    problem = "is out of range" if rule in dict(_BOUNDS) else "is not allowed"
    return UserError(f"config key {key!r}: {_shown(value)} {problem}", f"use {allowed_form(schema)}")


def check_config_file(path: str | Path, require_data: bool = False) -> str:
    """Check a config file as the workflow would (YAML syntax with its line and column, then
    `check_schema` and `check`; the dataset under data_root, relative to the working directory, only
    with `require_data`); returns the study name. Snakemake reads a --configfile before the
    workflow's own checks run, and names no line for a YAML error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist", "give the path of a YAML config, e.g. config/smoke.yaml")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({error.problem or error.context})",
                        "correct the YAML there (indent with spaces; close every [ and {)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})", "correct the YAML") from None
    if not config:
        raise UserError(f"config file {path} is empty", "start from config/config.yaml, which sets every required key")
    check_schema(config)
    check(config, require_data=require_data)
    return config["study"]


def check_pruning(config: dict[str, Any]) -> None:
    """Every pruning string parses, and per-layer rate strings fit each architecture."""
    from nnprune.plan.schemes import parse_scheme

    for arch, reference in study_archs(config).items():
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
    names = list(study_criteria(config))
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


def check_sweeps(config: dict[str, Any]) -> None:
    """The readings that fine-tune more than the main runs: grid.score_sweep_criteria (data-driven
    criteria of grid.prune_criteria, for the data-size claim's accuracy reading) and
    finetune.noisy_baselines / noisy_budgets (a noisy level to fine-tune, budgets of the study)."""
    from nnprune.plan.budgets import parse_budget, study_budgets
    from nnprune.plan.names import DATA_DRIVEN_SOURCES

    grid, section = config.get("grid", {}), config.get("finetune") or {}
    references = study_criteria(config)
    pruned = grid.get("prune_criteria", list(references))
    for name in grid.get("score_sweep_criteria", []):
        if name not in pruned:
            raise UserError(f"config key 'grid.score_sweep_criteria': {name!r} is not one of the pruned criteria "
                            f"(grid.prune_criteria: {', '.join(pruned)})",
                            "list criteria that are pruned, or add it to grid.prune_criteria")
        if reads_of(name, references) not in DATA_DRIVEN_SOURCES:
            raise UserError(f"config key 'grid.score_sweep_criteria': {name!r} is data-free (it reads "
                            f"{reads_of(name, references)}): its scores do not depend on score_images, so a "
                            "data-size accuracy point has nothing to compare",
                            "list data-driven criteria only: "
                            + ", ".join(c for c in pruned if reads_of(c, references) in DATA_DRIVEN_SOURCES))
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


def dataset_missing(config: dict[str, Any], workdir: Path = Path(".")) -> str | None:
    """None when the dataset is readable under data_root, else what is missing."""
    from nnprune.plan.names import DATASET_FILES

    root = workdir / config.get("data_root", "data")
    name = config["dataset"]
    needed = [root / "train", root / "val"] if name == "imagenet" else [root / DATASET_FILES[name]]
    missing = [str(p) for p in needed if not p.exists()]
    return ", ".join(missing) or None


def check(config: dict[str, Any], require_data: bool = True) -> None:
    """All semantic checks; raises UserError naming the problem and the fix. `require_data`: also
    check that the dataset is on disk (`check_dataset`); the workflow's parse leaves it out, so that
    `snakemake -n` works on a machine without the data."""
    check_keys(config)
    check_sizes(config)
    check_test_size(config)
    check_train(config)
    check_pruning(config)
    check_budgets(config)
    check_sweeps(config)
    check_focus(config)
    if require_data:
        check_dataset(config)


def check_dataset(config: dict[str, Any], workdir: Path = Path(".")) -> None:
    """Raises UserError when data_root (relative to `workdir`, the run's working directory) does not
    exist or the study's dataset is not readable under it; the fix says how to fetch it."""
    name, data_root = config["dataset"], config.get("data_root", "data")
    root = workdir / data_root
    fetch = (f"put an ImageFolder root with train/ and val/ under {root}" if name == "imagenet" else
             f"run `nnprune fetch-data --dataset {name} --root {data_root}`")
    if not root.is_dir():
        raise UserError(f"config key 'data_root': the folder {root} does not exist",
                        f"{fetch}, or set data_root to the folder that holds the datasets")
    missing = dataset_missing(config, workdir)
    if missing:
        raise UserError(f"dataset {name} not found under data_root {root}: missing {missing}",
                        f"{fetch}, or set data_root to the folder that holds it")
