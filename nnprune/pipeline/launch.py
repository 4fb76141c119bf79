"""Warm start, the client's side: hand an `nnprune` command to the warm server, and start and stop
that server for a workflow run.

Each Snakemake job runs `nnprune <step>` in a fresh process, and each process imports torch,
torch-pruning and fvcore before it does any work: about 3 s of a 10 s prune job on two CPU cores
(benchmarks/RESULTS.md, "Process overhead"). In a local run the workflow's `onstart` (in
workflow/rules/common.smk) calls `start_server`, which starts one **warm server**
(`python -m nnprune.pipeline.warm_server --socket PATH`) that imports them once, and sets
`NNPRUNE_WARM` to its socket. The `nnprune` command (`entry.main`) then calls `run_warm`: it sends
its arguments, working directory, environment and its stdin/stdout/stderr to that server, which
forks a child that runs the command as the cold process would, and replies with the child's exit
status. Without the variable (a cluster job, a shell), with `NNPRUNE_NO_WARM=1`, or when the server
cannot be reached, `run_warm` returns None and the command runs in its own process: the outputs
are the same either way (a test compares them).

Torch-free: the client side runs before any heavy import.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

ENV = "NNPRUNE_WARM"            # the server's socket path, set for the jobs by the workflow
DISABLE = "NNPRUNE_NO_WARM"     # set (to anything but "" or "0") to always start cold
HEADER = struct.Struct("!I")    # a request: its length in bytes, then its JSON
SERVER_MODULE = "nnprune.pipeline.warm_server"
# The last line of a warm child's stderr (the job's log): its own CPU seconds and peak memory.
USAGE_PREFIX = "nnprune warm child:"


def _warm_path() -> str | None:
    if os.environ.get(DISABLE, "") not in ("", "0"):
        return None
    return os.environ.get(ENV) or None


def _read_line(conn: socket.socket, pending: bytearray) -> bytes | None:
    while b"\n" not in pending:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return None
        pending.extend(chunk)
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def run_warm(argv: list[str]) -> int | None:
    """Run `nnprune argv` in the warm server: its exit status, or None when there is no server to
    run it (then the caller runs the command itself)."""
    path = _warm_path()
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    try:
        socket.send_fds(conn, [HEADER.pack(len(request)) + request], [0, 1, 2])
        pending = bytearray()
        first = _read_line(conn, pending)
        if first is None or not first.startswith(b"P"):
            conn.close()
            return None            # the server refused or died before forking: run cold
        child = int(first[1:])

        def forward(signum, _frame):
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, forward)
        last = _read_line(conn, pending)
    finally:
        conn.close()
    if last is None or not last.startswith(b"E"):
        print(f"nnprune: the warm server's child {child} ended without an exit status "
              f"(killed?); rerun, or set {DISABLE}=1 to run each command in its own process",
              file=sys.stderr)
        return 1
    return int(last[1:])


def read_usage(log_text: str) -> tuple[float, float] | None:
    """(CPU seconds, peak RSS in MB) from a job log written by a warm child, else None.

    Snakemake's benchmark measures the job's process tree, which holds only the client: the
    forked child is not in it. benchmarks/study_time.py reads this line instead."""
    for line in reversed(log_text.splitlines()):
        if line.startswith(USAGE_PREFIX):
            fields = dict(part.split("=", 1) for part in line[len(USAGE_PREFIX):].split())
            return float(fields["cpu_seconds"]), float(fields["max_rss_mb"])
    return None


def start_server(executable: str | None = None, timeout: float = 60.0):
    """Start the warm server (`python -m nnprune.pipeline.warm_server`) in the background and
    wait until it accepts.

    Returns (process, socket path), or (None, None) when it did not come up in `timeout` seconds
    (the commands then start cold).
    """
    import subprocess
    folder = tempfile.mkdtemp(prefix="nnprune-warm-")
    path = str(Path(folder) / "sock")
    # -P: do not put the working directory first on sys.path (a checkout there is not the code
    # that the jobs' `nnprune` command imports)
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    command = [executable or sys.executable, *safe, "-m", SERVER_MODULE, "--socket", path]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return process, path
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.terminate()
    return None, None


def stop_server(process, path: str | None) -> None:
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:               # noqa: BLE001
        process.kill()
    if path:
        try:
            os.unlink(path)
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass
