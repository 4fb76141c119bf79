# Grid logic lives here and nowhere else: the config is validated, then the baselines, score files
# and runs of the study are enumerated. Rules only look things up by wildcard.
import importlib.util
import os
import shutil
import sys
from importlib.resources import as_file
from pathlib import Path

from snakemake.utils import validate

# The jobs run the `nnprune` command of the Python that runs Snakemake: its folder (a venv's or
# conda env's bin/, where pip put the command) goes first on PATH, so that `.venv/bin/snakemake`
# works from a shell that activated nothing. Simpler than `python -m nnprune.pipeline.cli` in every
# rule, which would change every rule's shell text (Snakemake's code rerun trigger would rerun each
# job of a finished study) and put the working directory first on the jobs' sys.path. Local jobs
# still reach the warm server: the `nnprune` command's entry point hands them to it. PATH is set
# here, not required of the user, so no `envvars:` (which would also send this machine's PATH to
# remote jobs; each of them re-parses the workflow and puts its own folder first).
_bin, _path = os.path.dirname(sys.executable), os.environ.get("PATH", "")
if shutil.which("nnprune", path=_bin) and _path.split(os.pathsep)[0] != _bin:
    os.environ.update(PATH=os.pathsep.join([_bin, _path]))
# Without nnprune installed, one line that says how to install it, before any job (each would end
# with exit 127) or import below (a traceback). Snakemake puts this checkout on sys.path, so the
# import alone would pass; the command is what the jobs need.
if importlib.util.find_spec("nnprune") is None or shutil.which("nnprune") is None:
    _checkout = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parents[1]
    sys.stderr.write(
        f"\nnnprune is not installed for {sys.executable} (the Python that runs Snakemake): run "
        f"`{sys.executable} -m pip install -e {_checkout}`, or `make setup` in {_checkout} and use its .venv/bin/snakemake\n\n"
    )
    raise SystemExit(1)

from nnprune.plan import jobspecs, paths
from nnprune.pipeline import launch
from nnprune.plan.budgets import study_budgets
from nnprune.errors import UserError
from nnprune.plan.schemes import scheme_slug
from nnprune.plan.studyconfig import SCHEMA, check, check_schema, main_label_noise


def _fail(problem, fix):
    sys.stderr.write(f"\nnnprune config error: {problem}\n  fix: {fix}\n\n")
    raise SystemExit(1)


# The schema with nnprune's messages first (key, value and allowed form in two lines: jsonschema's
# own run to a dozen and show its regexes); once it passes, `validate` sets the schema's defaults.
try:
    check_schema(config)
    with as_file(SCHEMA) as schema_file:  # the schema inside the package (a file path for validate)
        validate(config, str(schema_file))
    check(config, require_data=False)
except UserError as error:
    _fail(error.problem, error.fix)


# The dataset is checked when execution starts (before any job), not at parse time, so that
# `snakemake -n` works on a machine without the data (e.g. the paper configs on a laptop).
# A local run then starts nnprune's warm server (nnprune/pipeline/launch.py): the jobs' `nnprune` commands
# fork from one process that has imported torch once, instead of importing it 200 times. Cluster
# jobs, and any run with NNPRUNE_NO_WARM=1, start each command in its own process.
# Snakemake runs these handlers for the main Snakefile only: a workflow that uses this one as a
# module (`module nnprune:`) runs them by calling nnprune.onstart(), nnprune.onsuccess() and
# nnprune.onerror() from its own; without them each job checks its data and starts cold.
WARM = {}


onstart:
    from nnprune.plan.studyconfig import check_dataset

    try:
        check_dataset(config)
        # Outside criteria and models (package.module:function): imported and checked once here,
        # before any job, so that a bad one fails in one line with nothing written.
        outside = [r.entry for r in [*CRITERIA.values(), *TOY_CRITERIA.values()] if r is not None]
        if outside or any(r is not None for r in ARCHS.values()):
            from nnprune.pipeline.steps import check_outside

            check_outside(
                list(dict.fromkeys(outside)),
                {entry_of(name, ARCHS): options for name, options in zip(ARCHS, config["archs"].values())},
                config["dataset"],
            )
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


