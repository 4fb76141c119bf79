"""Where a study's time goes, from Snakemake's per-job benchmark files.

Reads results/<study>/benchmarks/**/*.tsv (one per job: s = wall seconds, cpu_time, max_rss in
MB) and prints: the study's total wall time, summed job wall and CPU time, the split between
train, score, prune, finetune, aggregate/report and toy jobs, the peak RSS of the largest job,
and an estimate of the share that is Python and process start-up: the measured time of
`python -c "import nnprune.pipeline.steps, torch, torchvision, torch_pruning, fvcore.nn"` times the number
of jobs (and, beside it, the time of `nnprune --help`).

A job run by nnprune's warm server (nnprune/pipeline/launch.py) ran in a forked child outside the
process tree that Snakemake's benchmark measures: its CPU and peak RSS come from the last line of
its log (`nnprune warm child: cpu_seconds=... max_rss_mb=...`), added to the benchmark's figure.

Total wall time comes from the Snakemake log(s) in <workdir>/.snakemake/log that name the study's
outputs (first to last timestamp), or from file times (earliest job start = benchmark file mtime
minus its wall seconds, to the latest output) when no log is found; the output says which.
Targets: the whole default study (`make run` from a fresh clone) in <= 75 minutes on 2 cores (the
issue "Verdicts that replicate", which added the noisy fine-tunes, 10 noisy baselines and the
networks pruned from 32 images; issue 17's grid had 45, at most 60); the leaderboard study given
results/default (`make leaderboard`) in <= 90 (the issue "Where criteria part ways").

    python benchmarks/study_time.py [--study default] [--results results] [--target-minutes 75]
    python benchmarks/study_time.py --study leaderboard --target-minutes 90
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, cpu_model, report
from nnprune.pipeline.launch import read_usage

CATEGORIES = ("train", "score", "prune", "finetune", "scratch", "aggregate/report", "toy", "other")
IMPORTS = "import nnprune.pipeline.steps, torch, torchvision, torch_pruning, fvcore.nn"
# What a step imports since nnprune.models loads torchvision lazily (only resnet50 needs it).
JOB_IMPORTS = "import nnprune.pipeline.cli, nnprune.pipeline.steps, nnprune.pruning, nnprune.pruning.scoring, fvcore.nn"
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")


def read_jobs(benchmarks: Path) -> list[dict]:
    """One record per benchmark file: category, name, s, cpu_time, max_rss (MB), mtime."""
    jobs = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows:
            continue
        row = rows[0]
        relative = path.relative_to(benchmarks)
        first = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        category = ("aggregate/report" if first in ("aggregate", "report")
                    else first if first in CATEGORIES else "other")

        def number(key: str, row: dict = row) -> float:
            try:
                return float(row.get(key) or "nan")
            except ValueError:       # Snakemake writes "-" where it could not measure
                return float("nan")
        record = {"category": category, "name": str(relative), "s": number("s"),
                  "cpu_time": number("cpu_time"), "max_rss": number("max_rss"),
                  "mtime": path.stat().st_mtime, "warm": False}
        log = benchmarks.parent / "logs" / relative.with_suffix(".log")
        usage = read_usage(log.read_text(errors="replace")) if log.exists() else None
        if usage:   # a warm child: the benchmark measured only the client that waited for it
            cpu, rss = usage
            record.update(cpu_time=(record["cpu_time"] if record["cpu_time"] == record["cpu_time"]
                                    else 0.0) + cpu, max_rss=rss, warm=True)
        jobs.append(record)
    return jobs


def job_part(job: dict) -> str | None:
    """The part of a category a job belongs to, from its benchmark path: clean or noisy baseline
    (label noise 0 or above), the fine-tuning budget, and score_images of a pruned run."""
    name = job["name"]
    noisy = re.search(r"__ln0\.0__", name) is None
    kind = "noisy" if noisy else "clean"
    if job["category"] == "train":
        return f"train: {kind} baselines"
    if job["category"] == "prune":
        return f"prune: {kind} baselines"
    if job["category"] == "finetune":
        budget = re.search(r"_(\d+[eb])\.tsv$", name)
        size = re.search(r"_si(\d+)/", name)
        pruned_from = f", pruned from {size.group(1)} images" if size and size.group(1) not in ("0", "2048") else ""
        return f"finetune: {kind}, {budget.group(1) if budget else '?'}{pruned_from}{cut_of(name)}"
    if job["category"] == "scratch":
        return f"scratch: {kind}{cut_of(name)}"
    return None


def cut_of(name: str) -> str:
    """", at <cut>": the pruning slug of a fine-tune's or scratch control's run
    (finetune/<base>/<criterion_si>/<slug>_<budget>.tsv, scratch/<base>/<criterion_si>/<slug>.tsv)."""
    found = re.search(r"/([^/]+?)(?:_\d+[eb])?\.tsv$", name)
    return f", at {found.group(1)}" if found else ""


def log_span(workdir: Path, study_dir: str, since: float) -> tuple[float, list[Path]] | None:
    """Seconds from the first to the last timestamp of the Snakemake logs that ran jobs of the
    study's current outputs (summed over logs, so a study resumed in several runs counts each
    run). Logs that ended before `since` (the earliest job start, epoch seconds) belong to
    earlier runs whose outputs were replaced, and are left out."""
    logs = []
    for path in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log")):
        text = path.read_text(errors="replace")
        if f"{study_dir}/" not in text:
            continue
        stamps = [dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
                  for m in map(STAMP.match, text.splitlines()) if m]
        if len(stamps) >= 2 and stamps[-1].timestamp() >= since - 60:
            logs.append((path, (stamps[-1] - stamps[0]).total_seconds()))
    if not logs:
        return None
    return sum(seconds for _, seconds in logs), [path for path, _ in logs]


def command_seconds(command: list[str], repeats: int = 3) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of a command (its output discarded)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="default")
    parser.add_argument("--results", default=str(ROOT / "results"),
                        help="the results folder; its parent is the Snakemake working directory")
    parser.add_argument("--target-minutes", type=float, default=75.0)
    args = parser.parse_args()
    results = Path(args.results).resolve()
    study = results / args.study
    jobs = read_jobs(study / "benchmarks")
    if not jobs:
        print(f"no benchmark files under {study / 'benchmarks'}: run the study first")
        return 2
    load = __import__("os").getloadavg()[0]
    print(f"machine: {cpu_model()}, nproc {__import__('os').cpu_count()}, load average {load:.2f}")
    finished = (study / "claims.md").exists()
    print(f"study {study} ({len(jobs)} jobs with benchmark files"
          f"{'' if finished else '; claims.md missing: the study has not finished'})")

    first_start = min(job["mtime"] - job["s"] for job in jobs)
    span = log_span(results.parent, f"{results.name}/{args.study}", first_start)
    last_output = max([job["mtime"] for job in jobs] +
                      [p.stat().st_mtime for p in study.glob("claims.*")])
    by_files = last_output - first_start
    if span:
        total, logs = span
        print(f"total wall time: {total / 60:.1f} min from Snakemake log timestamps "
              f"({', '.join(p.name for p in logs)}); from file times: {by_files / 60:.1f} min")
    else:
        total = by_files
        print(f"total wall time: {total / 60:.1f} min from file times (first job start to last "
              f"output; no Snakemake log names this study)")

    wall = sum(job["s"] for job in jobs)
    cpu = sum(job["cpu_time"] for job in jobs if job["cpu_time"] == job["cpu_time"])
    print(f"summed job wall {wall / 60:.1f} min, summed job CPU {cpu / 60:.1f} min")
    print(f"{'category':<18}{'jobs':>6}{'wall min':>10}{'share':>8}{'CPU min':>10}{'share':>8}"
          f"{'mean wall s':>13}{'max RSS MB':>12}")
    for category in CATEGORIES:
        part = [job for job in jobs if job["category"] == category]
        if not part:
            continue
        part_wall = sum(job["s"] for job in part)
        part_cpu = sum(job["cpu_time"] for job in part if job["cpu_time"] == job["cpu_time"])
        print(f"{category:<18}{len(part):>6}{part_wall / 60:>10.1f}{part_wall / wall:>8.0%}"
              f"{part_cpu / 60:>10.1f}{part_cpu / max(cpu, 1e-9):>8.0%}{part_wall / len(part):>13.1f}"
              f"{max(job['max_rss'] for job in part):>12.0f}")
    parts: dict[str, list[dict]] = {}
    for job in jobs:
        part = job_part(job)
        if part:
            parts.setdefault(part, []).append(job)
    for part, members in sorted(parts.items()):
        part_wall = sum(job["s"] for job in members)
        print(f"  - {part:<56}{len(members):>5}{part_wall / 60:>9.1f} min{part_wall / wall:>6.0%}"
              f"{part_wall / len(members):>9.1f} s per job")
    largest = max(jobs, key=lambda job: job["max_rss"])
    print(f"peak RSS of the largest job: {largest['max_rss']:.0f} MB ({largest['name']})")

    nnprune = shutil.which("nnprune") or str(Path(sys.executable).parent / "nnprune")
    help_command = [nnprune, "--help"] if Path(nnprune).exists() else [sys.executable, "-m",
                                                                         "nnprune.pipeline.cli", "--help"]
    warm = sum(job["warm"] for job in jobs)
    jobs_run = len(jobs) - warm + 1   # claims has no benchmark file; warm children import nothing
    print(f"{warm} of {len(jobs)} jobs ran in the warm server (their start-up is a fork, "
          f"not counted below); {jobs_run} started cold")
    for label, command in [(f'python -c "{IMPORTS}"', [sys.executable, "-c", IMPORTS]),
                           (f'python -c "{JOB_IMPORTS}"', [sys.executable, "-c", JOB_IMPORTS]),
                           ("nnprune --help", help_command)]:
        seconds, cpu_seconds = command_seconds(command)
        print(f"start-up `{label}`: {seconds:.2f} s wall, {cpu_seconds:.2f} s CPU (medians of 3); "
              f"x {jobs_run} jobs = {seconds * jobs_run / 60:.1f} min wall = "
              f"{seconds * jobs_run / wall:.0%} of summed job wall, "
              f"{cpu_seconds * jobs_run / max(cpu, 1e-9):.0%} of summed job CPU")
    minutes = total / 60
    ok = report(f"{args.study} study wall time", f"{minutes:.1f} min", f"target {args.target_minutes:g} min",
                args.target_minutes / minutes, 1.0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
