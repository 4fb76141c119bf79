"""A private single-node SLURM (own munged, slurmctld, slurmd) for integration tests.

Everything lives under one directory: slurm.conf, munge key and socket, state, spool, logs.
Clients find it through SLURM_CONF; slurm.conf's AuthInfo points at our munge socket, and
both daemons listen on free ports, so a SLURM or munge already on the machine is untouched.
Needs root (slurmd launches jobs) and Debian's slurm-wlm + munge.

Manual use:  python tests/cluster/slurm.py   (starts, prints `export SLURM_CONF=...`, Ctrl-C stops)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "srun", "sinfo")


def missing_binaries() -> list[str]:
    """Names of the SLURM/munge programs not on PATH (empty when all are there)."""
    return [name for name in DAEMONS + CLIENTS + ("munge",)
            if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]


def _binary(name: str) -> str:
    # Daemons live in /usr/sbin, which is not always on a non-root PATH.
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def process_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


class PrivateSlurm:
    """One slurmctld + one slurmd (`cpus` CPUs, partition `test`) + its own munged.

    `start()` brings it up and waits until the node is idle; `stop()` cancels jobs, stops every
    daemon it started (by process group) and kills any job process left behind.
    """

    def __init__(self, root: Path, cpus: int | None = None, memory_mb: int | None = None,
                 gpus: int = 0, partition: str = "test"):
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 1
        # Declared GPUs need no hardware: they let sbatch --gpus=N be accepted and accounted.
        self.gpus = gpus
        # Memory is a label here, not a limit (no cgroups): declare at least 16 GB so that
        # the rules' mem_mb requests fit on a small CI machine too (see config_overrides).
        self.memory_mb = memory_mb or max(_memory_mb(), 16384)
        self.partition = partition
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        if len(str(self.munge_socket)) > 100:   # sun_path holds 108 bytes
            raise ValueError(f"path too long for a unix socket: {self.munge_socket}")
        self.ctld_log = self.root / "log" / "slurmctld.log"
        self.slurmd_log = self.root / "log" / "slurmd.log"
        self.processes: dict[str, subprocess.Popen] = {}
        self.pids: list[int] = []   # every daemon PID ever started, for the leftover check

    # ---- environment -------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF and the srun wrapper: what every client (sbatch,
        snakemake) needs. Jobs inherit both through sbatch's default --export=ALL."""
        path = f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run a SLURM client command against this cluster; return its stdout."""
        result = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result.stdout

    # ---- start -------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        (self.root / "plugstack.conf").write_text("")   # not /etc/slurm/plugstack.conf
        # Inside a job, snakemake-executor-plugin-slurm-jobstep starts the rule with a nested
        # `srun` whose environment it strips of every SLURM_* variable, SLURM_CONF included.
        # Clusters configured in /etc/slurm do not care; this one exists only through
        # SLURM_CONF, so a wrapper first on PATH puts it back before the real srun runs.
        wrapper = self.root / "bin" / "srun"
        wrapper.parent.mkdir(exist_ok=True)
        wrapper.write_text(f'#!/bin/sh\nexport SLURM_CONF="{self.conf}"\n'
                           f'exec {_binary("srun")} "$@"\n')
        wrapper.chmod(0o755)
        ctld_port, slurmd_port = _free_port(), _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        r = self.root
        self.conf.write_text(f"""\
