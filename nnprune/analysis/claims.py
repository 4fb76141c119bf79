"""Verdicts on the energy-aware paper's claims, computed from runs.csv, stability.csv and the toy
results: which rows each claim reads, its metric and its swept axis. The rule (nnprune/analysis/stats.py)
and the comparisons at every operating point (nnprune/analysis/verdicts.py) were fixed before the run;
claims.md restates them (nnprune/analysis/claims_render.py).

  toy          100 - boundary change (%), per share of hidden units removed; seeds x datasets
  data_size    per-layer Spearman of scores from score_images images with those from the
               largest, per score_images; data-driven criteria. Second reading (a secondary
               family): fine-tuned accuracy pruned from fewer images minus from the most, the
               focus against the best other criterion and each criterion against 0 (consistency)
  label_noise  minus the accuracy drop from each run's own noisy baseline (pp), per noise level
               and noise kind: after fine-tuning at the largest budget on the run's own noisy
               labels where the noisy runs were fine-tuned (BN-recalibrated as a secondary family)
  cnn          test accuracy (%) per pruning level and fine-tuning budget (BN-recalibrated first,
               then each budget), clean labels; each point with its regime check
  headline     (paper configs) fine-tuned top-1 of ResNet-56/110 against the paper's figures
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnprune.analysis.aggregate import at_budget, one_per_run, study_budgets_of
from nnprune.analysis.table_text import number
from nnprune.analysis.verdicts import (
    Claim,
    ClaimInput,
    ClaimSettings,
    Family,
    assess,
    same_value,
    standard_frame,
)
from nnprune.errors import UserError
from nnprune.plan.budgets import BN, RAW, budget_label, budget_order, parse_budget
from nnprune.plan.names import PAPER_CRITERION
from nnprune.plan.specs import StudyScale
from nnprune.plan.studyconfig import main_label_noise

CLAIM_NAMES = ("toy", "data_size", "label_noise", "cnn")   # one forest plot each (workflow: CLAIM_FORESTS)
ACCURACIES = ("acc_pruned", "acc_pruned_bn", "acc_finetuned")
PAPER_NORM = "pruning by nuclear norm"    # the paper's wording of its criterion in the claim texts


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
    runs = at_budget(runs)
    level = runs[(runs.pruning == main_pruning) & (runs.label_noise == main_label_noise(runs.label_noise))
                 & (runs.score_images > 0)]
    sizes = sorted(level.score_images.unique())
    if len(sizes) >= 2:
        for metric in ACCURACIES:
            if metric not in level or level[metric].isna().all():
                continue
            table = level.pivot_table(index=["criterion", "seed"], columns="score_images", values=metric)
            change = (table[sizes[-1]] - table[sizes[0]]).dropna().groupby("criterion").agg(["mean", "std"])
            notes.append(f"{metric} change from {sizes[0]} to {sizes[-1]} scoring images (pp, mean±std over "
                         "seeds): " + ", ".join(f"{c} {number(r['mean'], 2, sign=True)}±{number(r['std'], 2)}"
                                                 for c, r in change.iterrows()))
    secondary = data_size_accuracy(level, clean_baselines(runs))
    return ClaimInput(
        "data_size", "The channel ranking and the pruned accuracy stay consistent when less data is used "
        "to compute importance.",
        f"per-layer Spearman correlation of a criterion's channel scores from score_images images with its "
        f"scores from {largest} images, higher is better; data-driven criteria", "scoring images",
        "seed (one baseline; its layers are averaged)", "spearman", frame, lambda size: f"{int(size)} images",
        primary_key="score_images", default_axis=int(frame.axis.min()) if len(frame) else None,
        default_rule="the smallest score_images", distance=lambda wanted, size: abs(np.log2(wanted / size)),
        notes=notes, secondary=secondary)


def clean_baselines(runs: pd.DataFrame) -> dict:
    """Each clean baseline's test accuracy (%), by seed."""
    clean = runs[runs.label_noise == main_label_noise(runs.label_noise)]
    return {seed: float(value) for seed, value in clean.groupby("seed").acc_base.first().items()}


