# Grid logic lives here and nowhere else: the config is validated, then the baselines, score files
# and runs of the study are enumerated. Rules only look things up by wildcard.
import sys
from pathlib import Path

from snakemake.utils import validate

from nnprune.errors import UserError
from nnprune.schemes import scheme_slug
from nnprune.studyconfig import check, check_keys, main_label_noise


def _fail(problem, fix):
    sys.stderr.write(f"\nnnprune config error: {problem}\n  fix: {fix}\n\n")
    raise SystemExit(1)


# Friendly names for unknown keys/criteria/archs first, then the schema (which also sets defaults).
try:
    check_keys(config)
except UserError as error:
    _fail(error.problem, error.fix)
try:
    validate(config, str(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"))
except Exception as error:  # WorkflowError wrapping jsonschema's ValidationError
    _fail(
        f"config does not match workflow/schemas/config.schema.yaml: {error}",
        "correct the key named above; every allowed key and value is in that schema",
    )
try:
    check(config, require_data=False)
except UserError as error:
    _fail(error.problem, error.fix)


# The dataset is checked when execution starts (before any job), not at parse time, so that
# `snakemake -n` works on a machine without the data (e.g. the paper configs on a laptop).
onstart:
    from nnprune.studyconfig import check_dataset

    try:
        check_dataset(config)
    except UserError as error:
        _fail(error.problem, error.fix)


STUDY = config["study"]
OUT = f"results/{STUDY}"
DATASET = config["dataset"]
DATA_ROOT = config["data_root"]
THREADS = int(config["threads_per_job"])
DEVICE = config["device"]
# Follows --device in every step that runs the network (README "Reproducibility" gives the cost).
# Empty when off, so the shell commands (and Snakemake's params rerun trigger) stay as they were.
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


from nnprune.names import data_driven

DATA_CRITERIA = [c for c in config["criteria"] if data_driven(c)]
FREE_CRITERIA = [c for c in config["criteria"] if not data_driven(c)]
SIZES = sorted(config["score_images"])
GRID = config["grid"]
MAIN_SI = GRID.get("main_score_images", SIZES[-1])
MAIN_PRUNING = GRID.get("main_pruning", config["pruning"][0])
MAIN_NOISE = main_label_noise(config["label_noise"])
SPARSE = GRID.get("mode", "full") == "sparse"


wildcard_constraints:
    base="[^/]+",
    crit="[a-z0-9-]+",
    si="[0-9]+",
    prune="[^/]+",


def _baseline_id(arch, train_size, noise, seed):
    size = "all" if train_size is None else train_size
    return f"{DATASET}__{arch}__n{size}__ln{noise}__s{seed}"


BASELINES = {}
for arch, arch_options in config["archs"].items():
    for train_size in config["train_size"]:
        for noise in config["label_noise"]:
            for seed in config["seeds"]:
                BASELINES[_baseline_id(arch, train_size, noise, seed)] = dict(
                    arch=arch,
                    width=(arch_options or {}).get("width", 1.0),
                    train_size=train_size,
                    label_noise=noise,
                    seed=seed,
                )

PRUNINGS = {scheme_slug(spec): spec for spec in config["pruning"]}
MAIN_SLUG = scheme_slug(MAIN_PRUNING)
FINETUNE_SLUGS = {scheme_slug(s) for s in config["finetune"].get("pruning", config["pruning"])}


def score_sizes(criterion):
    return [0] if criterion in FREE_CRITERIA else SIZES


def _wanted(base, crit, si, prune):
    """Full grid, or the sparse union of three sweeps around the main point:
    pruning levels, score_images (at the main noise) and label noise (at the main size)."""
    if not SPARSE:
        return True
    noise = BASELINES[base]["label_noise"]
    main_si = si == 0 or si == MAIN_SI
    return (
        (noise == MAIN_NOISE and main_si)  # pruning-level sweep
        or (noise == MAIN_NOISE and prune == MAIN_SLUG)  # score_images sweep
        or (main_si and prune == MAIN_SLUG)  # label-noise sweep
    )


RUNS = [
    (base, crit, si, prune)
    for base in BASELINES
    for crit in config["criteria"]
    for si in score_sizes(crit)
    for prune in PRUNINGS
    if _wanted(base, crit, si, prune)
]


def run_dir(base, crit, si, prune):
    return f"{OUT}/runs/{base}/{crit}_si{si}/{prune}"


def _options(options):
    """CLI flags from a dict: {"batch_size": 128, "amp": True} -> "--batch-size 128 --amp"."""
    parts = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):
            parts.append(flag if value else "")
        else:
            parts.append(f"{flag} {value}")
    return " ".join(p for p in parts if p)


def train_args(wildcards):
    b = BASELINES[wildcards.base]
    size = "" if b["train_size"] is None else f"--train-size {b['train_size']}"
    if config["test_size"] is not None:
        size += f" --test-size {config['test_size']}"
    return (
        f"--arch {b['arch']} --width {b['width']} --dataset {DATASET} --data-root {DATA_ROOT} "
        f"{size} --val-size {config['val_size']} --label-noise {b['label_noise']} "
        f"--noise-kind {config['noise_kind']} --seed {b['seed']} --device {DEVICE}{DETERMINISTIC} "
        f"{_options(config['train'])}"
    )


def score_args(wildcards, criteria, sizes):
    seed = BASELINES[wildcards.base]["seed"]
    point = f"--feature-point {config['feature_point']}" if config.get("feature_point") else ""
    return (
        f"--criterion {','.join(criteria)} --score-images {','.join(map(str, sizes))} "
        f"--batch-size {config['score_batch_size']} --seed {seed} --device {DEVICE}{DETERMINISTIC} {point}"
    )


def prune_args(wildcards):
    latency = "--latency" if config["latency"] else ""
    return (
        f"--pruning '{PRUNINGS[wildcards.prune]}' --device {DEVICE}{DETERMINISTIC} {latency} "
        f"--bn-recalibration {config['bn_recalibration']} --seed {BASELINES[wildcards.base]['seed']}"
    )


def finetune_args(wildcards):
    seed = BASELINES[wildcards.base]["seed"]
    options = {k: v for k, v in config["finetune"].items() if k != "pruning"}
    return f"--seed {seed} --device {DEVICE}{DETERMINISTIC} {_options(options)}"


def pruned_metrics():
    return [f"{run_dir(*run)}/pruned/metrics.json" for run in RUNS]


def aggregate_inputs(wildcards):
    files = pruned_metrics()
    files += [f"{run_dir(*run)}/finetuned/metrics.json" for run in RUNS if run[3] in FINETUNE_SLUGS]
    return files


def score_files():
    """Every score file a run uses (for the stability analysis)."""
    return sorted({f"{OUT}/scores/{base}/{crit}_si{si}/scores.pt" for base, crit, si, _ in RUNS})


TOY = config["toy"]
TOY_DATASETS = TOY.get("datasets", ["moons", "circles", "spiral"]) if TOY.get("enabled", True) else []
TOY_FIGURES = [f"boundaries_{d}" for d in TOY_DATASETS] + ["toy_curves", "toy_curves_per_layer"]


def toy_args(wildcards):
    options = {
        k: (",".join(map(str, v)) if isinstance(v, list) else v)
        for k, v in TOY.items()
        if k not in ("datasets", "enabled")
    }
    return f"--device cpu {_options(options)}"
