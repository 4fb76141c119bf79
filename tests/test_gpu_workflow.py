"""The workflow's GPU path without a GPU: config/gpu-fmnist.yaml's jobs, the resources its
network jobs ask Snakemake for, and the `gpu_slots` limit that lets k of them share one GPU in
a local run (`jobs_per_gpu`, overridden by the profile or `--resources gpu_slots=N`)."""
from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO, require, run_snakemake

CONFIG = REPO / "config" / "gpu-fmnist.yaml"
LOCAL_PROFILE = REPO / "profiles" / "local"
NETWORK_RULES = {"train", "score_data", "prune", "finetune"}
# Counted by hand from config/gpu-fmnist.yaml: 2 archs x 1 train_size x 1 noise x 3 seeds = 6
# baselines; per baseline 5 data-driven criteria x 1 score_images x 2 prunings + 4 data-free
# criteria x 2 prunings = 18 runs, each fine-tuned; the toy study (3 datasets + report).
EXPECTED_JOBS = {"train": 6, "score_data": 6, "score_free": 6, "prune": 108, "finetune": 108,
                 "aggregate": 1, "report_tables_figures": 1, "claims": 1, "toy_run": 3,
                 "toy_report": 1, "all": 1}


def _schema_default() -> int:
    from nnprune.plan.studyconfig import load_schema

    return load_schema()["properties"]["jobs_per_gpu"]["default"]