STUDY = config["study"]
OUT = f"results/{STUDY}"
DATASET = config["dataset"]
THREADS = int(config["threads_per_job"])
DEVICE = config["device"]
# Follows --device in every step that runs the network (README "Reproducibility" gives the cost).
# A flag beside each job's --spec, empty when off.
DETERMINISTIC = " --deterministic" if config["deterministic"] else ""


def gpu_resources():
    """Resources that ask the scheduler for one GPU when the study runs on CUDA, else {}.

    Used as `**gpu_resources()` by the rules that run the network (train, score_data, prune,
    finetune). `gpu` is the resource name snakemake-executor-plugin-slurm 2.x turns into
    `sbatch --gpus=1` (`gpu_model` / `gres` are set per cluster with --set-resources); a local
    run counts it against `--resources gpu=N`. `gpu_slots` is one of the `jobs_per_gpu` slots
    below. "auto" asks for none: a scheduler cannot know it.
    """
    return {"gpu": 1, "gpu_slots": 1} if DEVICE.startswith("cuda") else {}


# k = jobs_per_gpu network jobs share the GPU in a local run: the global gpu_slots limit is the
# config's value unless --resources or the profile's `resources:` gave one. Scope "local": the
# main process of a cluster run does not count it across submitted jobs (each has its own GPU).
if DEVICE.startswith("cuda"):
    workflow.global_resources.setdefault("gpu_slots", int(config["jobs_per_gpu"]))


resource_scopes:
    gpu_slots="local",


from nnprune.plan.names import DATA_DRIVEN_SOURCES, DEFAULT_FOCUS, TOY_DATASET_NAMES
from nnprune.plan.studyconfig import entry_of, reads_of, study_archs, study_criteria, toy_criteria

# The study's criteria and architectures by short name (the names of paths, runs.csv and figures);
# an outside one (package.module:function) maps to its plugins.Reference, a built-in one to None.
CRITERIA = study_criteria(config)
ARCHS = study_archs(config)
TOY_CRITERIA = toy_criteria(config) if config["toy"].get("enabled", True) else {}
CRITERION_NAMES = list(CRITERIA)
# The criterion the claims test (claims.focus, which the claims job reads from --settings). The
# report and toy-report draw it first and thicker; a flag only when it is not the default.
FOCUS = config["claims"].get("focus", DEFAULT_FOCUS)
FOCUS_FLAG = "" if FOCUS == DEFAULT_FOCUS else f" --focus {FOCUS}"
DATA_CRITERIA = [c for c in CRITERIA if reads_of(c, CRITERIA) in DATA_DRIVEN_SOURCES]
FREE_CRITERIA = [c for c in CRITERIA if reads_of(c, CRITERIA) not in DATA_DRIVEN_SOURCES]
SIZES = sorted(config["score_images"])
GRID = config["grid"]
MAIN_SI = GRID.get("main_score_images", SIZES[-1])
MAIN_PRUNING = GRID.get("main_pruning", config["pruning"][0])
MAIN_NOISE = main_label_noise(config["label_noise"])
SPARSE = GRID.get("mode", "full") == "sparse"


wildcard_constraints:
    base="[^/]+",
    crit="[A-Za-z0-9_-]+",
    si="[0-9]+",
    prune="[^/]+",
    budget="[0-9]+[eb]",


NOISE_KINDS = jobspecs.noise_kinds(config)
NOISE_SEEDS = GRID.get("noise_seeds", config["seeds"])  # the noisy baselines' seeds
# score_images at which the score_images sweep prunes (scoring uses all of SIZES), and the
# criteria it prunes there (grid.score_sweep_criteria, default every data-driven pruned one)
SCORE_SWEEP = set(GRID.get("score_sweep", SIZES)) | {MAIN_SI}
SWEEP_CRITERIA = set(GRID.get("score_sweep_criteria", DATA_CRITERIA))


