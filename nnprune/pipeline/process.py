"""What the owner of a process sets for the steps it runs: glibc's allocator, torch's thread count and
the seeds. Each is process-wide, so it is set once, in view, by the one caller that owns the process:

- `tune_allocator`: the `nnprune` entry point (`entry.main`) before a plain run, and the warm server
  (`warm_server.serve`) before it forks its children;
- `set_up_run`: the Python API (`nnprune.api`) just before it calls a step, so that the command
  line and the warm server's children, which reach the steps through it, set them the same way.

The steps themselves (`steps`, `study_steps`) change none of this. Torch-free to import.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the kernel after every batch.

    With glibc's defaults, the activation buffers of each training step (a few MB) are mapped and
    unmapped again, and the kernel zeroes every new page: in a 1-thread ResNet-20 fit on this
    machine about 7% of the CPU time was system time. Raising the mmap threshold to its maximum
    (32 MB) and never trimming the heap brings that to about 2% (benchmarks/RESULTS.md). Numbers
    computed are unchanged. Returns False where there is no glibc (macOS, musl): nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    ok_trim = mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
    return bool(ok_mmap and ok_trim)


def set_up_run(threads: int | None, seed: int, deterministic: bool = False) -> None:
    """Before a step that runs a network: torch's CPU thread count (`threads`; None or 0 keeps
    torch's default), then Python's and torch's global seeds (`engine.device.seed_everything`;
    `deterministic` also asks for deterministic kernels). Both stay set for the rest of the process."""
    import torch

    from nnprune.engine.device import seed_everything

    if threads:
        torch.set_num_threads(threads)
    seed_everything(seed, deterministic)
