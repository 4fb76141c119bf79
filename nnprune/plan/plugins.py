"""Criteria and models from outside the package, found without running them.

A config's `criteria` (and `toy.criteria`) and `archs` may name, besides the built-in names:
  package.module:function          the function's name is the short name
  short=package.module:function    the short name given (runs.csv, tables, figures, paths)
  an entry-point name              an installed package's `nnprune.criteria` (or `nnprune.models`)
                                   entry point, e.g. `bn_scale = my_package.criteria:bn_scale`
The protocols themselves (what a criterion or a model function receives and returns) are in
nnprune/pruning/criteria.py and nnprune/models/__init__.py.

The config parse must stay torch-free, so nothing here imports the module: `importlib.util.find_spec`
finds its file (importing only its parent packages, as Python does), and the module's syntax tree
says whether the name is a function and, for a criterion, what its `@criterion(reads=...)`
declares. The job that uses it imports it in its own process and checks it for real
(`nnprune.pruning.criteria.resolve`, `nnprune.models.build`). The file's SHA-256 goes into the
job's spec, so a changed module reruns its jobs, and into the job's provenance.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nnprune.errors import UserError

SHORT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
IMPORT_PATH = re.compile(r"^(?:(?P<name>[^=:]+)=)?(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)$")
GROUPS = {"criterion": "nnprune.criteria", "model": "nnprune.models"}
READS = ("weights", "features", "gradients", "seed")   # what a criterion may read (criteria.py)
DECORATOR = "criterion"


@dataclass(frozen=True)
class Reference:
    """An outside criterion or model: its short name, where it is, and its file's hash."""
    kind: str           # "criterion" or "model"
    name: str           # short name: runs.csv, tables, figures, result paths
    module: str
    attr: str
    file: str
    sha256: str
    reads: str | None = None   # a criterion's declared input (READS)

    @property
    def target(self) -> str:
        return f"{self.module}:{self.attr}"

    @property
    def entry(self) -> str:
        """What a job receives: `short=module:function` (jobs re-resolve it in their process)."""
        return f"{self.name}={self.target}"


def is_reference(text: object) -> bool:
    """Whether `text` has the form `[short=]package.module:function`."""
    return isinstance(text, str) and IMPORT_PATH.match(text) is not None


def split_entry(text: str) -> tuple[str, str, str]:
    """(short name, module, attribute) of `[short=]module:attr`; the short name defaults to attr."""
    match = IMPORT_PATH.match(text)
    if match is None:
        raise UserError(f"{text!r} is not an import path", "write it as package.module:function "
                        "(optionally short_name=package.module:function)")
    name = match["name"] or match["attr"]
    if not SHORT_NAME.match(name):
        raise UserError(f"{text!r}: short name {name!r} is not a plain name",
                        "start it with a letter and use only letters, digits, '_' and '-'")
    return name, match["module"], match["attr"]


def entry_point(kind: str, name: str) -> str | None:
    """The `module:attr` of an installed package's entry point `name` in `kind`'s group, or None."""
    for point in metadata.entry_points(group=GROUPS[kind]):
        if point.name == name:
            return f"{name}={point.value.replace(' ', '')}"
    return None


def load(entry: str, kind: str, builtin) -> tuple[str, str, object, object]:
    """Import what `entry` (`[short=]module:attr` or an entry-point name) names, in a job's own
    process: (short name, module:attr, the module, the attribute or None if it is missing).
    `builtin`: the built-in names, for the message when `entry` is none of these forms. The
    caller checks the attribute against its protocol."""
    words = "criterion" if kind == "criterion" else "architecture"
    text = entry if is_reference(entry) else entry_point(kind, entry)
    if text is None:
        raise UserError(f"unknown {words} {entry!r}", f"use one of: {', '.join(builtin)}, an installed entry "
                        f"point of group {GROUPS[kind]}, or package.module:function")
    name, module_name, attr = split_entry(text)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise UserError(f"{words} {entry!r}: cannot import {module_name!r} ({error})",
                        "install it, or put its folder on PYTHONPATH") from None
    return name, f"{module_name}:{attr}", module, getattr(module, attr, None)


