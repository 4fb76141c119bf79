"""What produced a result: versions, commit, device, times."""
from __future__ import annotations

import datetime as dt
import platform
import resource
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from nnprune import __version__

PACKAGES = ("torch", "torchvision", "torch-pruning", "fvcore", "snakemake")


def _git(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit() -> str | None:
    out = _git("rev-parse", "HEAD")
    return out.stdout.strip() or None if out is not None and out.returncode == 0 else None


def git_dirty() -> bool | None:
    """True when tracked files differ from the commit (the commit alone does not name the code)."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return bool(out.stdout.strip()) if out is not None and out.returncode == 0 else None


def provenance(device: torch.device, started: dt.datetime, seconds: float) -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"nnprune_version": __version__, "git_commit": git_commit(), "git_dirty": git_dirty(),
            "versions": versions,
            "python": platform.python_version(), "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "started": started.isoformat(timespec="seconds"), "seconds": round(seconds, 3),
            "cpu_seconds": round(process_cpu_seconds(), 3)}


def process_cpu_seconds() -> float:
    """User + system CPU of this process so far, imports included. A child forked by the warm
    server (nnprune.pipeline.warm_server) starts at 0, so both ways of starting count the step's own CPU; the
    cold way also counts its imports (about 2.2 s)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