def data_size_accuracy(level: pd.DataFrame, baselines: dict) -> list[Family]:
    """The data-size claim's second half, "the pruned accuracy stays consistent": for every
    criterion pruned from fewer images than the most (grid.score_sweep), its network's accuracy at
    the largest budget (else the first measured one) minus that of its network pruned from the
    most images, per seed. The focus against the best other criterion pruned from as few images
    (a family), and each criterion's own difference against 0 ("consistent": equivalent)."""
    if level.empty or level.score_images.nunique() < 2:
        return []
    most = int(level.score_images.max())
    metric = _first_measured(level)
    table = level.pivot_table(index=["criterion", "seed"], columns="score_images", values=metric)
    rows = []
    for size in sorted(s for s in table.columns if s != most):
        pair = table[[size, most]].dropna()
        rows += [{"criterion": criterion, "axis": int(size), "order": int(size), "replicate": seed, "unit": "",
                  "a": float(values[size]), "b": float(values[most])}
                 for (criterion, seed), values in pair.iterrows()]
    if not rows:
        return []
    paired_rows = pd.DataFrame(rows)
    frame = paired_rows.assign(stratum="", value=paired_rows.a - paired_rows.b)[
        ["criterion", "stratum", "axis", "order", "replicate", "unit", "value"]]
    absolute = paired_rows.assign(stratum="", value=paired_rows.a)[
        ["criterion", "stratum", "axis", "order", "replicate", "unit", "value"]]
    pruned = sorted(set(paired_rows.criterion))
    reading = "after fine-tuning at the largest budget" if metric == "acc_finetuned" else f"({metric})"
    notes = [f"Criteria pruned from fewer than {most} images (grid.score_sweep_criteria): {', '.join(pruned)}."]
    if len(pruned) < 2:
        notes.append("No other criterion was pruned from as few images, so the focus has no comparator here; "
                     "each criterion's own difference is tested against 0 (consistency).")
    return [Family(
        "pruned accuracy", f"test accuracy {reading} of the network pruned from score_images images minus the one "
        f"pruned from {most} (pp, per seed); higher is better, 0 is consistent", "scoring images", "accuracy_pp",
        frame, lambda size: f"{int(size)} images", baselines=baselines, regime_frame=absolute,
        consistency=paired_rows[["criterion", "axis", "replicate", "unit", "a", "b"]], notes=notes)]


def _first_measured(frame: pd.DataFrame, candidates=("acc_finetuned", "acc_pruned_bn", "acc_pruned")) -> str:
    """The first accuracy measured in every row of `frame` (else in any row, else acc_pruned)."""
    for test in (lambda m: frame[m].notna().all(), lambda m: frame[m].notna().any()):
        for metric in candidates:
            if metric in frame and len(frame) and test(metric):
                return metric
    return "acc_pruned"