def _jobs(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job in `snakemake --dry-run` output, in order."""
    jobs, rule = [], None
    for line in dry_run_output.splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            rule = header.group(1)
            jobs.append((rule, {}))
        elif rule and line.strip().startswith("resources:"):
            items = line.strip().removeprefix("resources: ").split(", ")
            jobs[-1] = (rule, dict(item.split("=", 1) for item in items))
            rule = None
    return jobs


def _job_stats(dry_run_output: str) -> dict[str, int]:
    stats = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\n(?:total|\n)", dry_run_output, re.S)
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", stats.group(1), re.M)}


# ---- config/gpu-fmnist.yaml: its jobs and what they ask for -------------------------------

def test_expected_counts_follow_from_the_grid():
    """The hand-counted EXPECTED_JOBS, recomputed from the config file itself."""
    from nnprune.plan.names import data_driven

    config = yaml.safe_load(CONFIG.read_text())
    baselines = (len(config["archs"]) * len(config["train_size"]) * len(config["label_noise"])
                 * len(config["seeds"]))
    data = [c for c in config["criteria"] if data_driven(c)]
    free = [c for c in config["criteria"] if not data_driven(c)]
    runs = baselines * (len(data) * len(config["score_images"]) + len(free)) * len(config["pruning"])
    assert config["grid"]["mode"] == "full" and "pruning" not in config["finetune"]
    assert (baselines, len(data), len(free), runs) == (6, 5, 4, 108)
    assert EXPECTED_JOBS["prune"] == EXPECTED_JOBS["finetune"] == runs
    assert EXPECTED_JOBS["train"] == EXPECTED_JOBS["score_data"] == baselines
    assert sum(EXPECTED_JOBS.values()) == 242


def test_gpu_fmnist_passes_the_config_checks_without_torch():
    """Every SLURM job re-parses the workflow: this config's checks stay torch-free too."""
    code = ("import sys, yaml\n"
            "from nnprune.plan.studyconfig import check, check_keys\n"
            f"config = yaml.safe_load(open({str(CONFIG)!r}))\n"
            "check_keys(config)\n"
            "check(config, require_data=False)\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out[-1] == "False", out


@pytest.fixture(scope="module")
def gpu_fmnist_dry_run(snakemake_bin, tmp_path_factory) -> str:
    """`snakemake --profile profiles/local --dry-run` of config/gpu-fmnist.yaml (stdout)."""
    result = run_snakemake(snakemake_bin, tmp_path_factory.mktemp("gpu-fmnist"), REPO / "data",
                           "--profile", str(LOCAL_PROFILE), "--dry-run", configfile=CONFIG,
                           timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.integration
def test_gpu_fmnist_dry_run_lists_the_expected_jobs(gpu_fmnist_dry_run):
    assert _job_stats(gpu_fmnist_dry_run) == EXPECTED_JOBS
    counted = {}
    for rule, _ in _jobs(gpu_fmnist_dry_run):
        counted[rule] = counted.get(rule, 0) + 1
    assert counted == EXPECTED_JOBS


@pytest.mark.integration
def test_every_network_job_asks_for_one_gpu_slot(gpu_fmnist_dry_run):
    jobs = _jobs(gpu_fmnist_dry_run)
    assert {rule for rule, _ in jobs} >= NETWORK_RULES
    for rule, resources in jobs:
        wanted = {"1"} if rule in NETWORK_RULES else {None}
        assert {resources.get("gpu_slots"), resources.get("gpu")} == wanted, (rule, resources)


def test_gpu_slots_stays_out_of_sbatch():
    """snakemake-executor-plugin-slurm builds sbatch from the resources it knows: `gpu` becomes
    --gpus=1, an unknown `gpu_slots` is not passed on (so no cluster rejects it)."""
    try:
        from snakemake_executor_plugin_slurm.submit_string import get_submit_command
        from snakemake_executor_plugin_slurm.utils import set_gres_string
    except ImportError:
        require(False, "snakemake-executor-plugin-slurm is not installed (pip install -e .[slurm])")

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=Resources(gpu=1, gpu_slots=1, mem_mb=4000, runtime=60,
                                              _cores=2, _nodes=1),
                          threads=2, is_group=lambda: False)
    params = dict(run_uuid="u", slurm_logfile="log", comment_str="rule_finetune", account="",
                  partition="", workdir="/w")
    call = get_submit_command(job, params) + set_gres_string(job)
    assert "--gpus=1" in call and "--mem 4000" in call, call
    assert "slots" not in call, call


# ---- the global gpu_slots limit -------------------------------------------------------------

# Runs Snakemake's own command line, but stops where execution would begin and prints the
# global gpu_slots limit and its scope as the parsed workflow holds them.
PROBE = """
import sys
import snakemake.api

def probe(self, *args, **kwargs):
    workflow = self.workflow_api._workflow
    slots = workflow.global_resources.get("gpu_slots").value
    print("PROBE", slots, workflow.resource_scopes.is_local("gpu_slots"))
    raise SystemExit(0)

snakemake.api.DAGApi.execute_workflow = probe
from snakemake.cli import main
main(sys.argv[1:])
"""


def _probe(tmp_path, *args: str, config: str = "") -> tuple[str, bool]:
    cmd = [sys.executable, "-c", PROBE, "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(CONFIG), *args,
           "--config", f"data_root={REPO / 'data'}", *config.split()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    found = re.search(r"^PROBE (\S+) (\S+)$", result.stdout, re.M)
    assert result.returncode == 0 and found, result.stdout[-2000:] + result.stderr[-3000:]
    return found.group(1), found.group(2) == "True"


@pytest.mark.integration
@pytest.mark.parametrize("args, config, expected", [
    pytest.param([], "", "default", id="schema-default"),
    pytest.param([], "jobs_per_gpu=2", "2", id="config"),
    pytest.param(["--profile", str(LOCAL_PROFILE)], "jobs_per_gpu=2", "2", id="local-profile"),
    pytest.param(["--resources", "gpu_slots=3"], "jobs_per_gpu=2", "3", id="command-line"),
    pytest.param(["--profile", "TMP_PROFILE"], "jobs_per_gpu=2", "1", id="profile-sets-it"),
    pytest.param(["--profile", "TMP_PROFILE", "--resources", "gpu_slots=5"], "jobs_per_gpu=2", "5",
                 id="command-line-over-profile"),
    pytest.param([], "jobs_per_gpu=2 device=cpu", "None", id="cpu-study"),
])
def test_gpu_slots_limit(args, config, expected, tmp_path):
    """The config's jobs_per_gpu unless the profile or the command line gives gpu_slots."""
    profile = tmp_path / "profile"
    profile.mkdir()
    local = yaml.safe_load((LOCAL_PROFILE / "config.yaml").read_text())
    (profile / "config.yaml").write_text(yaml.safe_dump({**local, "resources": ["gpu_slots=1"]}))
    args = [str(profile) if a == "TMP_PROFILE" else a for a in args]
    if expected == "default":
        expected = str(_schema_default())
    slots, local_scope = _probe(tmp_path, *args, config=config)
    assert slots == expected
    # "local": a SLURM run's main process does not count it across the jobs it submits.
    assert local_scope


@pytest.mark.integration
def test_gpu_slots_limit_how_many_jobs_run_at_once(snakemake_bin, fashion_root, tmp_path):
    """The real mechanism (workflow/rules/common.smk, gpu_resources()) on sleep jobs: with 6
    cores free, jobs_per_gpu=2 runs at most 2 at once; --resources gpu_slots=3 at most 3."""
    (tmp_path / "workflow").symlink_to(REPO / "workflow")   # common.smk finds the schema here
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        'include: "workflow/rules/common.smk"\n\n\n'
        "rule all:\n"
        "    input:\n"
        "        [f\"out/{i}.txt\" for i in range(6)],\n"
        "    default_target: True\n\n\n"
        "rule gpu_job:\n"
        "    output:\n"
        '        "out/{i}.txt",\n'
        "    resources:\n"
        "        **gpu_resources(),\n"
        "    shell:\n"
        '        "date +%s.%N > {output}.tmp; sleep 1.5; date +%s.%N >> {output}.tmp; "\n'
        '        "mv {output}.tmp {output}"\n')

    def most_at_once(*extra: str) -> int:
        for path in (tmp_path / "out").glob("*"):
            path.unlink()
        result = subprocess.run(
            [snakemake_bin, "--snakefile", str(snakefile), "--directory", str(tmp_path),
             "--configfile", str(CONFIG), "--cores", "6", *extra,
             "--config", f"data_root={fashion_root}", "jobs_per_gpu=2"],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        events = []
        for path in (tmp_path / "out").glob("*.txt"):
            start, end = map(float, path.read_text().split())
            events += [(start, 1), (end, -1)]
        assert len(events) == 12
        running = most = 0
        for _, step in sorted(events):
            running += step
            most = max(most, running)
        return most

    assert most_at_once() == 2
    assert most_at_once("--resources", "gpu_slots=3") == 3
