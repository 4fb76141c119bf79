"""The rules find their own `nnprune` command: `.venv/bin/snakemake` run from a shell whose PATH
lacks .venv/bin runs its jobs (no exit 127), through the warm server as a local run always does."""
from __future__ import annotations

import copy
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO, VENV_BIN, shell_env
from nnprune.pipeline.launch import USAGE_PREFIX

pytestmark = pytest.mark.integration


def test_a_job_finds_the_cli_without_the_venv_on_path(tmp_path, fashion_root):
    """One small toy job as the target: it runs the `nnprune` command beside the Python that runs
    Snakemake, and the warm server forks it (the child's usage line ends the job's log)."""
    env = shell_env()
    assert shutil.which("nnprune", path=env["PATH"]) is None, env["PATH"]
    config = copy.deepcopy(yaml.safe_load((REPO / "config" / "smoke.yaml").read_text(encoding="utf-8")))
    config.update(study="cli-path", toy={"datasets": ["moons"], "criteria": ["nuclear", "l1"], "seeds": 1, "steps": 30,
                                          "width": 0.1, "train_points": 100, "test_points": 50, "fractions": [0.5],
                                          "grid": 16})
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    target = "results/cli-path/toy/moons/toy.csv"
    result = subprocess.run([str(VENV_BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "-d", str(tmp_path),
                             "--configfile", str(configfile), "--config", f"data_root={fashion_root}", "--cores", "1",
                             target], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / target).stat().st_size > 0
    log = (tmp_path / "results" / "cli-path" / "logs" / "toy" / "moons.log").read_text()
    assert "command not found" not in log
    assert log.splitlines()[-1].startswith(USAGE_PREFIX), log[-2000:]


def test_the_entry_point_hands_a_command_to_the_warm_server_or_runs_it(tmp_path, monkeypatch):
    """`warm_server.serve` runs the function it is given: here a stand-in (exit status 40 + the number of
    arguments) instead of the CLI, with nothing preloaded. `nnprune`'s entry point hands its arguments to
    that server while NNPRUNE_WARM names it, and calls `cli.main` itself without one or with NNPRUNE_NO_WARM."""
    import os
    import signal
    import sys
    import time

    from nnprune.pipeline import cli, entry, launch

    path = str(tmp_path / "sock")
    server = subprocess.Popen([sys.executable, "-c", "import sys\nfrom nnprune.pipeline.warm_server import serve\n"
                               "sys.exit(serve(sys.argv[1], run=lambda argv: 40 + len(argv), preload=()))", path])
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    ran_here = []
    monkeypatch.setattr(cli, "main", lambda argv: ran_here.append(argv) or 7)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        monkeypatch.setenv(launch.ENV, path)
        monkeypatch.delenv(launch.DISABLE, raising=False)
        monkeypatch.setattr(sys, "argv", ["nnprune", "claims", "--help"])
        assert entry.main() == 42 and ran_here == []              # run by the server's child
        assert launch.run_warm(["a", "b", "c"]) == 43
        monkeypatch.setenv(launch.DISABLE, "1")
        assert launch.run_warm(["a"]) is None
        assert entry.main() == 7 and ran_here == [["claims", "--help"]]
        monkeypatch.delenv(launch.DISABLE)
        monkeypatch.setenv(launch.ENV, str(tmp_path / "no-server"))
        assert entry.main() == 7 and len(ran_here) == 2
    finally:
        for signum, handler in handlers.items():     # run_warm forwards signals to the child it waits for
            signal.signal(signum, handler)
        launch.stop_server(server, path)
