"""Device choice and seeding."""
from __future__ import annotations

import os
import random

import torch

from nnprune.errors import UserError


def resolve_device(preference: str = "auto") -> torch.device:
    """`auto` -> cuda when available, else cpu; `cpu`; `cuda` / `cuda:N` (falls back to cpu
    with a warning when no GPU is present, so one config runs everywhere)."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cpu":
        return torch.device("cpu")
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            print(f"nnprune: device {preference!r} requested but CUDA is not available; using the CPU")
            return torch.device("cpu")
        return torch.device(preference)
    raise UserError(f"unknown device {preference!r}", "use auto, cpu, cuda or cuda:N")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, torch (CPU and CUDA). `deterministic` also asks for deterministic kernels."""
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def autocast_dtype(device: torch.device, preference: str = "auto") -> torch.dtype:
    """The mixed-precision dtype: `auto` is bfloat16 on the CPU and on GPUs that support it
    (no loss scaling, so no host sync per training step), float16 on older GPUs; or the named
    one (`bfloat16`, `float16`)."""
    if preference != "auto":
        return getattr(torch, preference)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16