def label_noise_input(runs: pd.DataFrame, main_pruning: str, main_score_images: int) -> ClaimInput:
    """The label-noise claim: each noisy run's accuracy minus its own noisy baseline's (both on the
    clean test set), per noise level and kind. Read after fine-tuning at the largest budget, on
    the run's own noisy labels, where the noisy runs were fine-tuned (the paper's regime); the
    BatchNorm-recalibrated reading before fine-tuning stays as a secondary family. Every point gets
    the regime check: the best criterion's drop from its noisy baselines against regime_gap_pp."""
    runs = at_budget(runs)
    noisy = runs[runs.score_images.isin([0, main_score_images])
                 & (runs.label_noise > main_label_noise(runs.label_noise))]
    part = noisy[noisy.pruning == main_pruning]
    metric = _first_measured(part)
    kind = "noise_kind" if "noise_kind" in part else None
    units = ["dataset", "arch", "train_size"]
    frame = standard_frame(part, part[metric] - part.acc_base, "label_noise", units, stratum=kind)
    absolute = standard_frame(part, part[metric], "label_noise", units, stratum=kind)
    baselines = {(str(row.noise_kind) if kind else "", row.seed): float(row.acc_base)
                 for row in part.drop_duplicates(["label_noise", *([kind] if kind else []), "seed"]).itertuples()}
    when = _reading(metric, runs)
    notes = []
    secondary = []
    if metric == "acc_finetuned" and "acc_pruned_bn" in part and part.acc_pruned_bn.notna().all():
        secondary.append(Family(
            "before fine-tuning (BN recalibrated)", "minus the accuracy drop (acc_pruned_bn) from each run's own "
            "noisy baseline (pp), BatchNorm statistics re-estimated, no fine-tuning: outside the paper's regime, "
            "where the allocation decides much of the result", "label noise", "accuracy_pp",
            standard_frame(part, part.acc_pruned_bn - part.acc_base, "label_noise", units, stratum=kind),
            lambda value: f"noise {value:g}", baselines=baselines,
            regime_frame=standard_frame(part, part.acc_pruned_bn, "label_noise", units, stratum=kind)))
    if len(part) and (part.label_noise.nunique() > 1 or (kind and part.noise_kind.nunique() > 1)):
        # Every noisy baseline is its own replicate: levels and kinds pooled into one point.
        pooled = part.assign(baseline_replicate=part.label_noise.map("{:g}".format) + "/"
                             + (part.noise_kind if kind else "") + "/s" + part.seed.astype(str),
                             everything="all noisy baselines")
        secondary.append(Family(
            "all noisy baselines", f"minus the accuracy drop ({metric}, {when}) from each run's own noisy baseline "
            "(pp), every level and kind pooled; each noisy baseline is one replicate (baselines of one seed share "
            "its initialisation and data order, not their labels)", "label noise", "accuracy_pp",
            standard_frame(pooled, pooled[metric] - pooled.acc_base, "everything", units,
                           replicate="baseline_replicate", order=pd.Series(0.0, index=pooled.index)), str))
    # The same comparison at every other allocation of the main MACs target (grid.noise_pruning):
    # does the verdict depend on how the cut is spread over the layers?
    main_allocation, main_level = allocation_and_level(main_pruning, part.arch.iloc[0] if len(part) else None)
    for text in sorted(set(noisy.pruning) - {main_pruning}):
        allocation, level = allocation_and_level(text, noisy.arch.iloc[0])
        other = noisy[noisy.pruning == text]
        if not same_value(level, main_level) or _first_measured(other) != metric:
            continue
        secondary.append(Family(
            f"{allocation} allocation ({text})", f"as the main comparison, pruned by {text}: the same MACs target "
            f"spread over the layers by the {allocation} allocation", "label noise", "accuracy_pp",
            standard_frame(other, other[metric] - other.acc_base, "label_noise", units,
                           stratum=kind), lambda value: f"noise {value:g}"))
    if main_allocation:
        notes.append(f"Main comparison at {main_pruning} ({main_allocation} allocation), {when}.")
    all_noise = runs[(runs.pruning == main_pruning) & runs.score_images.isin([0, main_score_images])]
    for drop_metric in ACCURACIES:
        if drop_metric not in all_noise or all_noise[drop_metric].isna().all():
            continue
        drops = (all_noise.acc_base - all_noise[drop_metric]).groupby(
            [all_noise.criterion, all_noise.label_noise]).mean().unstack()
        notes.append(f"drop {drop_metric} (pp, mean over seeds and kinds) by label noise {list(drops.columns)}: "
                     + "; ".join(f"{c} {', '.join(number(v, 2) for v in row)}" for c, row in drops.iterrows()))
    recipe = _recipe_difference(runs)
    if recipe:
        notes.append(recipe)
    if len(part):
        counts = part.groupby(["label_noise", *([kind] if kind else [])]).seed.nunique()
        names = [" ".join(str(k) for k in (key if isinstance(key, tuple) else (key,))) for key in counts.index]
        notes.append("Noisy baselines (seeds) per level and kind: "
                     + ", ".join(f"{name}: {n}" for name, n in zip(names, counts))
                     + f"; {int(counts.sum())} in all.")
    return ClaimInput(
        "label_noise", "Pruning results stay consistent when the data are of lower quality (noisy labels).",
        f"minus the accuracy drop ({metric}, {when}) from each run's own noisy baseline on the clean test set (pp), "
        f"higher is better; {main_pruning}, score_images {main_score_images} (0 for data-free criteria)",
        "label noise", "seed (one noisy baseline per level and kind)", "accuracy_pp", frame,
        lambda level: f"noise {level:g}", primary_key="label_noise", stratum_key="noise_kind",
        default_axis=float(frame.axis.max()) if len(frame) else None, default_rule="the largest noise level",
        distance=lambda wanted, level: abs(float(wanted) - float(level)), secondary=secondary, notes=notes,
        strata_name="noise kind", baselines=baselines if len(part) else None, regime_frame=absolute)


