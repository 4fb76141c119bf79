"""Whether the study's dataset is on disk under data_root. Kept apart from the config checks:
the workflow's parse leaves it out, so that `snakemake -n` works on a machine without the data,
and runs it when execution starts (workflow/rules/common.smk, `onstart:`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nnprune.errors import UserError


def dataset_missing(config: dict[str, Any], workdir: Path = Path(".")) -> str | None:
    """None when the dataset is readable under data_root, else what is missing."""
    from nnprune.plan.names import DATASET_FILES

    root = workdir / config.get("data_root", "data")
    name = config["dataset"]
    needed = [root / "train", root / "val"] if name == "imagenet" else [root / DATASET_FILES[name]]
    missing = [str(p) for p in needed if not p.exists()]
    return ", ".join(missing) or None


def check_dataset(config: dict[str, Any], workdir: Path = Path(".")) -> None:
    """Raises UserError when data_root (relative to `workdir`, the run's working directory) does not
    exist or the study's dataset is not readable under it; the fix says how to fetch it."""
    name, data_root = config["dataset"], config.get("data_root", "data")
    root = workdir / data_root
    fetch = (f"put an ImageFolder root with train/ and val/ under {root}" if name == "imagenet" else
             f"run `nnprune fetch-data --dataset {name} --root {data_root}`")
    if not root.is_dir():
        raise UserError(f"config key 'data_root': the folder {root} does not exist",
                        f"{fetch}, or set data_root to the folder that holds the datasets")
    missing = dataset_missing(config, workdir)
    if missing:
        raise UserError(f"dataset {name} not found under data_root {root}: missing {missing}",
                        f"{fetch}, or set data_root to the folder that holds it")
