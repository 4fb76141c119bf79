"""The package stands alone: a wheel built from the checkout, installed (not editable) into a fresh
virtual environment, runs `nnprune --help`, `nnprune check-config` and the README's Python API
example from an empty folder, with the checkout nowhere on sys.path. Without nnprune installed, the
workflow stops before any job with one line that says how to install it.

Installing torch into the fresh environment would take 5 GB and minutes, so the environment sees
the dependencies of the tests' own venv through a folder of links to its site-packages entries,
minus its (editable) nnprune: the only nnprune it can import is the wheel's."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, shell_env

pytestmark = pytest.mark.integration

# what the copy of the checkout that the wheel is built from leaves out (the build then writes
# nothing into the checkout): at its top, environments, data, results and build leftovers; anywhere,
# caches and metadata of earlier builds
TOP_LEVEL_SKIPPED = {".git", ".venv", "data", "results", ".snakemake", "build", "dist", ".pytest_cache",
                     ".ruff_cache"}
SKIPPED = shutil.ignore_patterns("__pycache__", "*.egg-info")


def _not_sources(folder: str, names: list[str]) -> set[str]:
    skipped = set(SKIPPED(folder, names))
    return skipped | (TOP_LEVEL_SKIPPED & set(names)) if Path(folder) == REPO else skipped


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def build_wheel(folder: Path) -> Path:
    """`pip wheel --no-deps` of a copy of the checkout; returns the wheel file. No build isolation,
    so that the test needs no network: the tests' venv has setuptools (torch requires it)."""
    source = folder / "source"
    shutil.copytree(REPO, source, ignore=_not_sources, symlinks=True)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  str(source), "-w", str(folder / "dist")], cwd=folder)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (folder / "dist").glob("nnprune-*.whl")
    return wheel


def fresh_venv(folder: Path) -> tuple[Path, Path]:
    """A new virtual environment without pip: (its python, its site-packages)."""
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(folder)], cwd=folder.parent)
    assert created.returncode == 0, created.stderr
    python = folder / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=folder)
    return python, Path(purelib.stdout.strip())


def show_dependencies(site_packages: Path, links: Path) -> list[str]:
    """Make the tests' venv's packages importable in the environment of `site_packages`, except
    nnprune: `links` holds a link to every entry of the tests' site-packages but nnprune's own
    (the package or its editable-install finder, .pth file and metadata), and a .pth file there
    adds it as a site directory (so that its other .pth files run). Returns the names left out."""
    ours = Path(sysconfig.get_paths()["purelib"])
    links.mkdir()
    left_out = []
    for entry in sorted(ours.iterdir()):
        name = entry.name.lower()
        if (name.startswith(("nnprune", "__editable__")) and "nnprune" in name) or name == "__pycache__":
            left_out.append(entry.name)
            continue
        (links / entry.name).symlink_to(entry)
    (site_packages / "zz_test_dependencies.pth").write_text(f"import site; site.addsitedir({str(links)!r})\n")
    return left_out


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """(environment variables, venv folder, empty working folder, wheel) with the wheel installed,
    and the dataset fetched into the working folder."""
    folder = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(folder)
    venv = folder / "venv"
    python, site_packages = fresh_venv(venv)
    # installed before the dependencies are visible: pip then sees no other nnprune to replace
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                      str(wheel)], cwd=folder)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    left_out = show_dependencies(site_packages, folder / "dependencies")
    assert any(name.startswith("nnprune") for name in left_out), left_out     # the checkout's install
    env = shell_env()
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"                             # as an activated venv
    work = folder / "work"
    work.mkdir()
    return env, venv, work, wheel


