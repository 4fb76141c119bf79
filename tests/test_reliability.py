"""Reliability (issue 8): bit-identical CPU results from separate processes, resume after SIGKILL
(CLI and workflow), atomic outputs, one clear error per bad input with nothing lost, no code run
from data files, and provenance in every metrics.json."""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import REPO, in_smoke_part, require, run_snakemake, smoke_part_config, smoke_part_rows
from nnprune.pipeline import launch

CPU = ["--device", "cpu", "--threads", "1", "--seed", "3"]
EPOCHS = 2
TIMING_KEYS = ("seconds", "per_second")     # wall-clock figures legitimately differ between runs


def train_args(data_root: Path) -> list[str]:
    """A baseline small enough for a test (1,000 images, width 0.25) with a few epochs to kill."""
    return ["--arch", "resnet20", "--width", "0.25", "--data-root", str(data_root),
            "--train-size", "1000", "--val-size", "500", "--epochs", str(EPOCHS), *CPU]


@pytest.fixture(scope="module")
def nnprune_bin() -> str:
    path = shutil.which("nnprune")
    require(path is not None, "nnprune is not on PATH; run `make setup` and use `make test`")
    return path


def _pipeline(nnprune_bin: str, root: Path, data_root: Path) -> list[list[str]]:
    """train -> score (nuclear, l1) -> prune (macs:0.3, BN recalibration) -> fine-tune."""
    return [
        [nnprune_bin, "train", *train_args(data_root), "--out", f"{root}/train"],
        [nnprune_bin, "score", "--model", f"{root}/train/model.pt", "--criterion", "nuclear,l1",
         "--score-images", "64", *CPU, "--out", f"{root}/scores"],
        [nnprune_bin, "prune", "--model", f"{root}/train/model.pt",
         "--scores", f"{root}/scores/nuclear_si64/scores.pt", "--pruning", "macs:0.3",
         "--bn-recalibration", "128", *CPU, "--out", f"{root}/pruned"],
        [nnprune_bin, "finetune", "--model", f"{root}/pruned/model.pt", "--epochs", "1",
         "--batches-per-epoch", "4", "--lr", "0.01", *CPU, "--out", f"{root}/finetuned"],
    ]


