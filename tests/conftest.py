import os
import shutil
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
