# The config is validated, then nnprune.plan.grid plans every job and report output (unit-tested
# without Snakemake); the rule files read that plan (PLAN) and the few names below, nothing else.
import importlib.util
import os
import shutil
import sys
from importlib.resources import as_file
from pathlib import Path

from snakemake.utils import validate

# Jobs run the `nnprune` command of the Python that runs Snakemake: its folder goes first on PATH,
# so `.venv/bin/snakemake` works from a shell that activated nothing (no `envvars:`, which would
# send this PATH to remote jobs; each re-parses the workflow). Without nnprune, one line, no job.
_bin, _path = os.path.dirname(sys.executable), os.environ.get("PATH", "")
if shutil.which("nnprune", path=_bin) and _path.split(os.pathsep)[0] != _bin:
    os.environ.update(PATH=os.pathsep.join([_bin, _path]))
if importlib.util.find_spec("nnprune") is None or shutil.which("nnprune") is None:
    _checkout = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parents[1]
    sys.stderr.write(
        f"\nnnprune is not installed for {sys.executable} (the Python that runs Snakemake): run "
        f"`{sys.executable} -m pip install -e {_checkout}`, or `make setup` in {_checkout} and use its .venv/bin/snakemake\n\n"
    )
    raise SystemExit(1)

from nnprune.errors import UserError
from nnprune.pipeline import launch
from nnprune.plan import grid, jobspecs, paths
from nnprune.plan.studyconfig import SCHEMA, check, check_schema


def _fail(problem, fix):
    sys.stderr.write(f"\nnnprune config error: {problem}\n  fix: {fix}\n\n")
    raise SystemExit(1)


# nnprune's two-line messages first (jsonschema's own run to a dozen); then `validate` sets the
# schema's defaults, and the plan is made (a reused study's recipe is checked there).
try:
    references = check_schema(config)  # outside criteria and models, looked up once
    with as_file(SCHEMA) as schema_file:
        validate(config, str(schema_file))
    check(config, require_data=False, references=references)
    PLAN = grid.plan(config, references=references)
except UserError as error:
    _fail(error.problem, error.fix)

# Data, outside code, reused files and cuts are checked before any job (`snakemake -n` needs no
# data), then a local run starts the warm server (nnprune/pipeline/launch.py): jobs fork from one
# process that imported torch once. A workflow using this one as a module calls nnprune.onstart() etc.
WARM = {}


onstart:
    from nnprune.pipeline.before_jobs import check_before_jobs

    try:
        check_before_jobs(config, PLAN)
    except UserError as error:
        _fail(error.problem, error.fix)
    if workflow.local_exec and os.environ.get(launch.DISABLE, "") in ("", "0"):
        WARM["process"], WARM["path"] = launch.start_server()
        if WARM["path"]:
            os.environ[launch.ENV] = WARM["path"]


onsuccess:
    launch.stop_server(WARM.get("process"), WARM.get("path"))


onerror:
    launch.stop_server(WARM.get("process"), WARM.get("path"))


OUT, THREADS, DETERMINISTIC = PLAN.out, PLAN.threads, PLAN.deterministic_flag


def gpu_resources():
    """One GPU (`gpu`: sbatch --gpus=1 with the SLURM plugin) and one `jobs_per_gpu` slot for the
    network rules when the study runs on CUDA; "auto" asks for none (a scheduler cannot know it)."""
    return {"gpu": 1, "gpu_slots": 1} if config["device"].startswith("cuda") else {}


# jobs_per_gpu jobs share the GPU in a local run unless --resources or the profile say otherwise;
# scope "local": a cluster run's main process does not count it across its jobs.
if config["device"].startswith("cuda"):
    workflow.global_resources.setdefault("gpu_slots", int(config["jobs_per_gpu"]))


resource_scopes:
    gpu_slots="local",


wildcard_constraints:
    base="[^/]+",
    crit="[A-Za-z0-9_-]+",
    si="[0-9]+",
    prune="[^/]+",
    budget="[0-9]+[eb]",


# Path templates of this study's own files (a reused study's files are read in place).
BASELINE_DIR = paths.baseline_dir(OUT, "{base}")
RUN_DIR = paths.run_dir(OUT, "{base}", "{crit}", "{si}", "{prune}")
RUN_NAME = paths.run_name("{base}", "{crit}", "{si}", "{prune}")  # of logs and benchmarks


def reused_or_own(path):
    """An input that may lie in the reused study: declared only when present there (its *.pt files
    are not committed; the onstart check names any that a run needs), so a dry run works anyway."""
    return [] if PLAN.source and path.startswith(PLAN.source + "/") and not os.path.exists(path) else path


def run_of(w):
    return grid.Run(w.base, w.crit, int(w.si), w.prune)


def seed_of(w):  # each job's settings are one JSON spec of nnprune.plan.jobspecs, from the plan
    return PLAN.baselines[w.base]["seed"]