@pytest.fixture(scope="module")
def warm_server():
    """nnprune's warm server (nnprune/pipeline/warm_server.py), as a local workflow run starts it: the socket
    path, for NNPRUNE_WARM."""
    process, path = launch.start_server()
    assert path is not None, "the warm server did not come up"
    yield path
    launch.stop_server(process, path)


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory, nnprune_bin, fashion_root, warm_server) -> tuple[Path, Path, list[str]]:
    """The same CLI pipeline run twice side by side (each uses one thread): chain a starts each
    command in its own process, chain b runs each in a child forked by the warm server. Also
    returns the two chains' merged output."""
    roots = [tmp_path_factory.mktemp(name) for name in ("pipeline-a", "pipeline-b")]
    cold = {k: v for k, v in os.environ.items() if k != launch.ENV}
    environments = [cold, {**cold, launch.ENV: warm_server}]
    chains = [subprocess.Popen(["bash", "-c", " && ".join(shlex.join(c) for c in
                                                        _pipeline(nnprune_bin, root, fashion_root))],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
              for root, env in zip(roots, environments)]
    outputs = []
    for chain in chains:
        output, _ = chain.communicate(timeout=900)
        assert chain.returncode == 0, output[-4000:]
        outputs.append(output)
    return roots[0], roots[1], outputs


def load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_identical(a, b, where: str = "") -> None:
    """Same structure, and every tensor equal bit for bit (dtype and values)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items()
                if not (isinstance(k, str) and any(t in k for t in TIMING_KEYS))}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def results(path: Path) -> dict:
    return json.loads(path.read_text())["results"]


# ------------------------------------------------------------------ 1. determinism
@pytest.mark.integration
def test_cpu_pipeline_is_bit_identical_across_processes(pipelines):
    """Same config and seed, two processes, one of them forked by the warm server: every
    checkpoint, score and accuracy is identical."""
    a, b, (cold_output, warm_output) = pipelines
    # chain b really ran in the warm server (each of its 4 steps reports its child's usage), a not
    assert warm_output.count(launch.USAGE_PREFIX) == 4, warm_output[-2000:]
    assert launch.USAGE_PREFIX not in cold_output
    for name in ("train/model.pt", "train/last.pt", "scores/nuclear_si64/scores.pt",
                 "scores/l1_si0/scores.pt", "pruned/model.pt", "finetuned/model.pt"):
        # without the wall-clock fields (last.pt's history records each epoch's seconds)
        assert_identical(without_timing(load(a / name)), without_timing(load(b / name)), name)
    removed = load(a / "pruned/model.pt")["removed"]
    assert sum(len(v) for v in removed.values()) > 0          # the same channels, and some
    for step in ("train", "scores/nuclear_si64", "pruned", "finetuned"):
        assert without_timing(results(a / step / "metrics.json")) == \
            without_timing(results(b / step / "metrics.json")), step
    accuracies = [results(a / "train/metrics.json")["acc_test"],
                  results(a / "pruned/metrics.json")["pruned"]["acc_bn_recalibrated"],
                  results(a / "finetuned/metrics.json")["acc_test"]]
    assert all(10.0 < acc <= 100.0 for acc in accuracies), accuracies   # real runs, not chance


@pytest.mark.integration
def test_deterministic_config_key_reaches_every_network_step(snakemake_bin, tmp_path):
    def commands(*extra: str) -> list[str]:
        result = run_snakemake(snakemake_bin, tmp_path, REPO / "data", "--dry-run",
                               "--printshellcmds", *extra, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return re.findall(r"(nnprune (?:train|score|prune|finetune) [^\n]*)", result.stdout + result.stderr)

    on = commands("--config", "deterministic=True")
    assert {c.split()[1] for c in on} == {"train", "score", "prune", "finetune"}
    assert all("--deterministic" in c for c in on)
    assert not any("--deterministic" in c for c in commands())        # off by default


def test_deterministic_flag_enables_deterministic_algorithms(monkeypatch):
    from nnprune.engine.device import seed_everything

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)    # restored afterwards
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark is False
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


# ------------------------------------------------------------------ 2. resume (CLI)
@pytest.mark.integration
def test_a_warm_command_reports_the_cold_exit_status_and_error(nnprune_bin, warm_server, tmp_path):
    """A failing step run by the warm server exits with the same status and the same one-line
    error as the cold process, and writes nothing."""
    command = [nnprune_bin, "prune", "--model", str(tmp_path / "missing.pt"), "--scores",
               str(tmp_path / "missing_scores.pt"), "--pruning", "macs:0.3", "--out", str(tmp_path / "out")]
    cold = {k: v for k, v in os.environ.items() if k != launch.ENV}
    runs = [subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
            for env in (cold, {**cold, launch.ENV: warm_server})]
    assert runs[0].returncode != 0 and runs[0].returncode == runs[1].returncode
    warm_lines = [line for line in runs[1].stderr.splitlines() if not line.startswith(launch.USAGE_PREFIX)]
    assert [line for line in runs[0].stderr.splitlines() if line.strip()] == \
        [line for line in warm_lines if line.strip()]
    assert "missing.pt" in runs[0].stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_train_killed_after_an_epoch_resumes_to_identical_weights(pipelines, nnprune_bin,
                                                                  fashion_root, tmp_path):
    """SIGKILL `nnprune train` once its first epoch's last.pt exists; the same command resumes
    and ends with the weights of the uninterrupted run (pipeline a) bit for bit. The default
    augmentation (random crops and flips) draws from the saved generator too."""
    out = tmp_path / "train"
    command = [nnprune_bin, "train", *train_args(fashion_root), "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 300
    while not (out / "last.pt").exists():
        assert first.poll() is None, "train finished or failed before its first epoch was saved"
        assert time.monotonic() < deadline, "no last.pt after 300 s"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not (out / "model.pt").exists() and not (out / "metrics.json").exists()
    killed_at = load(out / "last.pt")["epoch"]
    assert 1 <= killed_at < EPOCHS

    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumed from {out / 'last.pt'} at epoch {killed_at}/{EPOCHS}" in second.stdout
    assert sum(f"epoch {e}/{EPOCHS} loss" in second.stdout for e in range(1, EPOCHS + 1)) \
        == EPOCHS - killed_at                                   # only the missing epochs ran
    reference = pipelines[0] / "train"
    assert_identical(load(out / "model.pt"), load(reference / "model.pt"), "model.pt")
    assert without_timing(results(out / "metrics.json")) == \
        without_timing(results(reference / "metrics.json"))


def _tiny_fit(resume_path: Path, epochs: int, lr: float = 0.1, with_lr: bool = False, **config) -> list[str]:
    """A few epochs of a tiny conv net on random images; returns the log lines."""
    from nnprune.data.loader import Batches
    from nnprune.engine.training import TrainConfig, fit

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 10))
    train = Batches(images, labels, 16, (0.5,), (0.25,), shuffle=True, crop_padding=1, flip=True)
    val = Batches(images, labels, 64, (0.5,), (0.25,))
    lines: list[str] = []
    summary = fit(model, train, val, TrainConfig(epochs=epochs, lr=lr, batch_size=16, **config), resume_path,
                  torch.device("cpu"), lines.append, run_inputs={"data": "random"})
    if with_lr:      # each epoch's final learning rate, as "lr <value>" lines after the log lines
        lines += [f"lr {entry['lr']!r}" for entry in summary["history"]]
    return lines


def test_cosine_batch_schedule_anneals_over_every_batch_of_the_run(tmp_path):
    """cosine-batch steps after each batch, per-epoch cosine after each epoch: in a 1-epoch run of 4
    batches the per-batch lr falls lr * (1 + cos(pi * k/4)) / 2 while per-epoch cosine keeps lr for
    the whole epoch. fit steps the per-batch schedule: over 2 epochs of 4 batches its lr is lr/2
    after epoch 1 and 0 after the last batch, as is that of a 3-batch budget."""
    import math

    from nnprune.engine.training import TrainConfig, make_scheduler

    def lrs(schedule: str) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler = make_scheduler(optimizer, TrainConfig(epochs=1, lr=0.1, schedule=schedule), 4)
        seen = []
        for _ in range(4):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if schedule == "cosine-batch":
                scheduler.step()
        return seen

    assert lrs("cosine-batch") == pytest.approx([0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)])
    assert lrs("cosine") == pytest.approx([0.1] * 4)
    lines = _tiny_fit(tmp_path / "a.pt", epochs=2, with_lr=True, schedule="cosine-batch")
    assert [float(line.split()[1]) for line in lines if line.startswith("lr ")] == pytest.approx([0.05, 0.0], abs=1e-12)
    short = _tiny_fit(tmp_path / "c.pt", epochs=1, with_lr=True, schedule="cosine-batch", batches_per_epoch=3)
    assert [float(line.split()[1]) for line in short if line.startswith("lr ")] == pytest.approx([0.0], abs=1e-12)


def test_resume_state_of_another_run_is_not_continued(tmp_path):
    """Snakemake reruns a job whose params changed with the old last.pt still there: a different
    epoch count or lr must start afresh, the same settings continue."""
    resume = tmp_path / "last.pt"
    _tiny_fit(resume, epochs=2)
    for changed in ({"epochs": 3}, {"epochs": 2, "lr": 0.05}):
        lines = _tiny_fit(resume, **changed)
        assert not any("resumed" in line for line in lines), lines
        assert any(line.startswith(f"ignoring {resume}") for line in lines), lines
        assert sum(" loss " in line for line in lines) == changed["epochs"]
    lines = _tiny_fit(resume, epochs=2, lr=0.05)
    assert f"resumed from {resume} at epoch 2/2" in lines


@pytest.mark.parametrize("terminal", [True, False])
def test_fit_shows_a_progress_bar_only_on_a_terminal(terminal, tmp_path, capsys, monkeypatch):
    """On a terminal fit draws a tqdm bar (epoch, batches, loss) on stderr; in a job log (no
    terminal) it writes no bar, only one line per epoch."""
    from functools import partialmethod

    import tqdm

    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    # redraw on every batch: these epochs take less than tqdm's default 0.1 s between redraws
    monkeypatch.setattr(tqdm.tqdm, "__init__", partialmethod(tqdm.tqdm.__init__, mininterval=0))
    lines = _tiny_fit(tmp_path / "last.pt", epochs=2)
    stderr = capsys.readouterr().err
    assert [line.split(" loss ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    if terminal:
        for epoch in ("epoch 1/2", "epoch 2/2"):
            assert re.search(epoch + r": +100%\|.*\| 4/4 \[.*batch/s, loss \d+\.\d{4}\]", stderr), stderr
    else:
        assert stderr == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_scoring_progress_is_a_bar_on_a_terminal_and_log_lines_otherwise(terminal, capsys, monkeypatch):
    from nnprune.engine.progress import progress_callback

    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    lines: list[str] = []
    update = progress_callback("score", lines.append, "scored", "images")
    for done in (32, 64, 128):
        update(done, 128)
    stderr = capsys.readouterr().err
    if terminal:
        assert lines == [] and "score: 100%" in stderr and "128/128" in stderr
    else:    # the first line, then at most one every 5 s, and the last
        assert lines == ["scored 32/128 images", "scored 128/128 images"] and stderr == ""


# ------------------------------------------------------------------ 3. resume (workflow)
TARGET = "results/smoke/runs.csv"


def _start_snakemake(snakemake_bin: str, workdir: Path, data_root: Path, *extra: str):
    """Like conftest.run_snakemake on conftest's part of the smoke study, in its own process
    group so that the whole tree can be killed."""
    command = [snakemake_bin, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(smoke_part_config(workdir)), "--config",
               f"data_root={data_root}", "--cores", "2", *extra, TARGET]
    with open(workdir / f"snakemake-{time.monotonic_ns()}.log", "w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_group_when(process: subprocess.Popen, ready, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"snakemake ended (rc {process.returncode}) before the kill"
        assert time.monotonic() < deadline, "kill point not reached"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _unlock(snakemake_bin: str, workdir: Path, data_root: Path) -> None:
    """A SIGKILLed Snakemake leaves its lock behind; `--unlock` (which its message names) clears it."""
    result = run_snakemake(snakemake_bin, workdir, data_root, "--unlock", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def _marked_incomplete(workdir: Path) -> set[str]:
    """Outputs Snakemake has marked incomplete: one file per output under .snakemake/incomplete/,
    named by the output path in urlsafe base64 (split into '@'-prefixed folders when long)."""
    root = workdir / ".snakemake" / "incomplete"
    marked = set()
    for marker in root.rglob("*"):
        if marker.is_file() and marker.name != "migration_underway":
            encoded = "".join(part.lstrip("@") for part in marker.relative_to(root).parts)
            marked.add(base64.urlsafe_b64decode(encoded).decode())
    return marked


def _job_counts(text: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table: jobs per rule that this invocation ran."""
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


RULE_OUTPUTS = {"train": "baselines/*/model.pt", "prune": "runs/*/*/*/pruned/model.pt",
                "finetune": "runs/*/*/*/finetuned-*/model.pt"}


@pytest.mark.integration
def test_killed_workflow_reruns_only_unfinished_jobs_to_the_same_runs_csv(
        smoke_local, snakemake_bin, fashion_root, tmp_path):
    """Kill Snakemake's whole process group twice (during training, then once pruned models
    exist) and go on as a user would (`--unlock`, then rerun with --rerun-incomplete): the
    killed jobs are marked incomplete and rerun, training resumes from last.pt, finished jobs
    are not rerun, and runs.csv equals the uninterrupted run's rows (conftest's part of the
    smoke study, which has every rule up to runs.csv)."""
    study = tmp_path / "results" / "smoke"
    part = smoke_part_config(tmp_path)
    reference_study = smoke_local[0] / "results" / "smoke"
    # Kill 1: while training, after a baseline has saved its first epoch.
    _kill_group_when(_start_snakemake(snakemake_bin, tmp_path, fashion_root),
                     lambda: any(study.glob("baselines/*/last.pt")))
    saved_epochs = {p.parent.name: load(p)["epoch"] for p in study.glob("baselines/*/last.pt")}
    assert {f"results/smoke/baselines/{b}/model.pt" for b in saved_epochs} \
        <= _marked_incomplete(tmp_path)
    assert not any(study.glob("baselines/*/model.pt"))     # nothing half-written looks finished
    locked = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--cores", "2",
                           "--rerun-incomplete", TARGET, timeout=300, configfile=part)
    assert locked.returncode != 0 and "--unlock" in locked.stderr, locked.stderr[-3000:]
    _unlock(snakemake_bin, tmp_path, fashion_root)

    # Kill 2: once pruned models exist, while other jobs still run.
    _kill_group_when(_start_snakemake(snakemake_bin, tmp_path, fashion_root, "--rerun-incomplete"),
                     lambda: any(study.glob("runs/*/*/*/pruned/metrics.json")))
    for base, epoch in saved_epochs.items():
        log = (study / "logs" / "train" / f"{base}.log").read_text()
        assert f"resumed from results/smoke/baselines/{base}/last.pt at epoch {epoch}/" in log, log
    killed = _marked_incomplete(tmp_path)
    assert killed, "no job was running at the second kill"
    outputs = {rule: [p for p in study.glob(pattern)] for rule, pattern in RULE_OUTPUTS.items()}
    finished = {p: p.stat().st_mtime_ns for paths in outputs.values() for p in paths
                if str(p.relative_to(tmp_path)) not in killed}
    killed_existing = {p: p.stat().st_mtime_ns for p in map(tmp_path.joinpath, killed) if p.exists()}

    _unlock(snakemake_bin, tmp_path, fashion_root)
    final = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--cores", "2",
                          "--rerun-incomplete", TARGET, configfile=part)
    assert final.returncode == 0, final.stderr[-4000:]
    ran = _job_counts(final.stdout + final.stderr)
    for rule, pattern in RULE_OUTPUTS.items():
        total = sum(map(in_smoke_part, reference_study.glob(pattern)))
        done_before = sum(p in finished for p in outputs[rule])
        assert ran.get(rule, 0) == total - done_before, (rule, ran)   # only the unfinished ran
    assert {p: p.stat().st_mtime_ns for p in finished} == finished     # finished: not rewritten
    assert all(p.stat().st_mtime_ns != t for p, t in killed_existing.items())   # killed: redone

    runs = pd.read_csv(study / "runs.csv")
    reference = smoke_part_rows(pd.read_csv(reference_study / "runs.csv"))
    assert len(runs) == len(reference) > 0
    timing = [c for c in runs.columns if c.startswith(("seconds_", "latency_"))]   # wall clock
    if torch.cuda.is_available():
        pytest.skip("CUDA runs are not bit-identical without deterministic: true")
    pd.testing.assert_frame_equal(runs.drop(columns=timing), reference.drop(columns=timing),
                                  check_exact=True)


