"""Progress of long work: a live tqdm bar when stderr is a terminal; in a job log (not a
terminal) no bar, only the caller's own lines, so logs stay readable."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable


def progress_bar(iterable: Iterable, desc: str, unit: str, total: int | None = None):
    """A tqdm bar over `iterable` on stderr when stderr is a terminal (cleared when the iterable
    ends or raises), else None: the caller then iterates `iterable` itself."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False, file=sys.stderr)


def progress_callback(name: str, log: Callable[[str], None], verb: str,
                      unit: str) -> Callable[[int, int], None]:
    """A `(done, total)` callback: a live tqdm bar on a terminal; otherwise a concise
    `log` line ("{verb} {done}/{total} {unit}") every few seconds and at the end."""
    bar = progress_bar(None, name, unit)
    if bar is not None:
        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()
            if done >= total:
                bar.close()
        return update
    last = [0.0]

    def log_line(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 5 or done >= total:
            last[0] = now
            log(f"{verb} {done}/{total} {unit}")
    return log_line
