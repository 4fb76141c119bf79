"""claims.md's "What this scale cannot show", written from what the study ran (its StudyScale, built
from the config by `nnprune.plan.jobspecs.claims_scale`), so each study's claims.md states its own
dataset, networks, training and fine-tuning budgets, seeds and toy size."""
from __future__ import annotations

from nnprune.plan.budgets import budget_label
from nnprune.plan.specs import StudyScale

PAPER_DATASETS = ("cifar10", "imagenet")    # where the paper's headline numbers were measured
PAPER_TOY_UNITS = 1000                     # hidden units per layer of the paper's toy MLP


def _images(train_size: int | None) -> str:
    return "all training images but the validation split" if train_size is None else f"{train_size:,} training images"


def _networks(scale: StudyScale) -> str:
    return ", ".join(f"{arch} at width {width:g}" for arch, width in zip(scale.archs, scale.widths))


def accuracy_limit(scale: StudyScale) -> str:
    """Where the absolute accuracies come from, and whether they can be set beside the paper's."""
    def trained(sizes: list[int | None], epochs: int | None) -> str:
        return f"{' / '.join(_images(n) for n in sizes)} for {epochs} epochs"

    clean = trained(scale.train_sizes, scale.train_epochs)
    noisy = trained(scale.noise_train_sizes, scale.noise_epochs) if scale.noise_seeds else clean
    recipe = (f"{scale.dataset}: {_networks(scale)}, each baseline trained on {clean}" if noisy == clean else
              f"{scale.dataset}: {_networks(scale)}, each clean baseline trained on {clean}, each noisy one on {noisy}")
    if scale.dataset in PAPER_DATASETS:
        return (f"Absolute accuracies: this study trains on the paper's own dataset, {recipe}; the `headline` claim "
                "sets them beside the paper's figures.")
    return (f"Absolute CIFAR-10 / ImageNet accuracies: this study trains on {recipe}; the paper's headline numbers "
            "need config/paper-cifar10.yaml or config/paper-imagenet.yaml on GPUs.")


def toy_limit(scale: StudyScale) -> str:
    """The toy MLP's size against the paper's 2-1000-1000-1000-C."""
    if scale.toy_width is None:
        return "No toy study (toy.enabled: false): the toy claim is not tested."
    units = max(1, round(PAPER_TOY_UNITS * scale.toy_width))
    size = (f"has the paper's size (width {scale.toy_width:g}, 2-{units}-{units}-{units}-C)"
            if units >= PAPER_TOY_UNITS else
            f"is scaled down to width {scale.toy_width:g} (2-{units}-{units}-{units}-C, against the paper's "
            f"2-{PAPER_TOY_UNITS}-{PAPER_TOY_UNITS}-{PAPER_TOY_UNITS}-C)")
    return f"The toy MLP {size}, trained for {scale.toy_steps} Adam steps, {scale.toy_seeds} seeds per dataset."


def seeds_limit(scale: StudyScale) -> str:
    """How many seeds stand behind each comparison."""
    noisy = (f"; each noisy baseline (label level and kind) has {len(scale.noise_seeds)} seed"
             f"{'s' if len(scale.noise_seeds) != 1 else ''}" if scale.noise_seeds else "")
    return (f"{len(scale.seeds)} seed{'s' if len(scale.seeds) != 1 else ''} of the clean baselines "
            f"({', '.join(map(str, scale.seeds))}){noisy}: `pairs` is the number of seeds behind a point, and its "
            "minimum detectable difference says how far the study is from an answer.")


def budget_limit(scale: StudyScale) -> str:
    """The fine-tuning budgets, and what the regime check says about them."""
    budgets = ", ".join(f"{budget_label(text)} (`{text}`)" for text in scale.budgets)
    return (f"Fine-tuning budgets: {budgets}, each a standalone fine-tune (runs.csv, column budget). Each CNN point "
            "carries a regime check: where the best criterion lies more than claims.regime_gap_pp below its "
            "baselines, the point measures how fast a damaged network recovers, not the paper's regime of "
            "negligible loss.")


def study_limits(scale: StudyScale) -> list[str]:
    """The limits of claims.md and claims.json; a scale left empty (no --scale) gives a generic list."""
    if scale.dataset is None:
        return ["The study's settings were not passed to `nnprune claims` (--scale): see its config for the "
                "dataset, networks, budgets and seeds behind these verdicts; `pairs` is the number of seeds "
                "behind a point."]
    return [accuracy_limit(scale), toy_limit(scale), seeds_limit(scale), budget_limit(scale)]