# ------------------------------------------------------------------ 4. atomic outputs
def test_interrupted_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    from nnprune.files import atomic_write, load_torch, save_torch, write_json

    metrics = tmp_path / "metrics.json"
    write_json(metrics, {"acc": 1.0})

    def killed_half_way(tmp: str) -> None:
        Path(tmp).write_text('{"acc": 2.')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(metrics, killed_half_way)
    assert json.loads(metrics.read_text()) == {"acc": 1.0}
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "runs.csv", killed_half_way)
    assert not (tmp_path / "runs.csv").exists()

    checkpoint = tmp_path / "model.pt"
    save_torch(checkpoint, {"weight": torch.ones(1000)})
    real_save = torch.save

    def disk_full_half_way(obj, path, *args, **kwargs) -> None:
        real_save(obj, path, *args, **kwargs)
        os.truncate(path, 200)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full_half_way)
    with pytest.raises(OSError):
        save_torch(checkpoint, {"weight": torch.zeros(1000)})
    assert torch.equal(load_torch(checkpoint)["weight"], torch.ones(1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model.pt"]
    umask = os.umask(0)
    os.umask(umask)
    assert metrics.stat().st_mode & 0o777 == 0o666 & ~umask     # not mkstemp's 0600


@pytest.mark.integration
def test_every_cli_output_is_renamed_into_place(smoke_local, fashion_root, tmp_path, monkeypatch):
    """Run every writing command in-process and record os.replace: each file the commands leave
    must have been renamed into place (written to a temporary file first), none written directly."""
    import gzip

    from nnprune.data.fetch import FASHION_FILES, _copy_from_debian
    from nnprune.pipeline.cli import main

    renamed: set[Path] = set()
    real_replace = os.replace

    def recording_replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        renamed.add(Path(dst).resolve())

    monkeypatch.setattr(os, "replace", recording_replace)
    smoke = smoke_local[0] / "results" / "smoke"
    out, study = tmp_path / "steps", tmp_path / "study"
    tiny = ["--data-root", str(fashion_root), "--train-size", "200", "--val-size", "100",
            "--epochs", "1", *CPU]
    commands = [
        ["train", "--arch", "resnet20", "--width", "0.25", *tiny, "--out", f"{out}/train"],
        ["score", "--model", f"{out}/train/model.pt", "--criterion", "nuclear,l1",
         "--score-images", "32", *CPU, "--out", f"{out}/scores"],
        ["prune", "--model", f"{out}/train/model.pt", "--scores", f"{out}/scores/l1_si0/scores.pt",
         "--pruning", "uniform:0.2", "--bn-recalibration", "64", *CPU, "--out", f"{out}/pruned"],
        ["finetune", "--model", f"{out}/pruned/model.pt", "--epochs", "1", "--batches-per-epoch", "2",
         *CPU, "--out", f"{out}/finetuned"],
        ["evaluate", "--model", f"{out}/finetuned/model.pt", *CPU, "--out", f"{out}/evaluate"],
        ["toy", "--dataset", "moons", "--seeds", "1", "--width", "0.02", "--steps", "10",
         "--train-points", "100", "--test-points", "100", "--grid", "8", "--fractions", "0.5",
         "--input-noise", "0.1", "--criteria", "l1,nuclear", *CPU, "--out", f"{out}/toy"],
        ["aggregate", "--runs", *map(str, sorted(smoke.glob("runs/*/*/*/pruned/metrics.json"))),
         "--scores", *map(str, sorted(smoke.glob("scores/*/*/scores.pt"))), "--out", str(study)],
        ["toy-report", "--inputs", *map(str, sorted(p.parent for p in smoke.glob("toy/*/toy.csv"))),
         "--out", f"{study}/toy"],
        ["report", "--study-dir", str(study), "--main-pruning", "uniform:0.1",
         "--main-score-images", "256"],
        ["claims", "--study-dir", str(study), "--main-pruning", "uniform:0.1",
         "--main-score-images", "256"],
    ]
    threads = torch.get_num_threads()
    try:
        for argv in commands:
            assert main(argv) == 0, argv
    finally:
        torch.set_num_threads(threads)      # --threads 1 applies to this whole process
    packed = tmp_path / "debian"
    packed.mkdir()
    for name in FASHION_FILES:
        with gzip.open(packed / f"{name}.gz", "wb") as handle:
            handle.write(b"idx")
    assert _copy_from_debian(tmp_path / "fetched", packed)             # fetch-data's offline path

    written = [p.resolve() for p in tmp_path.rglob("*") if p.is_file() and packed not in p.parents]
    assert len(written) > 40
    direct = [str(p) for p in written if p not in renamed]
    assert not direct, direct


# ------------------------------------------------------------------ 5. clear errors
@pytest.fixture(scope="module")
def inputs(pipelines, tmp_path_factory) -> dict[str, Path]:
    """A trained baseline, its scores, and damaged or mismatched variants of them."""
    from nnprune.models import build
    from nnprune.pipeline.cli import main
    from nnprune.pruning.model_file import save_model

    folder = tmp_path_factory.mktemp("bad-inputs")
    model = pipelines[0] / "train" / "model.pt"
    record = load(model)
    meta = {k: v for k, v in record.items()
            if k not in ("format", "arch", "build_args", "input_shape", "removed", "state_dict")}
    truncated = folder / "truncated.pt"
    truncated.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    rgb = folder / "rgb.pt"     # a 3-channel model whose record says its data is Fashion-MNIST
    rgb_args = {**record["build_args"], "in_channels": 3}
    save_model(rgb, build("resnet20", **rgb_args), "resnet20", rgb_args, (3, 28, 28), **meta)
    resnet32 = folder / "resnet32.pt"
    save_model(resnet32, build("resnet32", **record["build_args"]), "resnet32",
               record["build_args"], tuple(record["input_shape"]), **meta)
    threads = torch.get_num_threads()
    try:
        assert main(["score", "--model", str(resnet32), "--criterion", "l1", *CPU,
                     "--out", str(folder / "resnet32-scores")]) == 0
    finally:
        torch.set_num_threads(threads)
    empty = folder / "no-data"
    empty.mkdir()
    return {"model": model, "scores": pipelines[0] / "scores" / "l1_si0" / "scores.pt",
            "truncated": truncated, "rgb": rgb, "empty": empty,
            "resnet32_scores": folder / "resnet32-scores" / "l1_si0" / "scores.pt"}


PRUNE = ["prune", "--model", "{model}", "--scores", "{scores}", *CPU]
TRAIN = ["train", "--arch", "resnet20", "--width", "0.25", "--train-size", "1000",
         "--val-size", "500", "--epochs", "1", *CPU]
BAD_INPUTS = {  # argv, text in the problem line, text in the fix line
    "label noise out of range": (
        [*TRAIN, "--data-root", "{data}", "--label-noise", "1.5"],
        "label_noise must be in [0, 1), got 1.5", "fix: use e.g. 0.0"),
    "compress-rate string too short": (
        [*PRUNE, "--pruning", "rates:[0.5]*3"],
        "has 3 rates but the model has 19 prunable layers", "give exactly 19 rates"),
    "compress rate of 1": (
        [*PRUNE, "--pruning", "rates:[0.2]*18+[1.0]"],
        "compress rate 1.0 at position 18 is outside [0, 1)", "at least 0 and below 1"),
    "scores of another architecture": (
        [*PRUNE[:4], "{resnet32_scores}", *CPU, "--pruning", "uniform:0.1"],
        "computed for architecture resnet32", "score this model with `nnprune score`"),
    "truncated checkpoint": (
        ["prune", "--model", "{truncated}", "--scores", "{scores}", *CPU, "--pruning", "uniform:0.1"],
        "is corrupt or truncated", "delete it and rerun the step"),
    "missing dataset": (
        [*TRAIN, "--data-root", "{empty}"],
        "dataset fashion-mnist not found under", "nnprune fetch-data --dataset fashion-mnist"),
    "more score images than training images": (
        ["score", "--model", "{model}", "--criterion", "nuclear", "--score-images", "5000", *CPU],
        "must be between 1 and the 1000 training images", "use at most 1000 score images"),
    "3-channel model on Fashion-MNIST": (
        ["score", "--model", "{rgb}", "--criterion", "l1", *CPU],
        "takes 3-channel input but fashion-mnist images have 1", "in_channels=1"),
}
PREVIOUS = {"metrics.json": '{"previous": "run"}\n', "model.pt": "weights of an earlier run"}


def assert_one_clear_error(result: subprocess.CompletedProcess, command: str, problem: str,
                           fix: str) -> None:
    """Exit code 2 and exactly: `nnprune CMD: error: PROBLEM` / `  fix: FIX`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"nnprune {command}: error: ") and problem in lines[0], lines
    assert lines[1].startswith("  fix: ") and fix in lines[1], lines


def _previous_results(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PREVIOUS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def bad_input_runs(inputs, nnprune_bin, fashion_root, tmp_path_factory) -> dict:
    """Every BAD_INPUTS command, each into a folder holding an earlier run's results; four at a
    time, since each is mostly interpreter start-up. case -> (CompletedProcess, out folder)."""
    from concurrent.futures import ThreadPoolExecutor

    def run(case: str) -> tuple[str, tuple[subprocess.CompletedProcess, Path]]:
        out = _previous_results(tmp_path_factory.mktemp("bad-input") / "out")
        argv = [a.format(**inputs, data=fashion_root) for a in BAD_INPUTS[case][0]]
        command = [nnprune_bin, *argv, "--out", str(out)]
        return case, (subprocess.run(command, capture_output=True, text=True, timeout=300), out)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(run, BAD_INPUTS))


@pytest.mark.integration
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_fast_with_one_message_and_loses_nothing(case, bad_input_runs):
    argv, problem, fix = BAD_INPUTS[case]
    result, out = bad_input_runs[case]
    assert_one_clear_error(result, argv[0], problem, fix)
    assert " epoch 1/" not in result.stdout                            # failed before training
    assert {p.name: p.read_text() for p in out.iterdir()} == PREVIOUS   # earlier results intact


@pytest.mark.integration
def test_non_finite_loss_stops_and_keeps_the_last_good_epoch(nnprune_bin, fashion_root, tmp_path):
    """lr 1e30: epoch 1's single batch is still finite (its loss is taken before the update),
    epoch 2's is not. The run stops, names the lr, and keeps epoch 1's resume state."""
    out = _previous_results(tmp_path / "out")
    command = [nnprune_bin, "train", "--arch", "resnet20", "--width", "0.25",
               "--data-root", str(fashion_root), "--train-size", "500", "--val-size", "500",
               "--epochs", "3", "--batches-per-epoch", "1", "--lr", "1e30", *CPU, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert_one_clear_error(result, "train", "in epoch 2; the last good state (epoch 1) is kept in",
                           "lower the learning rate")
    assert re.search(r"training loss became (nan|inf)", result.stderr)
    state = load(out / "last.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(torch.tensor(h["loss"])) for h in state["history"])
    assert {p.name: p.read_text() for p in out.iterdir() if p.name in PREVIOUS} == PREVIOUS


# ------------------------------------------------------------------ 6. no code from data files
class _Payload:
    """Unpickling this runs `touch marker`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.mark.integration
def test_crafted_pickles_and_yaml_run_no_code(inputs, nnprune_bin, snakemake_bin, tmp_path):
    marker = tmp_path / "code-ran"
    model = tmp_path / "crafted-model.pt"
    torch.save({"format": "nnprune-model-v1", "arch": "resnet20", "payload": _Payload(marker)}, model)
    scores = tmp_path / "crafted-scores.pt"
    torch.save({"format": "nnprune-scores-v1", "payload": _Payload(marker)}, scores)
    for what, flags in (("model file", ["--model", str(model), "--scores", str(inputs["scores"])]),
                        ("scores file", ["--model", str(inputs["model"]), "--scores", str(scores)])):
        result = subprocess.run([nnprune_bin, "prune", *flags, "--pruning", "uniform:0.1", *CPU,
                                 "--out", str(tmp_path / "out")], capture_output=True, text=True,
                                timeout=300)
        assert_one_clear_error(result, "prune", f"{what} ", "use only files written by nnprune")
        assert "it would call posix.system" in result.stderr and "refusing to unpickle" in result.stderr
        assert not marker.exists()
        assert not (tmp_path / "out" / "model.pt").exists()

    config = (REPO / "config" / "smoke.yaml").read_text().replace(
        "study: smoke", f"study: !!python/object/apply:os.system ['touch {marker}']")
    (tmp_path / "crafted.yaml").write_text(config)
    result = run_snakemake(snakemake_bin, tmp_path, REPO / "data", "--dry-run",
                           configfile=tmp_path / "crafted.yaml", timeout=300)
    assert result.returncode != 0 and not marker.exists()

    # The files are live: an unsafe load does run the payload (so the checks above mean something).
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(model)!r}, weights_only=False)"],
                   capture_output=True, timeout=300)
    assert marker.exists()


