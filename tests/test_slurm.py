"""The workflow on a real (private, single-node) SLURM through profiles/slurm, and the GPU
requests the profile makes when a study runs on CUDA."""
from __future__ import annotations

import math
import os
import re
import time

import pandas as pd
import pytest
import yaml

from cluster.slurm import PrivateSlurm, missing_binaries, process_alive
from conftest import REPO, require, run_snakemake, smoke_part_config, smoke_part_rows

PROFILE = REPO / "profiles" / "slurm"
# The profile as users run it (the test cluster has no accounting, like many small ones), plus
# a short first status check and kept job logs, which the test reads; a real run needs neither.
TEST_FLAGS = ["--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]
GPU_RULES = {"train", "score_data", "prune", "finetune"}
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


def _require_slurm() -> None:
    require(os.geteuid() == 0, "the SLURM test starts slurmd, which needs root")
    missing = missing_binaries()
    require(not missing, f"SLURM/munge programs missing: {', '.join(missing)} "
                         "(apt-get install slurm-wlm munge)")


def _stop_and_check(cluster: PrivateSlurm) -> None:
    """Stop the cluster; fail when any process it started is still alive."""
    leftovers = cluster.stop()
    alive = [pid for pid in cluster.pids if process_alive(pid)]
    assert not leftovers and not alive, (
        f"SLURM/munge processes left running: {leftovers or alive}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A private 2-CPU, 2-GPU (declared, not real) SLURM for this module; stopped and checked
    for leftover processes at teardown, whether the tests passed or failed."""
    _require_slurm()
    cluster = PrivateSlurm(tmp_path_factory.mktemp("slurm"), cpus=2, gpus=2)
    try:
        cluster.start()
        yield cluster
    finally:
        _stop_and_check(cluster)


@pytest.fixture
def slurm_env(slurm, monkeypatch):
    """Point this test's snakemake (and, through --export=ALL, its jobs) at the cluster."""
    for name in ("SLURM_CONF", "PATH"):
        monkeypatch.setenv(name, slurm.env[name])
    monkeypatch.setenv("NNPRUNE_SLURM_PARTITION", slurm.partition)   # the documented override
    return slurm


def _jobs_by_rule(dry_run_output: str) -> dict[str, list[str]]:
    """rule name -> the `resources:` line of each of its jobs, from `snakemake -n` output."""
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in dry_run_output.splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            rule = header.group(1)
        elif rule and line.strip().startswith("resources:"):
            jobs.setdefault(rule, []).append(line.strip())
            rule = None
    return jobs


def _resources(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.removeprefix("resources: ").split(", "))


def _deterministic(frame: pd.DataFrame) -> pd.DataFrame:
    """runs.csv without the wall-clock columns (seconds_*, latency_*)."""
    return frame[[c for c in frame.columns if not c.startswith(("seconds", "latency"))]]


# ---- GPU requests (dry runs: no SLURM needed) ------------------------------------------------

@pytest.mark.parametrize("profile", ["slurm", "local"])
def test_cuda_study_requests_one_gpu_per_network_job(profile, snakemake_bin, tmp_path):
    # "device=cuda" follows run_snakemake's own `--config data_root=...`, so it joins that list.
    result = run_snakemake(snakemake_bin, tmp_path, REPO / "data", "device=cuda",
                           "--profile", str(REPO / "profiles" / profile), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _jobs_by_rule(result.stdout)
    assert GPU_RULES <= set(jobs), sorted(jobs)
    for rule, lines in jobs.items():
        gpus = {_resources(line).get("gpu") for line in lines}
        assert gpus == ({"1"} if rule in GPU_RULES else {None}), (rule, gpus)
    if profile == "slurm":
        # The partition: $NNPRUNE_SLURM_PARTITION, else empty (the cluster's default one).
        partition = os.environ.get("NNPRUNE_SLURM_PARTITION", "")
        assert all(_resources(line)["slurm_partition"] == partition for lines in jobs.values()
                   for line in lines)


def test_cpu_study_requests_no_gpu(snakemake_bin, tmp_path):
    result = run_snakemake(snakemake_bin, tmp_path, REPO / "data", "device=cpu",
                           "--profile", str(PROFILE), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _jobs_by_rule(result.stdout)
    assert GPU_RULES <= set(jobs), sorted(jobs)
    assert not [line for lines in jobs.values() for line in lines if "gpu=" in line]


def test_paper_config_dry_run_on_slurm(snakemake_bin, tmp_path):
    config = REPO / "config" / "paper-cifar10.yaml"
    if not config.exists():
        pytest.skip("config/paper-cifar10.yaml not written yet")
    result = run_snakemake(snakemake_bin, tmp_path, REPO / "data", "--profile", str(PROFILE),
                           "--dry-run", configfile=config)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _jobs_by_rule(result.stdout)
    assert {"train", "finetune"} <= set(jobs), sorted(jobs)
    if str(yaml.safe_load(config.read_text()).get("device", "")).startswith("cuda"):
        for rule in GPU_RULES & set(jobs):
            assert all(_resources(line).get("gpu") == "1" for line in jobs[rule]), rule


# ---- the private cluster itself --------------------------------------------------------------

@pytest.mark.integration
def test_cluster_stop_kills_running_jobs(tmp_path):
    """stop() must leave nothing behind even while jobs (and job steps) are running."""
    _require_slurm()
    cluster = PrivateSlurm(tmp_path / "c", cpus=2)
    try:
        cluster.start()
        for wrap in ("sleep 300", "srun -n1 sleep 300"):
            cluster.run("sbatch", "-n1", "-c1", "--mem", "100", "-o", str(tmp_path / "%j.out"),
                        "--wrap", wrap)
        deadline = time.monotonic() + 30
        while set(cluster.run("squeue", "-h", "-t", "R", "-o", "%i").split()) != {"1", "2"}:
            assert time.monotonic() < deadline, cluster.run("squeue")
            time.sleep(0.5)
        # both batch scripts, the step's slurmstepd and the sleeps are the cluster's
        assert len(cluster.owned_processes()) > len(cluster.pids)
    finally:
        _stop_and_check(cluster)
    assert cluster.owned_processes() == []


# ---- the smoke study on SLURM ---------------------------------------------------------------

# Each SLURM job starts a fresh Python that parses the workflow and imports torch, and the plugin
# waits 10 s longer at each status check that finds no job finished: the whole smoke study took
# 479 s here against the local run's 163 s. So the test runs conftest's part of it (every rule).
@pytest.mark.integration
def test_smoke_study_on_slurm_matches_local(smoke_local, slurm_env, snakemake_bin, fashion_root,
                                            tmp_path):
    cluster = slurm_env
    local_dir, local_seconds = smoke_local
    started = time.perf_counter()
    result = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--profile", str(PROFILE),
                           *TEST_FLAGS, configfile=smoke_part_config(tmp_path))
    seconds = time.perf_counter() - started
    log = result.stdout + result.stderr
    (tmp_path / "snakemake.log").write_text(log)
    assert result.returncode == 0, log[-4000:]
    print(f"smoke workflow: a part on SLURM {seconds:.1f} s, all of it locally {local_seconds:.1f} s")

    # Every job of the DAG (all but the input-only target rule) was submitted to SLURM ...
    stats = re.search(r"Job stats:\n(.*?)\n\n", log, re.S).group(1)
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}
    submitted = {int(job): int(slurm_id) for job, slurm_id in SUBMITTED.findall(log)}
    assert len(submitted) == counts["total"] - counts.get("all", 0), (counts, submitted)
    slurm_ids = sorted(set(submitted.values()))

    # ... and SLURM knows each of them: allocated by slurmctld, COMPLETED in partition `test`,
    # with the plugin's per-job log file.
    ctld_log = cluster.ctld_log.read_text()
    queue = {}
    for row in cluster.run("squeue", "-h", "-t", "all", "-o", "%i %P %T").splitlines():
        job_id, partition, state = row.split()
        queue[int(job_id)] = (partition, state)
    logs = {int(p.stem) for p in (tmp_path / ".snakemake" / "slurm_logs").rglob("*.log")}
    for slurm_id in slurm_ids:
        # the main scheduler logs "sched: Allocate JobId=N ...", the backfill scheduler
        # "sched/backfill: _start_job: Started JobId=N ..."; either starts the job
        assert re.search(rf"(?:Allocate|Started) JobId={slurm_id}\b", ctld_log), slurm_id
        assert queue.get(slurm_id) == ("test", "COMPLETED"), (slurm_id, queue.get(slurm_id))
        assert slurm_id in logs, slurm_id
    # The 2-CPU node ran 1-CPU jobs two at a time (the two scoring jobs, the prunes side by side).
    assert re.search(r"sched: Allocate JobId=\d+ NodeList=\S+ #CPUs=1 ", ctld_log)
    spans = []
    for row in cluster.run("squeue", "-h", "-t", "all", "-o", "%i %S %e").splitlines():
        job_id, start, end = row.split()
        if int(job_id) in slurm_ids:
            spans.append((pd.Timestamp(start), pd.Timestamp(end)))
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])

    # The science is the same: runs.csv equals the local run's rows of the same part, column for column.
    local = smoke_part_rows(pd.read_csv(local_dir / "results" / "smoke" / "runs.csv"))
    remote = pd.read_csv(tmp_path / "results" / "smoke" / "runs.csv")
    assert list(remote.columns) == list(local.columns)
    assert len(remote) == len(local) > 0
    assert set(remote.criterion) == {"nuclear", "taylor", "l1", "random"} and set(remote.budget) == {"5b", "2e"}
    pd.testing.assert_frame_equal(_deterministic(remote), _deterministic(local), check_exact=True)
    for column in ("acc_base", "acc_pruned", "acc_finetuned"):
        pairs = zip(local[column], remote[column])
        assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in pairs), column