# Private test cluster; written by tests/cluster/slurm.py
ClusterName=nnprune-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={self.ctld_log}
SlurmdLogFile={self.slurmd_log}
SlurmctldDebug=info
SlurmdDebug=info
DebugFlags=Gres
PlugStackConfig={r}/plugstack.conf
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
# CPUs, not cores, are the only consumable: two 1-CPU jobs share a 2-CPU node whatever its
# topology, and memory requests never serialise jobs.
SelectTypeParameters=CR_CPU
# Trust CPUs/RealMemory below instead of draining the node when the hardware differs.
SlurmdParameters=config_overrides
ReturnToService=2
# squeue must still see finished jobs when Snakemake polls (and for the test's own check).
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
{"GresTypes=gpu" if self.gpus else ""}
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} \
{f"Gres=gpu:{self.gpus}" if self.gpus else ""} State=UNKNOWN
PartitionName={self.partition} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        if self.gpus:   # gres.conf is read next to slurm.conf
            # slurmd wants one character device per GPU: copies of /dev/null stand in for
            # /dev/nvidiaN, so SLURM allocates them and sets CUDA_VISIBLE_DEVICES per job.
            devices = self.root / "dev"
            devices.mkdir(exist_ok=True)
            for index in range(self.gpus):
                os.mknod(devices / f"gpu{index}", stat.S_IFCHR | 0o666, os.makedev(1, 3))
            (self.root / "gres.conf").write_text(
                f"NodeName={self.host} Name=gpu File={devices}/gpu[0-{self.gpus - 1}]\n")

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.stdout", "ab")
        # Own session = own process group, so stop() can signal the daemon and its children.
        process = subprocess.Popen([_binary(name), *args], env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        log.close()
        self.processes[name] = process
        self.pids.append(process.pid)

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}) while waiting for "
                                       f"{what}; logs under {self.root / 'log'}")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout:.0f} s; logs under {self.root / 'log'}")

    def _node_state(self) -> str:
        try:
            return self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10).strip()
        except subprocess.TimeoutExpired:
            return ""

    def start(self) -> PrivateSlurm:
        """Write the config, start munged, slurmctld and slurmd; wait for an idle node."""
        self._write_config()
        m = self.root / "munge"
        # --force: munged wants its socket directory reachable by every user; ours is private
        # (0700, and every client here runs as root). The paths keep it off /run/munge.
        self._spawn("munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                    f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                    f"--seed-file={m / 'munged.seed'}", f"--log-file={self.root / 'log' / 'munged.log'}")
        self._wait("munged", self.munge_socket.exists, timeout=20)
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._wait("slurmctld", lambda: self.run("scontrol", "ping", check=False, timeout=10)
                   .count("UP") > 0)
        self._spawn("slurmd", "-D", "-f", str(self.conf))
        self._wait("an idle node", lambda: self._node_state() == "idle")
        return self

    # ---- stop --------------------------------------------------------------------------
    def owned_processes(self) -> list[int]:
        """PIDs still alive that this cluster started: its daemons, and any process (slurmstepd,
        job scripts, Snakemake inside jobs) whose environment names this cluster's SLURM_CONF."""
        marker = f"SLURM_CONF={self.conf}".encode()
        found = {pid for pid in self.pids if process_alive(pid)}
        me = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if marker in environ.split(b"\0") and process_alive(int(entry.name)):
                found.add(int(entry.name))
        return sorted(found)

    def stop(self, timeout: float = 20) -> list[int]:
        """Cancel jobs, stop the daemons, kill leftovers; return PIDs that would not die."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--full", "--partition", self.partition, check=False, timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # slurmd before slurmctld before munged: each still has its peers while shutting down.
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None:
                continue
            self._signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(process.pid, signal.SIGKILL)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass   # reported by the leftover check below
            self._signal_group(process.pid, signal.SIGKILL)   # children left in the group
        # Job processes run in their own sessions (slurmstepd calls setsid): find them by env.
        deadline = time.monotonic() + timeout
        leftovers = self.owned_processes()
        while leftovers and time.monotonic() < deadline:
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
            leftovers = self.owned_processes()
        return leftovers

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> PrivateSlurm:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    import tempfile

    with PrivateSlurm(Path(tempfile.mkdtemp(prefix="nnprune-slurm-"))) as cluster:
        print(f"export SLURM_CONF={cluster.conf}   # Ctrl-C stops the cluster", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
