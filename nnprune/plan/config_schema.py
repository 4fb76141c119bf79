"""The config schema (`SCHEMA`) and the form of a config: its keys, their types and the names it
uses, each error told in two lines that name the key, the bad value and the allowed form (never
the schema's regex). The workflow runs `check_schema` before `snakemake.utils.validate`, which
then only sets the schema's defaults."""
from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Any

import yaml

from nnprune.errors import UserError
from nnprune.plan.references import References, is_outside_form, study_references

if TYPE_CHECKING:       # importlib.resources.abc is Python 3.11+; the annotations are strings
    from importlib.resources.abc import Traversable

# The config schema ships inside the package (package data, pyproject.toml), so that an installed
# wheel checks configs as the checkout does: nnprune/plan/schemas/config.schema.yaml.
SCHEMA: Traversable = files("nnprune.plan") / "schemas" / "config.schema.yaml"


def load_schema(resource: Traversable = SCHEMA) -> dict:
    """The config schema as a dict (its defaults are applied by `snakemake.utils.validate`)."""
    return yaml.safe_load(resource.read_text(encoding="utf-8"))


def check_schema(config: dict[str, Any], schema: dict | None = None) -> References:
    """The config against the schema (`SCHEMA`; defaults are not set here), with nnprune's own
    messages: `check_keys`, then the pruning strings as nnprune.plan.schemes parses them, then any
    other schema rule. Raises a UserError naming the key, the value and the allowed form, never the
    schema's regex. Returns the study's references (`check_keys`), for `studyconfig.check`."""
    schema = schema or load_schema()
    errors = schema_errors(config, schema)
    references = check_keys(config, schema, errors)
    if errors:
        # a pruning string's error first, in the parser's words (schema_error), as before any other
        pruning_first = sorted(errors, key=lambda error: list(error.absolute_path)[:1] != ["pruning"])
        raise schema_error(pruning_first[0])
    return references


def check_keys(config: dict[str, Any], schema: dict | None = None, errors: list | None = None) -> References:
    """Unknown top-level keys, then settings of the wrong type or missing (so that a string
    given for a list is named as such, not read letter by letter), then unknown criteria and
    architectures, each named with the allowed ones, then the outside ones, found without running
    them (nnprune.plan.plugins). `errors`: the config's `schema_errors`, when already computed.
    Returns the study's references (`references.study_references`)."""
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
    errors = schema_errors(config, schema) if errors is None else errors
    structural = [e for e in errors if e.validator in ("type", "required")]
    if structural:
        raise schema_error(structural[0])
    for name in config.get("criteria", []):
        if name not in CRITERION_SOURCES and not is_outside_form(name, "criterion"):
            raise UserError(f"config key 'criteria': unknown criterion {name!r}",
                            f"use criteria from: {', '.join(CRITERION_SOURCES)}, or package.module:function")
    for name in config.get("archs", {}) or {}:
        if name not in ARCHITECTURES and not is_outside_form(name, "model"):
            raise UserError(f"config key 'archs': unknown architecture {name!r}",
                            f"use architectures from: {', '.join(sorted(ARCHITECTURES))}, or package.module:function")
    return study_references(config)


def schema_errors(config: dict[str, Any], schema: dict) -> list:
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
    """A jsonschema ValidationError as one UserError: the key path, the value, what is allowed. A
    pruning string of the study (top-level `pruning`) that breaks the schema's pattern is told as
    nnprune.plan.schemes parses it, in the parser's own words."""
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
            if key == "pruning":
                return parsed
            return UserError(f"config key {key!r}: {parsed.problem}", parsed.fix)
    problem = "is out of range" if rule in dict(_BOUNDS) else "is not allowed"
    return UserError(f"config key {key!r}: {_shown(value)} {problem}", f"use {allowed_form(schema)}")
