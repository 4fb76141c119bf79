"""Names of the registered criteria, architectures and datasets, importable without torch.

The workflow validates a config and builds its DAG from these (every SLURM job re-parses the
workflow, so parsing must not pay for importing torch). `nnprune.pruning.criteria.CRITERIA` and
`nnprune.models.MODELS` check at import that they register exactly these names (as do the
dataset and toy-dataset registries); `nnprune.plan.specs` offers them as choices.
"""
from __future__ import annotations

# criterion -> what it reads: weights, features (forward maps), gradients (maps and their
# gradients; uses labels) or seed. Data-driven criteria read features or gradients.
CRITERION_SOURCES: dict[str, str] = {
    "nuclear": "features",
    "nuclear-stacked": "features",
    "hrank": "features",
    "apoz": "features",
    "taylor": "gradients",
    "l1": "weights",
    "l2": "weights",
    "fpgm": "weights",
    "random": "seed",
    # Last, so that the criteria before it keep their colours in every figure (analysis.style).
    "chip": "features",
}
DATA_DRIVEN_SOURCES = ("features", "gradients")
# Criteria that need feature maps of more than one position (H x W > 1) and stop with a UserError
# on 1 x 1 maps, such as an MLP's units: the toy study (an MLP) offers the others.
SPATIAL_CRITERIA: tuple[str, ...] = ("chip",)
TOY_CRITERIA: tuple[str, ...] = tuple(name for name in CRITERION_SOURCES if name not in SPATIAL_CRITERIA)
# The paper's criterion (Yeom et al. 2021): the default `claims.focus`, the criterion every claim
# tests unless the config names another, and the criterion of the paper's published figures.
PAPER_CRITERION = "nuclear"
DEFAULT_FOCUS = PAPER_CRITERION

ARCHITECTURES: tuple[str, ...] = (
    "resnet20", "resnet32", "resnet56", "resnet110", "vgg16", "densenet40", "googlenet",
    "resnet50", "mlp")

# The in-memory datasets of `nnprune.data.DATASETS`, and imagenet (an ImageFolder root).
DATASET_NAMES: tuple[str, ...] = ("fashion-mnist", "mnist", "cifar10", "cifar100", "imagenet")
# The file whose presence under data_root says an in-memory dataset is there (nnprune.data checks
# these against its registry); imagenet needs train/ and val/ folders.
DATASET_FILES: dict[str, str] = {
    "fashion-mnist": "FashionMNIST/raw/train-images-idx3-ubyte", "mnist": "MNIST/raw/train-images-idx3-ubyte",
    "cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
# The test-set size of each in-memory dataset (`DatasetSpec.test_images`, checked equal at import of
# nnprune.data): the largest `test_size` a config may ask for, checked before any job.
DATASET_TEST_IMAGES: dict[str, int] = {"fashion-mnist": 10_000, "mnist": 10_000, "cifar10": 10_000, "cifar100": 10_000}
NOISE_KINDS: tuple[str, ...] = ("symmetric", "pairwise")    # nnprune.data.noise.flip_labels
TOY_DATASET_NAMES: tuple[str, ...] = ("moons", "circles", "spiral")    # nnprune.toy.TOY_DATASETS


def data_driven(criterion: str) -> bool:
    """Whether `criterion` reads data (and so has a score_images axis)."""
    return CRITERION_SOURCES[criterion] in DATA_DRIVEN_SOURCES


def check_registered(kind: str, registered: dict[str, str] | set[str], declared) -> None:
    """Raise when a registry and its declared names here disagree (a developer error)."""
    if registered != declared:
        raise RuntimeError(f"{kind} registry and nnprune/plan/names.py disagree: registered "
                           f"{registered}, declared {declared}; update nnprune/plan/names.py")
