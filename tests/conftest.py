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