def _reading(metric: str, runs: pd.DataFrame) -> str:
    """When a label-noise reading is taken, in words."""
    if metric == "acc_finetuned":
        budgets = study_budgets_of(runs)
        return (f"after fine-tuning for {budget_label(budgets[-1])} on the run's own noisy labels" if budgets
                else "after fine-tuning on the run's own noisy labels")
    return {"acc_pruned_bn": "BatchNorm recalibrated, before fine-tuning",
            "acc_pruned": "right after pruning"}.get(metric, metric)


def _recipe_difference(runs: pd.DataFrame) -> str | None:
    """A note when the noisy baselines were trained with another recipe than the clean ones
    (grid.noise_train_size, grid.noise_train): their training images and epochs."""
    columns = [c for c in ("train_size", "train_epochs") if c in runs]
    if not columns:
        return None
    clean = runs.label_noise == main_label_noise(runs.label_noise)

    def recipe(rows: pd.DataFrame) -> str:
        size = ", ".join("all" if pd.isna(v) else f"{int(v):,}" for v in sorted(rows.train_size.unique(), key=str))
        text = f"{size} training images"
        if "train_epochs" in rows and rows.train_epochs.notna().any():
            text += ", " + ", ".join(f"{int(v)}" for v in sorted(rows.train_epochs.dropna().unique())) + " epochs"
        return text

    noisy_recipe, clean_recipe = recipe(runs[~clean]), recipe(runs[clean])
    if noisy_recipe == clean_recipe:
        return f"Noisy and clean baselines share one recipe ({clean_recipe})."
    return (f"The noisy baselines use another recipe than the clean ones: {noisy_recipe}, against {clean_recipe} "
            "(grid.noise_train_size, grid.noise_train). Each run is compared with its own noisy baseline, so the "
            "claim compares criteria within that recipe.")


def allocation_and_level(text: str, arch: str | None = None) -> tuple[str, Any]:
    """A pruning string as (allocation, level): macs:<f> and uniform-macs:<f> as their MACs
    target f, so that the global and uniform allocations of one target share a level; any other
    scheme as its own string."""
    from nnprune.plan.schemes import parse_scheme

    scheme = parse_scheme(text, arch)
    level = scheme.value if scheme.kind in ("macs", "uniform-macs") and scheme.round_to == 1 else text
    return scheme.allocation, level


def _budget_distance(wanted: str, tested: str) -> float:
    """How far apart two points of the budget axis are, for the fallback of a configured budget the
    study did not run: 0 when equal; else the gap in log2 of training batches, an epoch taken as
    1,000 batches (the budget axis is ordinal; the nearest one stands in)."""
    def batches(text: str) -> float:
        if text in (RAW, BN):
            return 0.5
        group, count = budget_order(text)
        return count * (1000.0 if group == 2 else 1.0)

    if str(wanted) == str(tested):
        return 0.0
    try:
        return abs(np.log2(batches(str(wanted)) / batches(str(tested))))
    except UserError:       # not a budget at all: only the default stands in
        return float("inf")


