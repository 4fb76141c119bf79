"""Verdicts on the energy-aware paper's claims, computed from runs.csv, stability.csv and the toy
results, by rules fixed here before any result was looked at.

THE RULE (the same for every claim). For each claim one primary metric is oriented so that
higher is better. The comparator is the other criterion with the best mean on that metric
(choosing it from the data favours the comparator, so a "supported" verdict is conservative).
Pairs are matched units (seed, plus dataset / fraction / layer / noise level where stated).
d = metric(nuclear) - metric(comparator) per pair; we report the mean of d, a 95% percentile
bootstrap CI (10,000 resamples, seed 0) and the two-sided Wilcoxon signed-rank p-value.
  supported      the CI lies entirely above 0   (nuclear better than the best other criterion)
  not supported  the CI lies entirely below 0   (the best other criterion is better)
  inconclusive   the CI contains 0, or fewer than 5 pairs
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RULE = ("d = metric(nuclear) - metric(best other criterion) over matched pairs; 95% bootstrap CI "
        "(10,000 resamples, seed 0) of mean d: supported if CI > 0, not supported if CI < 0, "
        "inconclusive if the CI contains 0 or there are fewer than 5 pairs. The best other "
        "criterion is the one with the best mean metric. Wilcoxon signed-rank p is reported too.")
MIN_PAIRS = 5
TABLE_METRIC = {"toy": "boundary change, % of grid points, lower is better",
                "data_size": "per-layer Spearman at the smallest score_images, higher is better",
                "label_noise": "accuracy drop from the own noisy baseline, pp, lower is better",
                "headline": "fine-tuned top-1 vs. the paper"}


@dataclass
class Comparison:
    comparator: str
    pairs: int
    mean_difference: float
    ci_low: float
    ci_high: float
    wilcoxon_p: float | None
    verdict: str


@dataclass
class Claim:
    name: str
    claim: str
    statistic: str
    per_criterion: dict[str, dict]
    comparison: Comparison | None
    verdict: str
    notes: list[str] = field(default_factory=list)


def bootstrap_ci(differences: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap CI of the mean of `differences`."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[index].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare(frame: pd.DataFrame, pair_keys: list[str], metric: str,
            focus: str = "nuclear") -> Comparison | None:
    """Paired comparison of `focus` with the best other criterion on `metric` (higher = better)."""
    from scipy.stats import wilcoxon

    if focus not in set(frame.criterion):
        return None
    others = frame[frame.criterion != focus].groupby("criterion")[metric].mean().dropna()
    if others.empty:
        return None
    comparator = str(others.idxmax())
    mine = frame[frame.criterion == focus].set_index(pair_keys)[metric]
    theirs = frame[frame.criterion == comparator].set_index(pair_keys)[metric]
    joined = pd.concat([mine.rename("a"), theirs.rename("b")], axis=1, join="inner").dropna()
    differences = (joined.a - joined.b).to_numpy(dtype=float)
    if len(differences) == 0:
        return Comparison(comparator, 0, float("nan"), float("nan"), float("nan"), None, "inconclusive")
    low, high = bootstrap_ci(differences)
    p_value = None
    if len(differences) >= 2 and np.any(differences != 0):
        p_value = float(wilcoxon(differences).pvalue)
    if len(differences) < MIN_PAIRS or low <= 0 <= high:
        verdict = "inconclusive"
    else:
        verdict = "supported" if low > 0 else "not supported"
    return Comparison(comparator, len(differences), float(differences.mean()), low, high, p_value, verdict)


def per_criterion(frame: pd.DataFrame, metric: str) -> dict[str, dict]:
    stats = frame.groupby("criterion")[metric].agg(["mean", "std", "count"])
    return {c: {"mean": round(float(r["mean"]), 4), "std": round(float(r["std"]), 4)
                if pd.notna(r["std"]) else None, "n": int(r["count"])} for c, r in stats.iterrows()}


def toy_claim(toy: pd.DataFrame) -> Claim:
    if "allocation" not in toy:
        toy = toy.assign(allocation="global")
    every = toy
    toy = toy[toy.allocation == "global"]
    clean = toy[toy.input_noise == 0].assign(boundary_kept=lambda f: 100.0 - f.boundary_change)
    comparison = compare(clean, ["dataset", "fraction", "seed"], "boundary_kept")
    notes = [f"{clean.seed.nunique()} seeds x {clean.dataset.nunique()} datasets x "
             f"{clean.fraction.nunique()} pruning fractions; MLP hidden units removed globally, "
             "no fine-tuning."]
    accuracy = compare(clean, ["dataset", "fraction", "seed"], "acc_pruned")
    if accuracy:
        notes.append(f"Secondary (accuracy after pruning, clean test): nuclear - {accuracy.comparator} = "
                     f"{accuracy.mean_difference:+.2f} pp, CI [{accuracy.ci_low:+.2f}, {accuracy.ci_high:+.2f}], "
                     f"{accuracy.verdict} by the same rule.")
    for sigma in sorted(s for s in toy.input_noise.unique() if s > 0):
        noisy = toy[toy.input_noise == sigma]
        result = compare(noisy, ["dataset", "fraction", "seed"], "acc_pruned")
        if result:
            notes.append(f"Test inputs with Gaussian noise sigma={sigma}: accuracy nuclear - "
                         f"{result.comparator} = {result.mean_difference:+.2f} pp, CI "
                         f"[{result.ci_low:+.2f}, {result.ci_high:+.2f}] ({result.verdict}).")
    per_layer = every[(every.allocation == "per-layer") & (every.input_noise == 0)]
    if len(per_layer):
        result = compare(per_layer.assign(boundary_kept=100.0 - per_layer.boundary_change),
                         ["dataset", "fraction", "seed"], "boundary_kept")
        changes = per_layer.groupby("criterion").boundary_change.mean().sort_values()
        notes.append("Secondary, per-layer allocation (same fraction in every layer): boundary change "
                     "(%) " + ", ".join(f"{c} {v:.1f}" for c, v in changes.items()) +
                     f"; nuclear vs {result.comparator}: {result.mean_difference:+.2f} pp kept, CI "
                     f"[{result.ci_low:+.2f}, {result.ci_high:+.2f}] ({result.verdict}).")
    return Claim(
        "toy", "On 2-D toy data, without fine-tuning, pruning by nuclear norm changes the decision "
        "boundaries very little and beats the popular criteria.",
        "share of a dense grid over the input plane whose predicted class is unchanged after "
        "pruning (100 - boundary change, %), paired over (dataset, fraction, seed)",
        per_criterion(clean, "boundary_change"), comparison,
        comparison.verdict if comparison else "inconclusive", notes)


def data_size_claim(stability: pd.DataFrame, runs: pd.DataFrame, main_pruning: str) -> Claim:
    clean = stability[stability.label_noise == stability.label_noise.min()]
    smallest = clean.score_images.min()
    at_smallest = clean[clean.score_images == smallest]
    comparison = compare(at_smallest, ["baseline", "layer"], "spearman")
    notes = []
    medians = clean.groupby(["criterion", "score_images"]).spearman.median()
    for criterion in sorted(clean.criterion.unique()):
        series = medians.loc[criterion]
        reached = series[series >= 0.9]
        first = int(reached.index.min()) if len(reached) else None
        notes.append(f"{criterion}: smallest score_images with median per-layer Spearman >= 0.9: "
                     f"{first if first is not None else 'not reached'} "
                     f"(median at {smallest}: {series.loc[smallest]:.3f})")
    level = runs[(runs.pruning == main_pruning) & (runs.label_noise == runs.label_noise.min())
                 & (runs.score_images > 0)]
    sizes = sorted(level.score_images.unique())
    if len(sizes) >= 2:
        for metric in ("acc_pruned", "acc_pruned_bn", "acc_finetuned"):
            if metric not in level or level[metric].isna().all():
                continue
            table = level.pivot_table(index=["criterion", "seed"], columns="score_images", values=metric)
            change = (table[sizes[-1]] - table[sizes[0]]).groupby("criterion").agg(["mean", "std"])
            parts = [f"{c} {r['mean']:+.2f}±{r['std']:.2f}" for c, r in change.iterrows()]
            notes.append(f"{metric} change from {sizes[0]} to {sizes[-1]} scoring images (pp, "
                         f"mean±std over seeds): " + ", ".join(parts))
    return Claim(
        "data_size", "The channel ranking and the pruned accuracy stay consistent when less data is "
        "used to compute importance.",
        f"per-layer Spearman correlation of channel scores computed from {smallest} images with "
        f"those from {int(clean.score_images.max())} images, paired over (baseline, layer); "
        "data-driven criteria only", per_criterion(at_smallest, "spearman"), comparison,
        comparison.verdict if comparison else "inconclusive", notes)


def label_noise_claim(runs: pd.DataFrame, main_pruning: str, main_score_images: int) -> Claim:
    part = runs[(runs.pruning == main_pruning) & runs.score_images.isin([0, main_score_images])
                & (runs.label_noise > runs.label_noise.min())].copy()
    metric = "acc_finetuned" if part.acc_finetuned.notna().any() else "acc_pruned"
    part["kept"] = -(part.acc_base - part[metric])   # minus the drop from its own noisy baseline
    comparison = compare(part, ["label_noise", "seed"], "kept")
    notes = []
    all_noise = runs[(runs.pruning == main_pruning) & runs.score_images.isin([0, main_score_images])]
    for drop_metric in ("acc_pruned", "acc_pruned_bn", "acc_finetuned"):
        if drop_metric not in all_noise or all_noise[drop_metric].isna().all():
            continue
        drops = (all_noise.acc_base - all_noise[drop_metric]).groupby(
            [all_noise.criterion, all_noise.label_noise]).mean().unstack()
        slope = {c: np.polyfit(drops.columns.astype(float), row.to_numpy(float), 1)[0] / 10
                 for c, row in drops.iterrows() if row.notna().all()}
        notes.append(f"drop {drop_metric} (pp) by label noise {list(drops.columns)}: " + "; ".join(
            f"{c} {', '.join(f'{v:.2f}' for v in row)} (growth {slope.get(c, float('nan')):+.2f} pp "
            f"per +0.1 noise)" for c, row in drops.iterrows()))
    return Claim(
        "label_noise", "Pruning results stay consistent when the data are of lower quality (noisy "
        "labels).",
        f"accuracy drop ({metric}) from each run's own noisy baseline, at label noise > "
        f"{runs.label_noise.min()}, negated so higher = better, paired over (noise level, seed)",
        per_criterion(part.assign(drop=part.acc_base - part[metric]), "drop"), comparison,
        comparison.verdict if comparison else "inconclusive", notes)


def headline_claim(runs: pd.DataFrame) -> Claim | None:
    """Paper config only: ResNet-56/110 on CIFAR-10 at the paper's reductions."""
    targets = {"resnet56": (94.13, 40.4, 45.9), "resnet110": (94.61, 49.8, 52.9)}
    part = runs[(runs.dataset == "cifar10") & runs.arch.isin(targets) & (runs.criterion == "nuclear")
                & (runs.label_noise == 0)]
    if part.empty:
        return None
    stats = {}
    verdicts = []
    for arch, (acc, macs, params) in targets.items():
        rows = part[(part.arch == arch) & ((part.macs_reduction - macs).abs() < 2.0)]
        if rows.empty:
            continue
        stats[arch] = {"acc_finetuned_mean": float(rows.acc_finetuned.mean()),
                       "acc_finetuned_std": float(rows.acc_finetuned.std()), "n": len(rows),
                       "macs_reduction": float(rows.macs_reduction.mean()),
                       "paper": {"acc": acc, "macs_reduction": macs, "params_reduction": params}}
        low, high = bootstrap_ci(rows.acc_finetuned.to_numpy(float) - acc) if len(rows) > 1 else (np.nan, np.nan)
        verdicts.append("supported" if low > -0.3 else "not supported" if high < -0.3 else "inconclusive")
    verdict = "inconclusive" if not verdicts else (
        "supported" if all(v == "supported" for v in verdicts) else
        "not supported" if any(v == "not supported" for v in verdicts) else "inconclusive")
    return Claim("headline", "ResNet-56: 94.13% top-1 at -40.4% FLOPs; ResNet-110: 94.61% at -49.8%.",
                 "fine-tuned top-1 of nuclear runs within 2 pp of the paper's MACs reduction; "
                 "supported if the 95% CI of (ours - paper) lies above -0.3 pp", stats, None, verdict)