@pytest.mark.integration
def test_cuda_jobs_get_one_gpu_each_from_slurm(slurm_env, snakemake_bin, fashion_root, tmp_path):
    """With device: cuda, each training job is submitted with --gpus=1 and the two that run at
    once get different GPUs. (The GPUs are declared, not real: nnprune falls back to the CPU;
    the allocation is what is checked.)"""
    cluster = slurm_env
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config.update(device="cuda", train_size=[300], val_size=200, label_noise=[0.0, 0.2])
    config["train"]["epochs"] = 1
    configfile = tmp_path / "tiny-cuda.yaml"
    configfile.write_text(yaml.safe_dump(config))
    arch, seed = next(iter(config["archs"])), config["seeds"][0]
    targets = [f"results/{config['study']}/baselines/{config['dataset']}__{arch}__n300__ln{noise}"
               f"__s{seed}/model.pt" for noise in config["label_noise"]]
    result = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--profile", str(PROFILE),
                           *TEST_FLAGS, *targets, configfile=configfile)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert all((tmp_path / target).exists() for target in targets)
    slurm_ids = sorted({int(s) for _, s in SUBMITTED.findall(log)})
    assert len(slurm_ids) == 2, slurm_ids
    for slurm_id in slurm_ids:
        job = cluster.run("scontrol", "show", "job", str(slurm_id))
        assert "TresPerJob=gres:gpu:1" in job and "JobState=COMPLETED" in job, job
    # slurmctld (DebugFlags=Gres) logs the GPU index it gave each job.
    ctld_log = cluster.ctld_log.read_text()
    index = {int(job): int(gpu) for job, gpu in re.findall(
        r"gres_job_state gres:gpu\S* type:\S+ job:(\d+) flags:.*?gres_bit_alloc\[0\]:(\d+) of",
        ctld_log, re.S)}
    assert sorted(index[i] for i in slurm_ids) == [0, 1], index