# The noisy baselines' own recipe, when the grid gives one (grid.noise_train_size, grid.noise_train):
# the label-noise claim compares runs with their own noisy baseline, and claims.md names the difference.
NOISE_SIZES = [GRID["noise_train_size"]] if "noise_train_size" in GRID else config["train_size"]
NOISE_RECIPE = GRID.get("noise_train", {})


def noise_settings():
    """(label_noise, noise_kind, seeds, train sizes, recipe) of every baseline family: the main
    (lowest) level once, with every seed (its kind only matters when it is above 0); each level
    above it once per kind, with NOISE_SEEDS, NOISE_SIZES and NOISE_RECIPE."""
    for noise in config["label_noise"]:
        if noise == MAIN_NOISE:
            yield noise, NOISE_KINDS[0], config["seeds"], config["train_size"], {}
        else:
            for kind in NOISE_KINDS:
                yield noise, kind, NOISE_SEEDS, NOISE_SIZES, NOISE_RECIPE


BASELINES = {}
for (arch, arch_options), arch_ref in zip(config["archs"].items(), ARCHS.values()):
    name = arch if arch_ref is None else arch_ref.name  # an outside model's short name
    for noise, kind, seeds, sizes, recipe in noise_settings():
        for train_size in sizes:
            for seed in seeds:
                # the arch options (width) only when given: TrainSpec holds the default
                BASELINES[paths.baseline_id(DATASET, name, train_size, noise, seed, kind)] = dict(
                    arch=arch if arch_ref is None else arch_ref.entry,
                    **({"sources": {name: arch_ref.sha256}} if arch_ref is not None else {}),
                    train_size=train_size,
                    label_noise=noise,
                    noise_kind=kind,
                    seed=seed,
                    **(arch_options or {}),
                    **({"recipe": recipe} if recipe else {}),
                )

PRUNINGS = {scheme_slug(spec): spec for spec in config["pruning"]}
MAIN_SLUG = scheme_slug(MAIN_PRUNING)
# the label-noise sweep's pruning levels (grid.noise_pruning): the main one, and e.g. a second
# allocation of the same MACs target
NOISE_SLUGS = {scheme_slug(spec) for spec in GRID.get("noise_pruning", [MAIN_PRUNING])}
# fine-tuning budgets (finetune.budgets), shortest first: each fine-tuned run once per budget
BUDGETS = [budget.text for budget in study_budgets(config["finetune"])]
FINETUNE_SLUGS = {scheme_slug(s) for s in config["finetune"].get("pruning", config["pruning"])}
# a noisy baseline's runs are fine-tuned (finetune.noisy_baselines, default true) on its own noisy
# labels at finetune.noisy_budgets (default every budget)
NOISY_BUDGETS = (
    (
        [b.text for b in study_budgets({"budgets": config["finetune"]["noisy_budgets"]})]
        if "noisy_budgets" in config["finetune"]
        else BUDGETS
    )
    if config["finetune"].get("noisy_baselines", True)
    else []
)


def finetune_budgets(run):
    """The budgets at which a run (base, crit, si, prune) is fine-tuned: none unless its level is
    in finetune.pruning; BUDGETS for a clean baseline's run, NOISY_BUDGETS for a noisy one's."""
    base, _, _, prune = run
    if prune not in FINETUNE_SLUGS:
        return []
    return BUDGETS if BASELINES[base]["label_noise"] == MAIN_NOISE else NOISY_BUDGETS


def score_sizes(criterion):
    return [0] if criterion in FREE_CRITERIA else SIZES


# criteria that are pruned (and fine-tuned); the others are only scored (score stability)
PRUNE_CRITERIA = set(GRID.get("prune_criteria", CRITERION_NAMES))