LIMITS = [
    "Absolute CIFAR-10 / ImageNet accuracies: this default study runs a narrow ResNet-20 on "
    "Fashion-MNIST on a CPU; the headline numbers need config/paper-cifar10.yaml on GPUs.",
    "The toy MLP is scaled down (see the config's toy.width) and trained briefly.",
    "Few seeds (the config's seeds): CIs are wide and verdicts are often 'inconclusive'.",
    "Fine-tuning is short at this scale; accuracy after long fine-tuning may rank criteria differently.",
]


def build_claims(study_dir: Path, main_pruning: str, main_score_images: int) -> list[Claim]:
    claims = []
    toy_path = study_dir / "toy" / "toy.csv"
    if toy_path.exists():
        claims.append(toy_claim(pd.read_csv(toy_path)))
    runs = pd.read_csv(study_dir / "runs.csv")
    stability_path = study_dir / "stability.csv"
    if stability_path.exists():
        stability = pd.read_csv(stability_path)
        if len(stability):
            claims.append(data_size_claim(stability, runs, main_pruning))
    if runs.label_noise.nunique() > 1:
        claims.append(label_noise_claim(runs, main_pruning, main_score_images))
    headline = headline_claim(runs)
    if headline:
        claims.append(headline)
    return claims


def render_markdown(claims: list[Claim], study: str) -> str:
    lines = [f"# Claims of Yeom et al. 2021 (energy-aware pruning), tested by study `{study}`", "",
             "## Decision rule (fixed before looking at results)", "", RULE, ""]
    for claim in claims:
        lines += [f"## {claim.name}: **{claim.verdict}**", "", f"*Claim.* {claim.claim}", "",
                  f"*Statistic.* {claim.statistic}", ""]
        if claim.comparison:
            c = claim.comparison
            p = "n/a" if c.wilcoxon_p is None else f"{c.wilcoxon_p:.3g}"
            lines += [f"*Test.* nuclear vs. best other criterion `{c.comparator}`: mean difference "
                      f"{c.mean_difference:+.3f} over {c.pairs} pairs, 95% bootstrap CI "
                      f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}], Wilcoxon p = {p}.", ""]
        lines += [f"*Per criterion* ({TABLE_METRIC.get(claim.name, 'the statistic')}, mean ± std over pairs):", "",
                  "| criterion | mean | std | n |", "|---|---|---|---|"]
        for name, s in sorted(claim.per_criterion.items()):
            if "mean" in s:
                std = "–" if s["std"] is None else f"{s['std']:.3f}"
                lines.append(f"| {name} | {s['mean']:.3f} | {std} | {s['n']} |")
            else:
                lines.append(f"| {name} | {json.dumps(s)} | | |")
        lines.append("")
        lines += [f"- {note}" for note in claim.notes] + [""]
    lines += ["## What this scale cannot show", ""] + [f"- {limit}" for limit in LIMITS] + [""]
    return "\n".join(lines)


def write_claims(study_dir: Path, main_pruning: str, main_score_images: int) -> list[Claim]:
    from .io import write_json, write_text

    claims = build_claims(study_dir, main_pruning, main_score_images)
    write_json(study_dir / "claims.json", {"rule": RULE, "claims": [asdict(c) for c in claims],
                                           "limits": LIMITS})
    write_text(study_dir / "claims.md", render_markdown(claims, study_dir.name))
    return claims
