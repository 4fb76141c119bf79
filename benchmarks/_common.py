"""Shared helpers of the benchmark scripts: device choice, timing, machine description.

Every benchmark prints the measured figure, the reference figure measured in the same run, their
ratio and the target, so a reader never has to trust a number from another machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

# Benchmarks run from a checkout without installing: put the repository on the path.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """--device and --threads, read back by `device_of`."""
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")


def device_of(args: argparse.Namespace) -> torch.device:
    """Applies --threads and returns the device --device names (`nnprune.engine.device.resolve_device`)."""
    from nnprune.engine.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """(wall seconds, result) of one call; waits for queued GPU work before and after."""
    synchronize(device)
    started = time.perf_counter()
    result = function()
    synchronize(device)
    return time.perf_counter() - started, result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device) -> str:
    """One line: CPU, cores, torch, threads, device and the load average at the start."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"machine: {cpu_model()}, nproc {os.cpu_count()}, torch {torch.__version__}, "
            f"threads {torch.get_num_threads()}, device {device}{gpu}, load average {load:.2f}")


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "MISS"


def report(name: str, measured: str, reference: str, ratio: float, target: float,
           unit: str = "x") -> bool:
    """Print one result line; True when the target is met."""
    print(f"{name}: measured {measured} | reference {reference} | ratio {ratio:.2f}{unit} "
          f"(target >= {target:g}{unit}) {verdict(ratio, target)}", flush=True)
    return ratio >= target
