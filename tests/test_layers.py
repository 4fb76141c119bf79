"""The package's folders are its layers: torch-free layers load without torch, and no module
imports from a layer above its own (lazy imports inside functions included)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nnprune"

# lowest first: a module may import from its own rank or below, never above
RANKS = {"errors": 0, "files": 0, "plan": 1, "data": 2, "models": 2, "engine": 3, "pruning": 4,
         "analysis": 5, "toy": 6, "pipeline": 7, "api": 7}  # api and the CLI: the user surfaces
TORCH_FREE = ("errors", "files", "plan", "analysis")


def _layer(module: str) -> str:
    """'nnprune.plan.names' -> 'plan'; 'nnprune' (the package itself) -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every nnprune module that `path` imports, anywhere in its body, as absolute names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "nnprune"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.split(".")[0] == "nnprune":
                if module == "nnprune":  # `from nnprune import x`: x is the layer
                    found += [(node.lineno, f"nnprune.{a.name}") for a in node.names]
                else:
                    found.append((node.lineno, module))
    return found


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_ranked_layer():
    layers = {_layer(_module_name(p)) for p in _modules()} - {""}
    assert layers <= set(RANKS), f"unranked layers: {sorted(layers - set(RANKS))}"
    assert len(list(PACKAGE.glob("*.py"))) <= 10


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for path in _modules():
        own = _layer(_module_name(path))
        if not own:
            continue
        for line, target in _imports(path):
            other = _layer(target)
            if other in RANKS and RANKS[other] > RANKS[own]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {target} ({other})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_rank_check_sees_lazy_and_relative_imports(tmp_path):
    """The checker itself: an upward import hidden in a function, and a relative one, are both seen."""
    pkg = tmp_path / "nnprune" / "plan"
    pkg.mkdir(parents=True)
    module = pkg / "x.py"
    module.write_text("def f():\n    from nnprune.pipeline import cli\n    from ..engine import training\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "nnprune"
    try:
        assert _imports(module) == [(2, "nnprune.pipeline"), (3, "nnprune.engine")]
    finally:
        PACKAGE = saved


@pytest.mark.parametrize("layer", TORCH_FREE)
def test_torch_free_layers_import_with_torch_unimportable(layer):
    modules = sorted(_module_name(p) for p in _modules() if _layer(_module_name(p)) == layer)
    assert modules, layer
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'torchvision', 'torch_pruning', 'fvcore'):\n"
            "            raise ImportError(f'{name} is blocked by the torch-free test')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import importlib\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'torchvision')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