def cnn_input(runs: pd.DataFrame, main_pruning: str, main_score_images: int,
              primary_pruning: str | None = None, primary_budget: str | None = None) -> ClaimInput:
    """The CNN claim at every (pruning level, budget) point of each allocation: BN-recalibrated
    accuracy (budget `bn`, no weight update) and then fine-tuned accuracy at each fine-tuning budget
    of the study. Without fine-tuning, one point per level: BN-recalibrated (or raw) accuracy. The
    primary point is the configured level at the configured budget, by default the largest."""
    main_noise = main_label_noise(runs.label_noise)
    rows = runs[(runs.label_noise == main_noise) & runs.score_images.isin([0, main_score_images])]
    parsed = {text: allocation_and_level(text, arch) for text, arch in
              rows[["pruning", "arch"]].drop_duplicates().itertuples(index=False)}
    rows = rows.assign(allocation=rows.pruning.map(lambda t: parsed[t][0]),
                       level=rows.pruning.map(lambda t: parsed[t][1]))
    clean = one_per_run(rows)
    budgets = study_budgets_of(rows[rows.acc_finetuned.notna()]) if "acc_finetuned" in rows else []
    if budgets:
        tuned = rows[rows.budget.astype(str).isin(budgets) & rows.acc_finetuned.notna()]
        tuned = tuned.assign(point_budget=tuned.budget.astype(str), value=tuned.acc_finetuned)
        levels = set(tuned.pruning)
        # every level's BN-recalibrated point, fine-tuned or not: the first point of each curve
        before = clean[clean.acc_pruned_bn.notna()] if "acc_pruned_bn" in clean else []
        parts = ([before.assign(point_budget=BN, value=before.acc_pruned_bn)] if len(before) else []) + [tuned]
        metric = ("test accuracy (%) at each fine-tuning budget: BatchNorm recalibrated without fine-tuning "
                  f"({BN}), then fine-tuned for each of {', '.join(budget_label(b) for b in budgets)}, each a "
                  "standalone fine-tune")
    else:
        before_metric = _first_measured(clean, ("acc_pruned_bn", "acc_pruned"))
        levels = set(clean.pruning)
        point = BN if before_metric == "acc_pruned_bn" else RAW
        parts = [clean.assign(point_budget=point, value=clean[before_metric])]
        metric = f"{before_metric} (%): no run was fine-tuned"
    part = pd.concat(parts, ignore_index=True)
    macs = clean.groupby("pruning").macs_reduction.mean()
    single_level = part.level.nunique() == 1
    axis_budgets = sorted(set(part.point_budget), key=budget_order)

    def level_label(level) -> str:
        return f"-{100 * level:g}% MACs target" if isinstance(level, float) else str(level)

    def label(value) -> str:
        level, budget = value
        return budget_label(budget) if single_level else f"{level_label(level)}, {budget_label(budget)}"

    def distance(wanted, value) -> float:
        (wanted_level, wanted_budget), (level, budget) = wanted, value
        if isinstance(level, float) and not isinstance(wanted_level, str):
            gap = abs(100 * (float(wanted_level) - float(level)))
        else:
            gap = 0.0 if str(wanted_level) == str(level) else float("inf")
        return 100 * gap + _budget_distance(wanted_budget, budget)

    part = part.assign(point=list(zip(part.level, part.point_budget)),
                       point_order=part.pruning.map(macs) * 100 + part.point_budget.map(axis_budgets.index))
    frame = standard_frame(part, part.value, "point", ["dataset", "arch", "train_size"], stratum="allocation",
                           order=part.point_order)
    untested = sorted(set(clean.pruning) - levels)
    notes = [f"Pruning levels that no budget fine-tuned (their BN-recalibrated point only): {', '.join(untested)}"] \
        if untested else []
    params = clean.groupby("pruning").params_reduction.mean() if "params_reduction" in clean else {}
    notes.append("Measured cut per pruning string, mean over runs: " + ", ".join(
        f"{text} ({parsed[text][0]}) -{macs[text]:.1f}% MACs"
        + (f", -{params[text]:.1f}% params" if text in params else "")
        for text in sorted(macs.index, key=lambda t: (parsed[t][0], macs[t]))))
    if "acc_pruned" in clean and clean.acc_pruned.notna().any():
        raw = clean[clean.pruning.isin(levels)].groupby(["allocation", "criterion"]).acc_pruned.mean()
        notes.append("Raw accuracy right after pruning (no BN recalibration, no fine-tuning), mean over seeds, %: "
                     + "; ".join(f"{allocation}: " + ", ".join(f"{c} {v:.1f}" for c, v in group.droplevel(0).items())
                                 for allocation, group in raw.groupby(level=0)))
    bases = clean.groupby("seed").acc_base.first() if len(clean) else pd.Series(dtype=float)
    if len(clean):
        notes.append(f"Unpruned test accuracy of the {len(bases)} clean baselines: mean {bases.mean():.2f}%, "
                     f"lowest {bases.min():.2f}%, highest {bases.max():.2f}%.")
    wanted = primary_pruning or main_pruning
    arch = clean.arch.iloc[0] if len(clean) else None
    try:
        wanted_allocation, wanted_level = allocation_and_level(wanted, arch)
    except UserError:        # a configured string this study cannot parse: the fallback rule takes over
        wanted_allocation, wanted_level = None, wanted
    default_allocation, default_level = parsed.get(main_pruning, (None, None))
    largest = axis_budgets[-1] if axis_budgets else None
    wanted_budget = str(primary_budget) if primary_budget is not None else largest
    if primary_budget is not None and primary_budget not in (RAW, BN):
        try:
            wanted_budget = parse_budget(primary_budget).text
        except UserError:
            pass
    return ClaimInput(
        "cnn", "At the same pruning level (MACs cut), pruning by nuclear norm leaves a more accurate network "
        "than the other criteria (the paper's CIFAR-10 and ImageNet tables).",
        f"{metric}; higher is better; label noise {main_noise}, score_images {main_score_images} "
        "(0 for data-free criteria)",
        ("fine-tuning budget" + (f" at {level_label(part.level.iloc[0])}" if single_level and len(part) else "")
         if single_level else "pruning level (MACs target) and fine-tuning budget") + ", per allocation",
        "seed (one baseline)", "accuracy_pp", frame, label, primary_key="pruning", stratum_key="allocation",
        default_axis=(default_level, largest), default_rule="the study's main pruning level at its largest budget",
        distance=distance, notes=notes, strata_name="allocation",
        primary_values={"pruning": (wanted_level, wanted_budget),
                        "allocation": wanted_allocation or default_allocation},
        baselines={seed: float(value) for seed, value in bases.items()},
        point_fields=lambda value: {"level": plain_level(value[0]), "budget": value[1]})