# ------------------------------------------------------------------ 7. provenance
def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)


def assert_provenance_names_the_checkout(commit: str | None, dirty: bool | None) -> None:
    """The (git_commit, git_dirty) a study recorded are those of the checkout the tests run from:
    (None, None) outside a git checkout; else its HEAD and whether tracked files differ from it
    now. A commit made while the study ran moves HEAD on: then the recorded commit must be an
    ancestor of HEAD, and dirty a bool."""
    head = _git("rev-parse", "HEAD")
    if head.returncode != 0:
        assert (commit, dirty) == (None, None)
        return
    if commit == head.stdout.strip():
        assert dirty is bool(_git("status", "--porcelain", "--untracked-files=no").stdout.strip())
        return
    assert re.fullmatch(r"[0-9a-f]{40}", commit or ""), commit
    assert _git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0, commit
    assert isinstance(dirty, bool), dirty


@pytest.mark.integration
def test_every_metrics_json_records_config_and_provenance(smoke_local):
    from nnprune import __version__
    from nnprune.pipeline.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command").choices
    study = smoke_local[0] / "results" / "smoke"
    recorded: set[tuple[str | None, bool | None]] = set()
    steps: dict[str, int] = {}
    for path in study.rglob("metrics.json"):
        record = json.loads(path.read_text())
        step, config, provenance = record["step"], record["config"], record["provenance"]
        steps[step] = steps.get(step, 0) + 1
        # --spec is a source of settings, not one: its values are among the options recorded
        options = {a.dest for a in subparsers[step]._actions if a.dest not in ("help", "spec")}
        assert options <= set(config), (path, options - set(config))     # every option, resolved
        assert isinstance(config["seed"], int)
        assert provenance["nnprune_version"] == __version__, path
        recorded.add((provenance["git_commit"], provenance["git_dirty"]))
        for package in ("torch", "torchvision", "torch-pruning", "fvcore"):
            assert provenance["versions"][package], (path, package)
        assert provenance["device"] == "cpu" or provenance["device"].startswith("cuda")
        assert dt.datetime.fromisoformat(provenance["started"]).tzinfo is not None
        assert provenance["seconds"] > 0
    assert set(steps) == {"train", "score", "prune", "finetune", "toy"}, steps
    for commit, dirty in recorded:       # one pair, unless a commit was made during the run
        assert_provenance_names_the_checkout(commit, dirty)


@pytest.mark.integration
def test_runs_csv_rows_trace_to_their_metrics_json(smoke_local):
    study = smoke_local[0] / "results" / "smoke"
    runs = pd.read_csv(study / "runs.csv")
    assert len(runs) > 0
    for row in runs.itertuples():
        relative = Path(row.pruned_metrics)
        assert not relative.is_absolute() and relative.parts[0] == "runs", row.pruned_metrics
        record = json.loads((study / relative).read_text())
        assert record["step"] == "prune"
        assert record["results"]["criterion"] == row.criterion
        assert record["config"]["pruning"] == row.pruning and record["config"]["seed"] == row.seed
        assert record["results"]["pruned"]["acc"] == pytest.approx(row.acc_pruned, rel=1e-12)
        if str(row.budget) != "0":       # a fine-tuned row: its budget's metrics.json beside pruned/
            tuned = json.loads((study / relative).parent.parent.joinpath(f"finetuned-{row.budget}",
                                                                        "metrics.json").read_text())
            assert tuned["config"]["budget"] == row.budget
            assert tuned["results"]["acc_test"] == pytest.approx(row.acc_finetuned, rel=1e-12)
