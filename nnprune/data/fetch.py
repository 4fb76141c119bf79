"""Getting datasets onto disk, offline first.

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package when it is installed (or can be,
as root on Debian); otherwise from torchvision's download. Either way the files end up where
torchvision reads them: `<root>/FashionMNIST/raw/`.
"""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

from nnprune.errors import UserError
from nnprune.data.datasets import dataset_spec

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _fashion_present(raw: Path) -> bool:
    return all((raw / name).is_file() for name in FASHION_FILES)


def _copy_from_debian(raw: Path, source: Path = DEBIAN_DIR) -> bool:
    if not all((source / f"{name}.gz").is_file() for name in FASHION_FILES):
        return False
    from nnprune.files import atomic_write

    for name in FASHION_FILES:
        def unpack(tmp: str, packed: Path = source / f"{name}.gz") -> None:
            with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
        atomic_write(raw / name, unpack)
    return True


def _apt_install(package: str) -> bool:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print(f"nnprune: installing Debian package {package} (offline Fashion-MNIST)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env)
        result = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env)
    return result.returncode == 0


def _torchvision_download(name: str, root: Path) -> bool:
    import torchvision

    cls = getattr(torchvision.datasets, dataset_spec(name).torchvision_class)
    try:
        for train in (True, False):
            cls(root=str(root), train=train, download=True)
    except Exception as error:  # network errors come in many types
        print(f"nnprune: torchvision download of {name} failed: {error}")
        return False
    return True


def fetch(name: str, root: str | Path) -> str:
    """Make dataset `name` readable under `root`. Returns how: present, debian, download."""
    root = Path(root)
    if name == "fashion-mnist":
        raw = root / "FashionMNIST" / "raw"
        if _fashion_present(raw):
            return "present"
        if _copy_from_debian(raw) or (_apt_install(DEBIAN_PACKAGE) and _copy_from_debian(raw)):
            return "debian"
        if _torchvision_download(name, root):
            return "download"
        raise UserError(
            f"Fashion-MNIST is not under {raw} and could not be fetched",
            f"as root on Debian: apt-get install {DEBIAN_PACKAGE}; or copy the four IDX files "
            f"({', '.join(FASHION_FILES)}) into {raw}",
        )
    spec = dataset_spec(name)
    try:
        from nnprune.data.datasets import load_images
        load_images(name, root, train=False)
        return "present"
    except UserError:
        pass
    if _torchvision_download(name, root):
        return "download"
    raise UserError(
        f"{name} is not under {root / spec.folder} and could not be downloaded",
        f"download it on a machine with internet access (torchvision.datasets.{spec.torchvision_class}"
        f"(root, download=True)) and copy the folder {spec.folder} into {root}",
    )
