"""The package's import graph: no cycles among nnprune's modules (lazy imports inside functions
included), and modules of the analysis and pipeline layers short enough to read in one sitting.

The graph is read from the source with `ast`, never by importing: an import inside a function
is an edge as much as one at the top. `from pkg import name` is an edge to the submodule
`pkg.name` when there is one, else to `pkg`; a name that a package's `__init__` re-exports is
an edge from that `__init__` only, and importing `pkg.sub` is no edge to `pkg` (Python runs
`pkg/__init__.py` first, but a package importing its own submodules is no cycle)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "nnprune"
MAX_LINES = 400
SHORT_LAYERS = ("analysis", "pipeline")


def module_name(path: Path) -> str:
    """nnprune/a/b.py -> nnprune.a.b; nnprune/a/__init__.py -> nnprune.a."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """Each import statement anywhere in `tree` as (absolute module, names taken from it; [] for
    `import a.b`). Relative imports are resolved against `module`'s package."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.append((source, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Call) and _names_import_module(node.func) and node.args:
            name = node.args[0]      # importlib.import_module("a.b"): a dynamic import with a fixed name
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and not name.value.startswith("."):
                found.append((name.value, []))
    return found


def _names_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or \
        (isinstance(func, ast.Name) and func.id == "import_module")


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the nnprune modules it imports (only edges between modules of `modules`)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets: set[str] = set()
        for source, names in imported_names(tree, module, path.name == "__init__.py"):
            submodules = [f"{source}.{name}" for name in names if f"{source}.{name}" in modules]
            targets.update(submodules)
            # names that are not submodules are attributes of `source` itself
            if source in modules and (not names or len(submodules) < len(names)):
                targets.add(source)
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) through each strongly connected component of more than one
    module (Tarjan's algorithm, iterative), sorted for a stable message."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return sorted(_one_cycle(graph, component) for component in components)


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the alphabetically first module of `component` (breadth first)."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def test_the_graph_reader_resolves_relative_lazy_and_submodule_imports(tmp_path):
    """The rules above on a made-up package: a lazy relative import of a submodule, a fixed-name
    importlib call, a re-export through an __init__, and a cycle that only a function-level import
    closes."""
    source = {"pkg/__init__.py": "from .a import thing\n",
              "pkg/a.py": "import os\nthing = 1\n"
                          "def later():\n    from . import b\n    importlib.import_module('pkg.sub')\n",
              "pkg/b.py": "from pkg.sub import c\n",
              "pkg/sub/__init__.py": "",
              "pkg/sub/c.py": "def late():\n    from ..a import thing\n    from ... import os\n"}
    modules = {}
    for name, text in source.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        parts = Path(name).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = import_graph(modules)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b", "pkg.sub"}, "pkg.b": {"pkg.sub.c"}, "pkg.sub": set(),
                     "pkg.sub.c": {"pkg.a"}}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]


def test_no_import_cycles_among_nnprune_modules():
    modules = package_modules()
    graph = import_graph(modules)
    assert len(modules) > 50 and sum(map(len, graph.values())) > 100     # the whole package was read
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_analysis_and_pipeline_modules_stay_short():
    lengths = {module: len(path.read_text(encoding="utf-8").splitlines())
               for module, path in package_modules().items()
               if module.split(".")[1:2] and module.split(".")[1] in SHORT_LAYERS}
    assert len(lengths) > 10
    long = {module: lines for module, lines in lengths.items() if lines > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (each probably holds two ideas): {long}"
