import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("NNPRUNE_DATA", REPO / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip outside CI; in CI (CI=true) a missing prerequisite of an integration test is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"integration prerequisite missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    raw = DATA_ROOT / "FashionMNIST" / "raw"
    require((raw / "train-images-idx3-ubyte").is_file(),
            f"real Fashion-MNIST not under {raw}; run `make setup`")
    return DATA_ROOT


@pytest.fixture(scope="session")
def snakemake_bin() -> str:
    path = shutil.which("snakemake")
    require(path is not None, "snakemake is not on PATH; run `make setup` and use `make test`")
    return path


def run_snakemake(snakemake_bin: str, workdir: Path, data_root: Path, *extra: str,
                  configfile: Path = REPO / "config" / "smoke.yaml", timeout: int = 900, env: dict | None = None):
    """Run the real workflow in `workdir` (outputs under workdir/results/); `env`: extra
    environment variables (e.g. PYTHONPATH for an outside criterion)."""
    import subprocess

    cmd = [snakemake_bin, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--config", f"data_root={data_root}", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)


@pytest.fixture(scope="session")
def smoke_local(tmp_path_factory, snakemake_bin, fashion_root):
    """One local run of config/smoke.yaml for the whole session: (workdir, seconds)."""
    import time

    workdir = tmp_path_factory.mktemp("smoke-local")
    started = time.perf_counter()
    result = run_snakemake(snakemake_bin, workdir, fashion_root, "--cores", "2")
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"smoke workflow (local): {seconds:.1f} s")
    return workdir, seconds


# A part of the smoke study: the clean baseline, every criterion, both scoring sizes and both budgets
# at the fine-tuned cut, the analysis and one toy dataset (every rule of the workflow, 24 jobs of the
# 61). Tests that run the workflow again (on SLURM, killed and resumed) run this part and compare it
# with smoke_local's rows of the same part, which it must equal.
SMOKE_PART = {"label_noise": [0.0], "pruning": ["uniform:0.1"]}


def smoke_part_config(folder: Path) -> Path:
    """config/smoke.yaml cut down to SMOKE_PART, written to folder/smoke-part.yaml."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config.update(SMOKE_PART, toy={**config["toy"], "datasets": ["moons"]})
    path = folder / "smoke-part.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def smoke_part_rows(runs):
    """The rows of a smoke runs.csv (a DataFrame) that SMOKE_PART makes, in their order."""
    part = runs.label_noise.isin(SMOKE_PART["label_noise"]) & runs.pruning.isin(SMOKE_PART["pruning"])
    return runs[part].reset_index(drop=True)


def in_smoke_part(path: Path) -> bool:
    """Whether a baseline or run file of the smoke study belongs to SMOKE_PART (by its folder names)."""
    text = str(path)
    return (any(f"__ln{noise}__" in text for noise in SMOKE_PART["label_noise"])
            and ("/runs/" not in text or any(f"/{p.replace(':', '-')}/" in text
                                             for p in SMOKE_PART["pruning"])))


def pytest_addoption(parser):
    parser.addoption("--gpu-device", default="cuda",
                     help="device of the `gpu` tests (default cuda); `--gpu-device cpu` runs their "
                          "CUDA code path on the CPU as a dry run")


VENV_BIN = Path(sys.executable).parent     # the venv that runs the tests (make setup's .venv/bin)


def shell_env(**extra: str) -> dict[str, str]:
    """The environment of a shell that activated nothing: PATH without the tests' venv (as in a
    fresh terminal), no PYTHONPATH or VIRTUAL_ENV; `extra` variables added."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and Path(p).resolve() != VENV_BIN.resolve()]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PATH")}
    return {**env, "PATH": os.pathsep.join(path or ["/usr/bin", "/bin"]), **extra}
