"""The study's criteria and architectures by short name: built-in ones, and outside ones
(`package.module:function`, `short=package.module:function` or an entry-point name) found without
running them (nnprune.plan.plugins). The config checks, the grid and the job specs read them from here."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from nnprune.errors import UserError


class References(NamedTuple):
    """A study's names, each mapped to its `plugins.Reference` (None for a built-in one)."""
    criteria: dict       # criteria
    toy_criteria: dict   # toy.criteria
    archs: dict          # archs


def study_references(config: dict[str, Any]) -> References:
    """The study's criteria, toy criteria and architectures, each outside one found once.
    Raises a UserError for an outside one that cannot be found (see `outside`)."""
    return References(study_criteria(config), toy_criteria(config), study_archs(config))


def is_outside_form(entry: str, kind: str) -> bool:
    """Whether `entry` names an outside `kind` ("criterion" or "model"): an import path or an
    installed entry point's name."""
    from nnprune.plan import plugins

    return plugins.is_reference(entry) or plugins.entry_point(kind, entry) is not None


def outside(entries: Iterable[str], kind: str, key: str) -> dict:
    """Short name -> `plugins.Reference` (None for a built-in) of config key `key`'s `entries`
    ("criterion" or "model" kind). Raises a UserError when an outside one cannot be found, is not
    a function, shares a short name with another entry, or takes a built-in's name."""
    from nnprune.plan import plugins
    from nnprune.plan.names import ARCHITECTURES, CRITERION_SOURCES

    builtin = CRITERION_SOURCES if kind == "criterion" else ARCHITECTURES
    found: dict = {}
    written: dict[str, str] = {}        # short name -> the entry as the config writes it
    for entry in entries:
        reference = None if entry in builtin else plugins.resolve(entry, kind, key)
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