def module_file(module: str, what: str) -> Path:
    """The source file of `module`, found as the import system would, without running it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as error:        # a parent package is missing or broken
        spec, reason = None, f" ({error})"
    else:
        reason = ""
    if spec is None:
        raise UserError(f"{what}: module {module!r} not found{reason}",
                        "install it, or put its folder on PYTHONPATH (e.g. PYTHONPATH=examples)")
    if not spec.origin or not spec.origin.endswith(".py"):
        raise UserError(f"{what}: module {module!r} has no Python source file ({spec.origin})",
                        "define it in a .py module")
    return Path(spec.origin)


def _definition(tree: ast.Module, attr: str) -> ast.AST | None:
    """The last top-level statement that binds `attr` (def, class, assignment, import)."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == attr:
            found = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
                found = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((alias.asname or alias.name.split(".")[0]) == attr for alias in node.names):
                found = node
    return found


def _declared_reads(function: ast.FunctionDef) -> str | None:
    """The literal `reads=` of the function's `@criterion(...)` decorator, or None."""
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        callee = decorator.func
        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
        if name != DECORATOR:
            continue
        for keyword in decorator.keywords:
            if keyword.arg == "reads" and isinstance(keyword.value, ast.Constant):
                return keyword.value.value
    return None


def resolve(entry: str, kind: str, key: str) -> Reference:
    """The Reference of an outside `kind` ("criterion" or "model") named by `entry` under config
    key `key`: an import path or an entry-point name. Raises one clear UserError when the module
    cannot be found, the name is not a function there, or a criterion does not declare what it reads."""
    text = entry if is_reference(entry) else entry_point(kind, entry)
    if text is None:
        raise UserError(f"config key {key!r}: unknown {kind} {entry!r}",
                        f"use a built-in {kind}, an installed entry point of group {GROUPS[kind]!r}, "
                        "or package.module:function")
    name, module, attr = split_entry(text)
    what = f"config key {key!r}, {kind} {entry!r}"
    path = module_file(module, what)
    source = path.read_bytes()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise UserError(f"{what}: {path} line {error.lineno}: {error.msg}", "correct the module") from None
    node = _definition(tree, attr)
    callable_kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if kind == "criterion" else \
        (ast.FunctionDef, ast.ClassDef)
    if node is None:
        raise UserError(f"{what}: module {module!r} ({path}) defines no {attr!r}",
                        f"name a function that {path.name} defines")
    if not isinstance(node, callable_kinds):
        shown = type(node).__name__.removesuffix("Def").lower().replace("assign", "an assignment")
        raise UserError(f"{what}: {attr!r} in {path} is not a function (it is {shown})",
                        "name a function" + (" decorated with @criterion(reads=...) from nnprune.pruning.criteria"
                                             if kind == "criterion" else " that returns an nn.Module"))
    reads = None
    if kind == "criterion":
        reads = _declared_reads(node)
        if reads not in READS:
            raise UserError(f"{what}: function {attr!r} in {path} does not declare what it reads",
                            "decorate it with @criterion(reads=...) from nnprune.pruning.criteria, reads one of: "
                            + ", ".join(READS))
    return Reference(kind, name, module, attr, str(path), hashlib.sha256(source).hexdigest(), reads)


class OpenChoices(tuple):
    """The built-in names of a spec field, which also admits an outside one: an import path
    (`[short=]package.module:function`) or an installed entry point of `kind`'s group."""
    kind: str = "criterion"

    def __new__(cls, names, kind: str = "criterion"):
        self = super().__new__(cls, names)
        self.kind = kind
        return self

    def __contains__(self, item: object) -> bool:
        return (tuple.__contains__(self, item) or is_reference(item)
                or (isinstance(item, str) and entry_point(self.kind, item) is not None))

    def describe(self) -> str:
        return f"{', '.join(self)}, an entry point of group {GROUPS[self.kind]}, or package.module:function"


class ShortNames(OpenChoices):
    """Built-in names or the short name of an outside one (as runs.csv names it)."""

    def __contains__(self, item: object) -> bool:
        return tuple.__contains__(self, item) or (isinstance(item, str) and SHORT_NAME.match(item) is not None)

    def describe(self) -> str:
        return f"{', '.join(self)}, or the short name of an outside {self.kind}"
