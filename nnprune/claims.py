"""Verdicts on the energy-aware paper's claims, computed from runs.csv, stability.csv and the toy
results: which rows each claim reads, its metric and its swept axis. The rule (nnprune/stats.py)
and the comparisons at every operating point (nnprune/verdicts.py) were fixed before the run;
claims.md restates them (nnprune/claims_render.py).

  toy          100 - boundary change (%), per share of hidden units removed; seeds x datasets
  data_size    per-layer Spearman of scores from score_images images with those from the
               largest, per score_images; data-driven criteria
  label_noise  minus the accuracy drop from each run's own noisy baseline (pp), per noise level
               and noise kind
  cnn          accuracy after fine-tuning (%), per pruning level, clean labels
  headline     (paper configs) fine-tuned top-1 of ResNet-56/110 against the paper's figures
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import UserError
from .studyconfig import main_label_noise
from .verdicts import Claim, ClaimInput, ClaimSettings, Family, assess, standard_frame

CLAIM_NAMES = ("toy", "data_size", "label_noise", "cnn")   # one forest plot each (workflow: CLAIM_FORESTS)
ACCURACIES = ("acc_pruned", "acc_pruned_bn", "acc_finetuned")


def _removed(fraction) -> str:
    return f"{100 * fraction:g}% removed"


def toy_input(toy: pd.DataFrame) -> ClaimInput:
    if "allocation" not in toy:
        toy = toy.assign(allocation="global")
    every = toy
    toy = toy[toy.allocation == "global"]
    clean = toy[toy.input_noise == 0]
    kept = standard_frame(clean, 100.0 - clean.boundary_change, "fraction", ["dataset"])
    secondary = [Family("accuracy", "test accuracy after pruning, clean inputs (%)", "fraction removed",
                        "accuracy_pp", standard_frame(clean, clean.acc_pruned, "fraction", ["dataset"]), _removed)]
    per_layer = every[(every.allocation == "per-layer") & (every.input_noise == 0)]
    if len(per_layer):
        secondary.append(Family(
            "per-layer allocation", "100 - boundary change (%), the same share removed from every layer",
            "fraction removed", "boundary_pp",
            standard_frame(per_layer, 100.0 - per_layer.boundary_change, "fraction", ["dataset"]), _removed))
    noisy = toy[toy.input_noise > 0].assign(sigma=lambda f: f.input_noise.map(lambda s: f"input noise sigma {s:g}"))
    if len(noisy):
        secondary.append(Family(
            "noisy test inputs", "test accuracy after pruning with Gaussian noise on the test inputs (%)",
            "fraction removed", "accuracy_pp",
            standard_frame(noisy, noisy.acc_pruned, "fraction", ["dataset"], stratum="sigma"), _removed))
    bases = clean.groupby(["dataset", "seed"]).acc_base.first().groupby("dataset").agg(["mean", "min"])
    notes = [f"{clean.seed.nunique()} seeds x {clean.dataset.nunique()} datasets x {clean.fraction.nunique()} "
             "fractions; MLP hidden units removed globally, no fine-tuning. Each seed's datasets are averaged "
             "into one paired value: the seed is the replicate.",
             "Unpruned test accuracy per dataset, mean (lowest seed), %: " + ", ".join(
                 f"{name} {row['mean']:.1f} ({row['min']:.1f})" for name, row in bases.iterrows())
             + ". The paper's setting asks for at least 99%."]
    return ClaimInput(
        "toy", "On 2-D toy data, without fine-tuning, pruning by nuclear norm changes the decision "
        "boundaries very little and beats the popular criteria.",
        "100 - boundary change: share of a dense grid over the input plane whose predicted class is unchanged "
        "after pruning (%), higher is better", "share of hidden units removed",
        "seed (one MLP per dataset; the datasets are averaged within a seed)", "boundary_pp", kept, _removed,
        primary_key="toy_fraction", default_axis=float(kept.axis.min()),
        default_rule="the smallest fraction", distance=lambda wanted, tested: abs(float(wanted) - float(tested)),
        secondary=secondary, notes=notes)


def data_size_input(stability: pd.DataFrame, runs: pd.DataFrame, main_pruning: str) -> ClaimInput:
    clean = stability[stability.label_noise == main_label_noise(stability.label_noise)]
    largest = int(clean.score_images.max())
    tested = clean[clean.score_images < largest]
    frame = standard_frame(tested, tested.spearman, "score_images", ["baseline", "layer"])
    notes = []
    medians = clean.groupby(["criterion", "score_images"]).spearman.median()
    smallest = int(clean.score_images.min())
    for criterion in sorted(clean.criterion.unique()):
        series = medians.loc[criterion]
        reached = series[series >= 0.9]
        first = int(reached.index.min()) if len(reached) else "not reached"
        notes.append(f"{criterion}: smallest score_images with median per-layer Spearman >= 0.9: {first} "
                     f"(median at {smallest}: {series.loc[smallest]:.3f})")
    level = runs[(runs.pruning == main_pruning) & (runs.label_noise == main_label_noise(runs.label_noise))
                 & (runs.score_images > 0)]
    sizes = sorted(level.score_images.unique())
    if len(sizes) >= 2:
        for metric in ACCURACIES:
            if metric not in level or level[metric].isna().all():
                continue
            table = level.pivot_table(index=["criterion", "seed"], columns="score_images", values=metric)
            change = (table[sizes[-1]] - table[sizes[0]]).groupby("criterion").agg(["mean", "std"])
            notes.append(f"{metric} change from {sizes[0]} to {sizes[-1]} scoring images (pp, mean±std over "
                         "seeds): " + ", ".join(f"{c} {r['mean']:+.2f}±{r['std']:.2f}" for c, r in change.iterrows()))
    return ClaimInput(
        "data_size", "The channel ranking and the pruned accuracy stay consistent when less data is used "
        "to compute importance.",
        f"per-layer Spearman correlation of a criterion's channel scores from score_images images with its "
        f"scores from {largest} images, higher is better; data-driven criteria", "scoring images",
        "seed (one baseline; its layers are averaged)", "spearman", frame, lambda size: f"{int(size)} images",
        primary_key="score_images", default_axis=int(frame.axis.min()) if len(frame) else None,
        default_rule="the smallest score_images", distance=lambda wanted, size: abs(np.log2(wanted / size)),
        notes=notes)


def _first_measured(frame: pd.DataFrame, candidates=("acc_finetuned", "acc_pruned_bn", "acc_pruned")) -> str:
    """The first accuracy measured in every row of `frame` (else in any row, else acc_pruned)."""
    for test in (lambda m: frame[m].notna().all(), lambda m: frame[m].notna().any()):
        for metric in candidates:
            if metric in frame and len(frame) and test(metric):
                return metric
    return "acc_pruned"


def label_noise_input(runs: pd.DataFrame, main_pruning: str, main_score_images: int) -> ClaimInput:
    part = runs[(runs.pruning == main_pruning) & runs.score_images.isin([0, main_score_images])
                & (runs.label_noise > main_label_noise(runs.label_noise))]
    metric = _first_measured(part)
    kind = "noise_kind" if "noise_kind" in part else None
    frame = standard_frame(part, part[metric] - part.acc_base, "label_noise", ["dataset", "arch", "train_size"],
                           stratum=kind)
    notes = []
    secondary = []
    if len(part) and (part.label_noise.nunique() > 1 or (kind and part.noise_kind.nunique() > 1)):
        # Every noisy baseline is its own replicate: levels and kinds pooled into one point.
        pooled = part.assign(baseline_replicate=part.label_noise.map("{:g}".format) + "/"
                             + (part.noise_kind if kind else "") + "/s" + part.seed.astype(str),
                             everything="all noisy baselines")
        secondary.append(Family(
            "all noisy baselines", f"minus the accuracy drop ({metric}) from each run's own noisy baseline (pp), "
            "every level and kind pooled; each noisy baseline is one replicate (baselines of one seed share "
            "its initialisation and data order, not their labels)", "label noise", "accuracy_pp",
            standard_frame(pooled, pooled[metric] - pooled.acc_base, "everything", ["dataset", "arch", "train_size"],
                           replicate="baseline_replicate", order=pd.Series(0.0, index=pooled.index)), str))
    all_noise = runs[(runs.pruning == main_pruning) & runs.score_images.isin([0, main_score_images])]
    for drop_metric in ACCURACIES:
        if drop_metric not in all_noise or all_noise[drop_metric].isna().all():
            continue
        drops = (all_noise.acc_base - all_noise[drop_metric]).groupby(
            [all_noise.criterion, all_noise.label_noise]).mean().unstack()
        notes.append(f"drop {drop_metric} (pp, mean over seeds and kinds) by label noise {list(drops.columns)}: "
                     + "; ".join(f"{c} {', '.join(f'{v:.2f}' for v in row)}" for c, row in drops.iterrows()))
    if len(part):
        counts = part.groupby(["label_noise", *([kind] if kind else [])]).seed.nunique()
        names = [" ".join(str(k) for k in (key if isinstance(key, tuple) else (key,))) for key in counts.index]
        notes.append("Noisy baselines (seeds) per level and kind: "
                     + ", ".join(f"{name}: {n}" for name, n in zip(names, counts))
                     + f"; {int(counts.sum())} in all.")
    return ClaimInput(
        "label_noise", "Pruning results stay consistent when the data are of lower quality (noisy labels).",
        f"minus the accuracy drop ({metric}) from each run's own noisy baseline (pp), higher is better; "
        f"{main_pruning}, score_images {main_score_images} (0 for data-free criteria)", "label noise",
        "seed (one noisy baseline per level and kind)", "accuracy_pp", frame, lambda level: f"noise {level:g}",
        primary_key="label_noise", stratum_key="noise_kind",
        default_axis=float(frame.axis.max()) if len(frame) else None, default_rule="the largest noise level",
        distance=lambda wanted, level: abs(float(wanted) - float(level)), secondary=secondary, notes=notes,
        strata_name="noise kind")


def allocation_and_level(text: str, arch: str | None = None) -> tuple[str, Any]:
    """A pruning string as (allocation, level): macs:<f> and uniform-macs:<f> as their MACs
    target f, so that the global and uniform allocations of one target share a level; any other
    scheme as its own string."""
    from .schemes import parse_scheme

    scheme = parse_scheme(text, arch)
    level = scheme.value if scheme.kind in ("macs", "uniform-macs") and scheme.round_to == 1 else text
    return scheme.allocation, level


def cnn_input(runs: pd.DataFrame, main_pruning: str, main_score_images: int,
              primary_pruning: str | None = None) -> ClaimInput:
    main_noise = main_label_noise(runs.label_noise)
    clean = runs[(runs.label_noise == main_noise) & runs.score_images.isin([0, main_score_images])]
    parsed = {text: allocation_and_level(text, arch) for text, arch in
              clean[["pruning", "arch"]].drop_duplicates().itertuples(index=False)}
    clean = clean.assign(allocation=clean.pruning.map(lambda t: parsed[t][0]),
                         level=clean.pruning.map(lambda t: parsed[t][1]))
    metric = next((m for m in ("acc_finetuned", "acc_pruned_bn", "acc_pruned")
                   if m in clean and clean[m].notna().any()), "acc_pruned")
    levels = clean.groupby("pruning")[metric].apply(lambda values: values.notna().any())
    part = clean[clean.pruning.isin(levels[levels].index)]
    macs = clean.groupby("pruning").macs_reduction.mean()

    def label(level) -> str:
        return f"-{100 * level:g}% MACs target" if isinstance(level, float) else str(level)

    def distance(wanted, level) -> float:
        return abs(100 * (float(wanted) - float(level))) if isinstance(level, float) and not isinstance(
            wanted, str) else float("inf")

    frame = standard_frame(part, part[metric], "level", ["dataset", "arch", "train_size"], stratum="allocation",
                           order=part.pruning.map(macs))
    secondary = []
    if metric != "acc_pruned_bn" and "acc_pruned_bn" in clean and clean.acc_pruned_bn.notna().any():
        secondary.append(Family("BN recalibrated", "accuracy after pruning with BatchNorm statistics re-estimated, "
                                "no fine-tuning (%)", "pruning level", "accuracy_pp",
                                standard_frame(clean, clean.acc_pruned_bn, "level", ["dataset", "arch", "train_size"],
                                               stratum="allocation", order=clean.pruning.map(macs)), label))
    untested = sorted(set(levels.index) - set(part.pruning))
    notes = [f"Pruning levels without {metric} (not fine-tuned), so not in this comparison: "
             + ", ".join(untested)] if untested else []
    params = clean.groupby("pruning").params_reduction.mean() if "params_reduction" in clean else {}
    notes.append("Measured cut per pruning string, mean over runs: " + ", ".join(
        f"{text} ({parsed[text][0]}) -{macs[text]:.1f}% MACs"
        + (f", -{params[text]:.1f}% params" if text in params else "")
        for text in sorted(macs.index, key=lambda t: (parsed[t][0], macs[t]))))
    if len(clean):
        bases = clean.groupby("seed").acc_base.first()
        notes.append(f"Unpruned test accuracy of the {len(bases)} clean baselines: mean {bases.mean():.2f}%, "
                     f"lowest {bases.min():.2f}%, highest {bases.max():.2f}%.")
    wanted = primary_pruning or main_pruning
    arch = clean.arch.iloc[0] if len(clean) else None
    try:
        wanted_allocation, wanted_level = allocation_and_level(wanted, arch)
    except UserError:        # a configured string this study cannot parse: the fallback rule takes over
        wanted_allocation, wanted_level = None, wanted
    default_allocation, default_level = parsed.get(main_pruning, (None, None))
    return ClaimInput(
        "cnn", "At the same pruning level (MACs cut), pruning by nuclear norm leaves a more accurate network "
        "than the other criteria (the paper's CIFAR-10 and ImageNet tables).",
        f"{metric} (%), higher is better; label noise {main_noise}, score_images {main_score_images} "
        "(0 for data-free criteria)", "pruning level (MACs target), per allocation", "seed (one baseline)",
        "accuracy_pp", frame, label, primary_key="pruning", stratum_key="allocation",
        default_axis=default_level, default_rule="the study's main pruning level", distance=distance,
        secondary=secondary, notes=notes, strata_name="allocation",
        primary_values={"pruning": wanted_level, "allocation": wanted_allocation or default_allocation})


def headline_claim(runs: pd.DataFrame, alpha: float = 0.05) -> dict | None:
    """Paper config only: ResNet-56/110 on CIFAR-10 at the paper's reductions. Supported when the
    (1 - alpha) t interval over seeds of (ours - paper) lies above -0.3 pp."""
    from .stats import t_interval

    targets = {"resnet56": (94.13, 40.4, 45.9), "resnet110": (94.61, 49.8, 52.9)}
    part = runs[(runs.dataset == "cifar10") & runs.arch.isin(targets) & (runs.criterion == "nuclear")
                & (runs.label_noise == 0)]
    if part.empty:
        return None
    notes, verdicts = [], []
    for arch, (acc, macs, params) in targets.items():
        rows = part[(part.arch == arch) & ((part.macs_reduction - macs).abs() < 2.0)]
        if rows.empty:
            continue
        low, high = t_interval(rows.groupby("seed").acc_finetuned.mean().to_numpy(float) - acc, alpha)
        decided = "supported" if low > -0.3 else "not supported" if high < -0.3 else "inconclusive"
        verdicts.append(decided)
        notes.append(f"{arch}: fine-tuned {rows.acc_finetuned.mean():.2f}% over {rows.seed.nunique()} seeds at "
                     f"-{rows.macs_reduction.mean():.1f}% MACs (paper {acc}% at -{macs}% MACs, -{params}% params); "
                     f"CI of ours - paper [{low:+.2f}, {high:+.2f}] pp: {decided}")
    verdict = "inconclusive" if not verdicts else (
        "supported" if all(v == "supported" for v in verdicts) else
        "not supported" if any(v == "not supported" for v in verdicts) else "inconclusive")
    return {"name": "headline", "claim": "ResNet-56: 94.13% top-1 at -40.4% FLOPs; ResNet-110: 94.61% at -49.8%.",
            "metric": "fine-tuned top-1 of nuclear runs within 2 pp of the paper's MACs reduction; supported if "
            "the CI of (ours - paper) lies above -0.3 pp", "axis": "architecture", "replicate": "seed",
            "verdict": verdict, "notes": notes}


LIMITS = [
    "Absolute CIFAR-10 / ImageNet accuracies: this default study runs a narrow ResNet-20 on "
    "Fashion-MNIST on a CPU; the headline numbers need config/paper-cifar10.yaml on GPUs.",
    "The toy MLP is scaled down (see the config's toy.width) and trained briefly.",
    "Few seeds (the config's seeds): `pairs` is the number of seeds behind a point, and its minimum "
    "detectable difference says how far the study is from an answer.",
    "Fine-tuning is short at this scale; accuracy after long fine-tuning may rank criteria differently.",
]


def build_claims(study_dir: Path, main_pruning: str, main_score_images: int,
                 settings: ClaimSettings | None = None) -> list[Claim]:
    settings = settings or ClaimSettings()
    inputs: list[ClaimInput] = []
    toy_path = study_dir / "toy" / "toy.csv"
    if toy_path.exists():
        inputs.append(toy_input(pd.read_csv(toy_path)))
    runs = pd.read_csv(study_dir / "runs.csv")
    stability_path = study_dir / "stability.csv"
    if stability_path.exists():
        stability = pd.read_csv(stability_path)
        if len(stability) and stability.score_images.nunique() > 1:
            inputs.append(data_size_input(stability, runs, main_pruning))
    if runs.label_noise.nunique() > 1:
        inputs.append(label_noise_input(runs, main_pruning, main_score_images))
    inputs.append(cnn_input(runs, main_pruning, main_score_images, settings.primary.get("pruning")))
    claims = [assess(spec, settings) for spec in inputs]
    headline = headline_claim(runs, settings.alpha)
    if headline:
        claims.append(Claim(**headline))
    return claims


def write_claims(study_dir: Path, main_pruning: str, main_score_images: int,
                 settings: ClaimSettings | None = None) -> list[Claim]:
    """claims.json, claims.md and claims_forest_{name}.png/.pdf for each of CLAIM_NAMES."""
    from .claims_render import RULE, render_markdown, write_forests
    from .io import write_json, write_text

    settings = settings or ClaimSettings()
    claims = build_claims(study_dir, main_pruning, main_score_images, settings)
    write_json(study_dir / "claims.json", {"rule": RULE, "settings": asdict(settings),
                                           "claims": [asdict(c) for c in claims], "limits": LIMITS})
    write_text(study_dir / "claims.md", render_markdown(claims, study_dir.name, settings, LIMITS))
    write_forests(claims, study_dir, CLAIM_NAMES)
    return claims
