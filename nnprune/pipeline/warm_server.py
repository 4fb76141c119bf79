"""Warm start, the server's side: one process that imports torch and the steps once, then forks a
child per `nnprune` command sent to its Unix socket (the client's side, and why, are in `launch`).

The server is given the function that runs a command (`serve(path, run)`): its `__main__` below,
which `launch.start_server` starts as `python -m nnprune.pipeline.warm_server --socket PATH`,
passes `cli.main`. The child it forks becomes the client's process (its working directory,
environment, stdin/stdout/stderr), re-seeds Python's `random` from fresh entropy as a new process
would have, runs the command, and reports the exit status.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable

from nnprune.pipeline.launch import HEADER, USAGE_PREFIX
from nnprune.pipeline.process import tune_allocator

# What every step imports: loaded once by the server, inherited by each forked child.
PRELOAD = ("torch", "torch_pruning", "fvcore.nn", "nnprune.pipeline.steps", "nnprune.api", "nnprune.pruning",
           "nnprune.pruning.scoring", "nnprune.engine.metrics", "nnprune.pipeline.cli")


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _child(conn: socket.socket, request: dict, fds: list[int], run: Callable[[list[str]], int]) -> None:
    """In the forked child: become the client's process, run the command, report, exit."""
    code = 1
    try:
        conn.sendall(b"P%d\n" % os.getpid())   # first, so that it always precedes the exit status
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["nnprune", *request["argv"]]
        import random
        random.seed()               # fresh entropy, as a cold process would have; the API seeds each step

        def watch() -> None:        # the client went away (killed): stop as it would have
            try:
                conn.recv(1)
            except OSError:
                pass
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch, daemon=True).start()
        try:
            code = _exit_code(run(list(request["argv"])))
        except SystemExit as stop:
            code = _exit_code(stop.code)
    except BaseException:           # noqa: BLE001 - the child must always report and exit
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            _report_usage()
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:           # noqa: BLE001
            pass
        try:
            conn.sendall(b"E%d\n" % code)
        except OSError:
            pass
        os._exit(code & 0xFF)


def _report_usage() -> None:
    """The child's own CPU and peak memory, as the last line of its stderr (`launch.read_usage`
    reads it back)."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{USAGE_PREFIX} cpu_seconds={usage.ru_utime + usage.ru_stime:.3f} "
          f"max_rss_mb={usage.ru_maxrss / 1024:.1f}", file=sys.stderr)


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    buffer = bytearray(data)
    while len(buffer) < HEADER.size:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("request cut short")
        buffer.extend(chunk)
    (size,) = HEADER.unpack_from(buffer)
    while len(buffer) < HEADER.size + size:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("request cut short")
        buffer.extend(chunk)
    return json.loads(buffer[HEADER.size:HEADER.size + size]), list(fds)


def serve(path: str, run: Callable[[list[str]], int], preload: tuple[str, ...] = PRELOAD) -> int:
    """Import `preload`, then fork one child per request on the Unix socket `path`; each child
    calls `run(argv)` and reports what it returns as the command's exit status.

    Stops when the process that started it (Snakemake) has gone, on SIGTERM, or when the socket
    file is removed. Must not run torch operations itself: a child forked from a process whose
    thread pools have started would inherit them broken.
    """
    tune_allocator()
    import importlib
    for name in preload:
        importlib.import_module(name)
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)          # children are reaped automatically
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    partial = f"{path}.{os.getpid()}.tmp"
    listener.bind(partial)
    listener.listen(16)
    os.replace(partial, path)       # the path appears only once the server accepts
    listener.settimeout(1.0)
    try:
        while os.getppid() == parent and os.path.exists(path):
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError, ConnectionError):
                conn.close()
                continue
            if os.fork() == 0:
                listener.close()
                _child(conn, request, fds, run)
            for fd in fds:
                os.close(fd)
            conn.close()
    finally:
        listener.close()
        try:
            os.unlink(path)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    import argparse

    from nnprune.pipeline.cli import main as run_command

    parser = argparse.ArgumentParser(description="nnprune's warm server (started by the workflow: "
                                                 "nnprune.pipeline.launch.start_server)")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    sys.exit(serve(parser.parse_args().socket, run=run_command))