def _wanted(base, crit, si, prune):
    """Full grid, or the sparse union of three sweeps around the main point:
    pruning levels, score_images (at the main noise) and label noise (at the main size);
    in either, only the criteria of grid.prune_criteria."""
    if crit not in PRUNE_CRITERIA:
        return False
    if not SPARSE:
        return True
    noise = BASELINES[base]["label_noise"]
    main_si = si == 0 or si == MAIN_SI
    return (
        (noise == MAIN_NOISE and main_si)  # pruning-level sweep
        or (noise == MAIN_NOISE and prune == MAIN_SLUG and si in SCORE_SWEEP and crit in SWEEP_CRITERIA)
        or (main_si and prune in NOISE_SLUGS)  # label-noise sweep
    )


RUNS = [
    (base, crit, si, prune)
    for base in BASELINES
    for crit in CRITERION_NAMES
    for si in score_sizes(crit)
    for prune in PRUNINGS
    if _wanted(base, crit, si, prune)
]


# Path templates of the rules (wildcards in braces), from nnprune.plan.paths like every path of a study.
BASELINE_DIR = paths.baseline_dir(OUT, "{base}")
RUN_DIR = paths.run_dir(OUT, "{base}", "{crit}", "{si}", "{prune}")
RUN_NAME = paths.run_name("{base}", "{crit}", "{si}", "{prune}")  # of logs and benchmarks


def score_file(base, crit, si):
    return f"{paths.score_dir(OUT, base, crit, si)}/scores.pt"


def score_metrics(base, crit, si):
    return f"{paths.score_dir(OUT, base, crit, si)}/metrics.json"


# Each job's settings as one JSON spec (nnprune.plan.jobspecs): lists stay lists, numbers numbers.
def train_spec(wildcards):
    return jobspecs.train_job(config, BASELINES[wildcards.base])


def score_spec(wildcards, criteria, sizes):
    return jobspecs.score_job(config, BASELINES[wildcards.base]["seed"], criteria, sizes, CRITERIA)


def prune_spec(wildcards):
    return jobspecs.prune_job(config, PRUNINGS[wildcards.prune], BASELINES[wildcards.base]["seed"])


def finetune_spec(wildcards):
    return jobspecs.finetune_job(config, BASELINES[wildcards.base]["seed"], wildcards.budget)


def pruned_metrics():
    return [f"{paths.run_dir(OUT, *run)}/{paths.PRUNED}/metrics.json" for run in RUNS]


def aggregate_inputs(wildcards):
    files = pruned_metrics()
    files += [
        f"{paths.run_dir(OUT, *run)}/{paths.finetuned_name(budget)}/metrics.json"
        for run in RUNS
        for budget in finetune_budgets(run)
    ]
    # the score files' metrics.json say which baseline each score file belongs to
    files += sorted({score_metrics(base, crit, si) for base, crit, si, _ in RUNS})
    return files


def score_files():
    """Every score file of the study (for the stability analysis): the score jobs write every
    score_images of every data-driven criterion, whether or not a run prunes with it
    (grid.score_sweep can leave sizes unpruned)."""
    used = {score_file(base, crit, si) for base, crit, si, _ in RUNS}
    bases = {base for base, *_ in RUNS}
    return sorted(used | {score_file(base, crit, si) for base in bases for crit in DATA_CRITERIA for si in SIZES})


TOY = config["toy"]
TOY_DATASETS = TOY.get("datasets", list(TOY_DATASET_NAMES)) if TOY.get("enabled", True) else []
# toy_curves_per_layer only when the per-layer allocation runs (ToySpec's default: both)
TOY_PER_LAYER = "per-layer" in TOY.get("allocations", ["global", "per-layer"])
TOY_FIGURES = (
    [f"boundaries_{d}" for d in TOY_DATASETS] + ["toy_curves"] + (["toy_curves_per_layer"] if TOY_PER_LAYER else [])
)


def toy_spec(wildcards):
    return jobspecs.toy_job(config, wildcards.toy)