def plain_level(level):
    return float(level) if isinstance(level, (float, np.floating)) else str(level)


def headline_claim(runs: pd.DataFrame, alpha: float = 0.05) -> dict | None:
    """Paper config only: ResNet-56/110 on CIFAR-10 at the paper's reductions. Supported when the
    (1 - alpha) t interval over seeds of (ours - paper) lies above -0.3 pp."""
    from nnprune.analysis.stats import t_interval

    targets = {"resnet56": (94.13, 40.4, 45.9), "resnet110": (94.61, 49.8, 52.9)}
    # the paper's figures are its own criterion's: compared with its runs, whatever claims.focus is
    part = runs[(runs.dataset == "cifar10") & runs.arch.isin(targets) & (runs.criterion == PAPER_CRITERION)
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
                     f"CI of ours - paper [{number(low, 2, sign=True)}, {number(high, 2, sign=True)}] pp: {decided}")
    verdict = "inconclusive" if not verdicts else (
        "supported" if all(v == "supported" for v in verdicts) else
        "not supported" if any(v == "not supported" for v in verdicts) else "inconclusive")
    return {"name": "headline", "claim": "ResNet-56: 94.13% top-1 at -40.4% FLOPs; ResNet-110: 94.61% at -49.8%.",
            "metric": f"fine-tuned top-1 of {PAPER_CRITERION} runs within 2 pp of the paper's MACs reduction; "
            "supported if the CI of (ours - paper) lies above -0.3 pp", "axis": "architecture", "replicate": "seed",
            "verdict": verdict, "notes": notes}


