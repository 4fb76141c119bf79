"""What produced a result: versions, commit, device, times."""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from . import __version__

PACKAGES = ("torch", "torchvision", "torch-pruning", "fvcore", "snakemake")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: torch.device, started: dt.datetime, seconds: float) -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"nnprune_version": __version__, "git_commit": git_commit(), "versions": versions,
            "python": platform.python_version(), "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "started": started.isoformat(timespec="seconds"), "seconds": round(seconds, 3)}
