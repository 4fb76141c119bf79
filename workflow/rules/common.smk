# Grid logic lives here and nowhere else: which baselines, score files and runs exist, and the
# CLI arguments of each. Rules only look things up by wildcard.
import hashlib


STUDY = config["study"]
OUT = f"results/{STUDY}"
DATASET = config["dataset"]
DATA_ROOT = config.get("data_root", "data")
THREADS = int(config.get("threads_per_job", 1))
DEVICE = config.get("device", "auto")
DATA_FREE = {"l1", "l2", "fpgm", "random"}  # criteria that read no data: one score file each

wildcard_constraints:
    base="[^/]+",
    crit="[a-z0-9-]+",
    si="[0-9]+",
    prune="[^/]+",


def _slug(spec):
    kind, _, argument = spec.partition(":")
    if kind == "rates":
        return "rates-" + hashlib.sha1(argument.replace(" ", "").encode()).hexdigest()[:8]
    return f"{kind}-{argument}"


def _baseline_id(arch, train_size, noise, seed):
    return f"{DATASET}__{arch}__n{train_size}__ln{noise}__s{seed}"


BASELINES = {}
for arch, arch_options in config["archs"].items():
    for train_size in config["train_size"]:
        for noise in config["label_noise"]:
            for seed in config["seeds"]:
                BASELINES[_baseline_id(arch, train_size, noise, seed)] = dict(
                    arch=arch, width=arch_options.get("width", 1.0), train_size=train_size,
                    label_noise=noise, seed=seed)

PRUNINGS = {_slug(spec): spec for spec in config["pruning"]}
FINETUNE_SLUGS = {_slug(spec) for spec in config["finetune"].get("pruning", config["pruning"])}


def score_sizes(criterion):
    return [0] if criterion in DATA_FREE else config["score_images"]


RUNS = [(base, crit, si, prune)
        for base in BASELINES
        for crit in config["criteria"]
        for si in score_sizes(crit)
        for prune in PRUNINGS]


def run_dir(base, crit, si, prune):
    return f"{OUT}/runs/{base}/{crit}_si{si}/{prune}"


def _options(options):
    """CLI flags from a dict: {"batch_size": 128, "amp": True} -> "--batch-size 128 --amp"."""
    parts = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "")
        else:
            parts.append(f"{flag} {value}")
    return " ".join(p for p in parts if p)


def train_args(wildcards):
    b = BASELINES[wildcards.base]
    return (f"--arch {b['arch']} --width {b['width']} --dataset {DATASET} --data-root {DATA_ROOT} "
            f"--train-size {b['train_size']} --val-size {config['val_size']} "
            f"--label-noise {b['label_noise']} --noise-kind {config.get('noise_kind', 'symmetric')} "
            f"--seed {b['seed']} --device {DEVICE} {_options(config['train'])}")


def score_args(wildcards):
    seed = BASELINES[wildcards.base]["seed"]
    return f"--criterion {wildcards.crit} --score-images {wildcards.si} --seed {seed} --device {DEVICE}"


def prune_args(wildcards):
    return f"--pruning '{PRUNINGS[wildcards.prune]}' --device {DEVICE}"


def finetune_args(wildcards):
    seed = BASELINES[wildcards.base]["seed"]
    options = {k: v for k, v in config["finetune"].items() if k != "pruning"}
    return f"--seed {seed} --device {DEVICE} {_options(options)}"


def aggregate_inputs(wildcards):
    files = []
    for run in RUNS:
        files.append(f"{run_dir(*run)}/pruned/metrics.json")
        if run[3] in FINETUNE_SLUGS:
            files.append(f"{run_dir(*run)}/finetuned/metrics.json")
    return files