def test_the_wheel_holds_the_config_schema(wheel_env):
    *_, wheel = wheel_env
    names = zipfile.ZipFile(wheel).namelist()
    assert "nnprune/plan/schemas/config.schema.yaml" in names, names
    # every module of the package: the checkout's, each in the wheel
    modules = {str(path.relative_to(REPO)) for path in (REPO / "nnprune").rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
    assert not any(name.startswith(("workflow/", "tests/", "config/")) for name in names)


def test_nnprune_is_imported_from_the_fresh_venv(wheel_env):
    env, venv, work, _ = wheel_env
    code = ("import json, sys, nnprune; from nnprune.plan.studyconfig import SCHEMA, load_schema\n"
            "print(json.dumps([nnprune.__file__, str(SCHEMA), len(load_schema()['properties']), sys.path]))")
    shown = _run([str(venv / "bin" / "python"), "-c", code], cwd=work, env=env)
    assert shown.returncode == 0, shown.stderr[-3000:]
    package, schema, keys, path = json.loads(shown.stdout)
    assert Path(package).resolve().is_relative_to(venv.resolve()), package
    assert Path(schema).resolve().is_relative_to(venv.resolve()) and Path(schema).is_file(), schema
    assert keys > 20               # the whole schema: study, dataset, archs, ..., claims
    assert not [p for p in path if p and Path(p).resolve().is_relative_to(REPO.resolve())], path


def test_help_lists_every_subcommand(wheel_env):
    from nnprune.pipeline.cli import SUMMARIES

    env, venv, work, _ = wheel_env
    assert shutil.which("nnprune", path=env["PATH"]) == str(venv / "bin" / "nnprune")
    shown = _run(["nnprune", "--help"], cwd=work, env=env)
    assert shown.returncode == 0, shown.stderr[-3000:]
    for command in ["fetch-data", "check-config", "compare", *SUMMARIES]:
        assert re.search(rf"^\s+{command}\s", shown.stdout, re.M), (command, shown.stdout)


@pytest.fixture(scope="module")
def fetched(wheel_env, fashion_root):
    """`nnprune fetch-data` in the empty working folder: from Debian's package where it is
    installed (as in CI), else the test data linked in first (it is then "present")."""
    from nnprune.data.fetch import DEBIAN_DIR, FASHION_FILES

    env, _, work, _ = wheel_env
    if not all((DEBIAN_DIR / f"{name}.gz").is_file() for name in FASHION_FILES):
        raw = work / "data" / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for name in FASHION_FILES:
            (raw / name).symlink_to(fashion_root / "FashionMNIST" / "raw" / name)
    shown = _run(["nnprune", "fetch-data", "--dataset", "fashion-mnist", "--root", "data"], cwd=work, env=env)
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    assert re.fullmatch(r"nnprune: fashion-mnist ready under data \((debian|present)\)\n", shown.stdout), shown.stdout
    return work


def test_check_config_of_the_smoke_config(wheel_env, fetched):
    env, *_ = wheel_env
    shutil.copy(REPO / "config" / "smoke.yaml", fetched / "smoke.yaml")
    shown = _run(["nnprune", "check-config", "smoke.yaml"], cwd=fetched, env=env)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout == "nnprune: smoke.yaml is a valid config of study smoke\n"
    # and a bad one is named by the wheel's schema, in two lines
    (fetched / "bad.yaml").write_text((fetched / "smoke.yaml").read_text().replace("seeds: [0]", "seeds: [-1]"))
    shown = _run(["nnprune", "check-config", "bad.yaml"], cwd=fetched, env=env)
    assert shown.returncode == 2 and shown.stderr.splitlines() == [
        "nnprune check-config: error: config key 'seeds': -1 is out of range", "  fix: use a whole number >= 0"]
    # and a dataset that is not there, before any job (a run's first job would have found out)
    (fetched / "cifar.yaml").write_text((fetched / "smoke.yaml").read_text().replace("dataset: fashion-mnist",
                                                                                      "dataset: cifar10"))
    shown = _run(["nnprune", "check-config", "cifar.yaml"], cwd=fetched, env=env)
    assert shown.returncode == 2 and shown.stderr.splitlines() == [
        "nnprune check-config: error: dataset cifar10 not found under data_root data: missing "
        "data/cifar-10-batches-py",
        "  fix: run `nnprune fetch-data --dataset cifar10 --root data`, or set data_root to the folder that holds it"]


def readme_api_example() -> str:
    """The python code block of the README's "Python API" section."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


def test_readme_python_api_example_runs_from_the_wheel(wheel_env, fetched):
    env, venv, *_ = wheel_env
    (fetched / "example.py").write_text(readme_api_example())
    shown = _run([str(venv / "bin" / "python"), "example.py"], cwd=fetched, env=env, timeout=600)
    assert shown.returncode == 0, shown.stderr[-3000:]
    # the example's last line (the steps print their progress before it)
    accuracy = re.fullmatch(r"test accuracy ([0-9.]+)% -> ([0-9.]+)% with ([0-9,]+) of ([0-9,]+) MACs",
                            shown.stdout.splitlines()[-1])
    assert accuracy, shown.stdout
    pruned, base = (int(accuracy.group(i).replace(",", "")) for i in (3, 4))
    assert 0.6 <= pruned / base <= 0.7            # macs:0.3 removes about 30% of the MACs
    assert (fetched / "api-example" / "evaluated" / "metrics.json").is_file()


def test_without_nnprune_the_workflow_stops_in_one_line(tmp_path):
    """A Python that runs Snakemake but has no nnprune installed: before any job, one line naming
    that Python and how to install nnprune for it, and nothing written."""
    python, site_packages = fresh_venv(tmp_path / "venv")
    show_dependencies(site_packages, tmp_path / "dependencies")
    work = tmp_path / "work"
    work.mkdir()
    shown = _run([str(python), "-m", "snakemake", "--cores", "1", "--snakefile", str(REPO / "Snakefile"),
                  "-d", str(work), "--configfile", str(REPO / "config" / "smoke.yaml")], cwd=work, env=shell_env())
    assert shown.returncode == 1, shown.stdout[-2000:] + shown.stderr[-2000:]
    lines = [line for line in shown.stderr.splitlines() if line.strip()]
    assert lines == [f"nnprune is not installed for {python} (the Python that runs Snakemake): run "
                     f"`{python} -m pip install -e {REPO}`, or `make setup` in {REPO} and use its .venv/bin/snakemake"]
    assert [p for p in work.rglob("*") if ".snakemake" not in p.parts] == []


def readme_wheel_block() -> str:
    """The bash block of the README's "Install the package alone (a wheel)" section."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split(
        "\n## Install the package alone (a wheel)\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    return code


def test_readme_wheel_install_runs_as_written(tmp_path):
    """The README's block, run by bash in a copy of the checkout with a fresh venv's python first on
    PATH (the tests' dependencies, pip among them, visible to it, and no index: pip installs the
    wheel and nothing from the network)."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=_not_sources, symlinks=True)
    venv = tmp_path / "venv"
    _, site_packages = fresh_venv(venv)
    show_dependencies(site_packages, tmp_path / "dependencies")      # pip and setuptools among them
    # no build isolation either (pip's inverted variable): setuptools comes from the visible dependencies
    env = shell_env(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1",
                    TMPDIR=str(tmp_path))
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    shown = _run(["bash", "-e", "-c", readme_wheel_block()], cwd=source, env=env, timeout=600)
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    assert "usage: nnprune" in shown.stdout
    assert shown.stdout.rstrip().endswith("study.yaml is a valid config of study smoke")
    installed = _run([str(venv / "bin" / "python"), "-c", "import nnprune; print(nnprune.__file__)"], cwd=tmp_path)
    assert Path(installed.stdout.strip()).resolve().is_relative_to(venv.resolve()), installed.stdout
    assert list((source / "dist").glob("nnprune-*.whl"))
