"""How an `nnprune` command starts: allocator settings, and warm start from a pre-imported server.

Each Snakemake job runs `nnprune <step>` in a fresh process, and each process imports torch,
torch-pruning and fvcore before it does any work: about 3 s of a 10 s prune job on two CPU cores
(benchmarks/RESULTS.md, "Process overhead"). In a local run the workflow starts one **warm server**
(`nnprune warm-server`, from `onstart` in workflow/rules/common.smk) that imports them once, and
sets `NNPRUNE_WARM` to its socket. The `nnprune` command then sends its arguments, working
directory, environment and its stdin/stdout/stderr to that server, which forks a child that runs
the command as the cold process would, and replies with the child's exit status. Without the
variable (a cluster job, a shell), with `NNPRUNE_NO_WARM=1`, or when the server cannot be reached,
the command runs in its own process as before: the outputs are the same either way (a test
compares them).

Torch-free: the client side runs before any heavy import.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

ENV = "NNPRUNE_WARM"            # the server's socket path, set for the jobs by the workflow
DISABLE = "NNPRUNE_NO_WARM"     # set (to anything but "" or "0") to always start cold
_HEADER = struct.Struct("!I")
# What every step imports: loaded once by the server, inherited by each forked child.
PRELOAD = ("torch", "torch_pruning", "fvcore.nn", "nnprune.pipeline.steps", "nnprune.api", "nnprune.pruning",
           "nnprune.pruning.scoring", "nnprune.engine.metrics", "nnprune.pipeline.cli")

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


# ---------------------------------------------------------------------------------------------
# client

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
    """Run `nnprune argv` in the warm server; None when there is no server to run it."""
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
        socket.send_fds(conn, [_HEADER.pack(len(request)) + request], [0, 1, 2])
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


# ---------------------------------------------------------------------------------------------
# server

def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
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
        random.seed()               # fresh entropy, as a cold process would have; steps seed their own

        def watch() -> None:        # the client went away (killed): stop as it would have
            try:
                conn.recv(1)
            except OSError:
                pass
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch, daemon=True).start()
        from nnprune.pipeline import cli
        try:
            code = _exit_code(cli.main(list(request["argv"])))
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


USAGE_PREFIX = "nnprune warm child:"


def _report_usage() -> None:
    """The child's own CPU and peak memory, as the last line of its stderr (the job's log).

    Snakemake's benchmark measures the job's process tree, which holds only the client: the
    forked child is not in it. benchmarks/study_time.py reads this line instead."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{USAGE_PREFIX} cpu_seconds={usage.ru_utime + usage.ru_stime:.3f} "
          f"max_rss_mb={usage.ru_maxrss / 1024:.1f}", file=sys.stderr)


def read_usage(log_text: str) -> tuple[float, float] | None:
    """(CPU seconds, peak RSS in MB) from a job log written by a warm child, else None."""
    for line in reversed(log_text.splitlines()):
        if line.startswith(USAGE_PREFIX):
            fields = dict(part.split("=", 1) for part in line[len(USAGE_PREFIX):].split())
            return float(fields["cpu_seconds"]), float(fields["max_rss_mb"])
    return None


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    buffer = bytearray(data)
    while len(buffer) < _HEADER.size:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("request cut short")
        buffer.extend(chunk)
    (size,) = _HEADER.unpack_from(buffer)
    while len(buffer) < _HEADER.size + size:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("request cut short")
        buffer.extend(chunk)
    return json.loads(buffer[_HEADER.size:_HEADER.size + size]), list(fds)


def serve(path: str, preload: tuple[str, ...] = PRELOAD) -> int:
    """Import `preload`, then fork one child per request on the Unix socket `path`.

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
                _child(conn, request, fds)
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


def start_server(executable: str | None = None, timeout: float = 60.0):
    """Start `nnprune warm-server` in the background and wait until it accepts.

    Returns (process, socket path), or (None, None) when it did not come up in `timeout` seconds
    (the commands then start cold).
    """
    import subprocess
    folder = tempfile.mkdtemp(prefix="nnprune-warm-")
    path = str(Path(folder) / "sock")
    # -P: do not put the working directory first on sys.path (a checkout there is not the code
    # that the jobs' `nnprune` command imports)
    safe = ["-P"] if sys.version_info >= (3, 11) else []
    command = [executable or sys.executable, *safe, "-m", "nnprune.pipeline.launch", "--socket", path]
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


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="nnprune's warm server (started by the workflow)")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    sys.exit(serve(parser.parse_args().socket))
