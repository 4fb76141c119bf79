"""A study config with the schema's defaults filled in, as `snakemake.utils.validate` leaves it, for
the code that plans a study outside Snakemake (`nnprune check-config`, tests, the Python API)."""
from __future__ import annotations

import copy
from typing import Any

import jsonschema

from nnprune.plan.studyconfig import load_schema


def _filling(validator_class):
    """`validator_class` that also sets each missing property's `default` (jsonschema's own recipe)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, schema_properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in schema_properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, schema_properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config that passed `studyconfig.check_schema`, with the schema's defaults set."""
    schema = load_schema()
    filled = copy.deepcopy(config)
    _filling(jsonschema.validators.validator_for(schema))(schema).validate(filled)
    return filled