def across_allocations(claim: Claim) -> dict:
    """The label-noise claim reads accuracy before fine-tuning, where the allocation decides much
    of the result: its verdict at the primary point under each allocation of the main MACs target
    (secondary families named "... allocation"), and whether they agree."""
    main = next((p for p in claim.points if p["primary"] and p["comparison"] == "best other"), None)
    families = [f for f in claim.secondary if f["name"].endswith(")") and " allocation (" in f["name"]]
    if main is None or not families:
        return {}
    verdicts = {"main": {"verdict": main["verdict"], "comparator": main["comparator"],
                         "mean_difference": main["mean_difference"]}}
    for family in families:
        here = next((p for p in family["points"] if p["stratum"] == main["stratum"]
                     and same_value(p["axis_value"], main["axis_value"])), None)
        if here is not None:
            verdicts[family["name"]] = {"verdict": here["verdict"], "comparator": here["comparator"],
                                        "mean_difference": here["mean_difference"]}
    survives = len(verdicts) > 1 and len({v["verdict"] for v in verdicts.values()}) == 1
    line = ("Across allocations at the primary point: " + "; ".join(
        f"{name} {v['verdict']} (vs {v['comparator']}, {v['mean_difference']:+.2f} pp)"
        for name, v in verdicts.items() if v["mean_difference"] is not None)
        + (": the verdict survives the allocation." if survives else ": the verdict does not survive the allocation."))
    claim.notes.append(line)
    return {"verdicts": verdicts, "survives": survives, "line": line}


def reach_notes(claim: Claim, power: float) -> list[str]:
    """What the replicates can detect: for the primary point and each pooled (secondary) point
    against the best other criterion, its pairs, its minimum detectable difference (pp) and the
    measured difference, so that a reader can judge whether the number of baselines answers
    the question."""
    points = [("", p) for p in claim.points if p.get("comparison") == "best other"]
    points += [(f"{part['name']}, ", p) for part in claim.secondary for p in part.get("points", [])
               if p.get("comparison") == "best other"]
    notes = []
    for where, point in points:
        mdd, difference = point.get("mdd"), point.get("mean_difference")
        if mdd is None or difference is None or mdd != mdd or difference != difference:
            continue
        label = point["label"] if point["label"] in where else where + point["label"]
        if point.get("stratum"):
            label += f" ({point['stratum']})"
        within = "larger than" if abs(difference) >= mdd else "smaller than"
        notes.append(f"Replicates at {label.rstrip(', ')}: {point['pairs']} pairs detect a difference of "
                     f"{mdd:.1f} pp or more (MDD at power {power:g}); the measured difference, "
                     f"{difference:+.2f} pp against {point['comparator']}, is {within} that.")
    return notes


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
    inputs.append(cnn_input(runs, main_pruning, main_score_images, settings.primary.get("pruning"),
                            settings.primary.get("budget")))
    if not settings.paper_focus:        # the paper's claims, asked of another criterion
        for spec in inputs:
            spec.claim = spec.claim.replace(PAPER_NORM, f"pruning by `{settings.focus}`")
    claims = [assess(spec, settings) for spec in inputs]
    for claim in claims:
        if claim.name == "label_noise":
            claim.across_allocations = across_allocations(claim)
            claim.notes.extend(reach_notes(claim, settings.power))
    headline = headline_claim(runs, settings.alpha)
    if headline:
        claims.append(Claim(**headline))
    return claims


def write_claims(study_dir: Path, main_pruning: str, main_score_images: int,
                 settings: ClaimSettings | None = None, scale: StudyScale | None = None) -> list[Claim]:
    """claims.json, claims.md and claims_forest_{name}.png/.pdf for each of CLAIM_NAMES; the limits
    of claims.md are written from `scale`, what the study ran."""
    from nnprune.analysis.claims_limits import study_limits
    from nnprune.analysis.claims_render import render_markdown, rule_text, write_forests
    from nnprune.files import write_json, write_text

    settings = settings or ClaimSettings()
    claims = build_claims(study_dir, main_pruning, main_score_images, settings)
    limits = study_limits(scale or StudyScale())
    write_json(study_dir / "claims.json", {"focus": settings.focus, "rule": rule_text(settings.focus),
                                           "settings": asdict(settings),
                                           "claims": [asdict(c) for c in claims], "limits": limits})
    write_text(study_dir / "claims.md", render_markdown(claims, study_dir.name, settings, limits))
    write_forests(claims, study_dir, CLAIM_NAMES)
    return claims
