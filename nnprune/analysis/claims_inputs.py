"""What the toy, data-size and CNN claims read (nnprune/analysis/claims.py lists them): each a
`ClaimInput` of its rows, metric and swept axis, from toy.csv, stability.csv and runs.csv; and the
helpers every claim's input shares (which accuracy was measured, a pruning string as allocation
and level). The label-noise claim's input is nnprune/analysis/claims_noise.py."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nnprune.analysis.aggregate import at_budget, one_per_run, study_budgets_of
from nnprune.analysis.claim_records import ClaimInput, Family, standard_frame
from nnprune.analysis.table_text import number
from nnprune.errors import UserError
from nnprune.plan.budgets import BN, RAW, budget_label, budget_order, parse_budget
from nnprune.plan.schemes import parse_scheme
from nnprune.plan.studyconfig import main_label_noise

ACCURACIES = ("acc_pruned", "acc_pruned_bn", "acc_finetuned")


def _removed(fraction) -> str:
    return f"{100 * fraction:g}% removed"


def toy_input(toy: pd.DataFrame) -> ClaimInput:
    """The toy claim: 100 - boundary change (%) per share of hidden units removed, global
    allocation, clean test inputs; accuracy, the per-layer allocation and noisy test inputs as
    secondary families."""
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
    """The data-size claim: per-layer Spearman of the scores from score_images images with those
    from the largest, per score_images; the pruned accuracy as a secondary family
    (`data_size_accuracy`)."""
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
    metric = first_measured(level)
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


def first_measured(frame: pd.DataFrame, candidates=("acc_finetuned", "acc_pruned_bn", "acc_pruned")) -> str:
    """The first accuracy measured in every row of `frame` (else in any row, else acc_pruned)."""
    for test in (lambda m: frame[m].notna().all(), lambda m: frame[m].notna().any()):
        for metric in candidates:
            if metric in frame and len(frame) and test(metric):
                return metric
    return "acc_pruned"



def allocation_and_level(text: str, arch: str | None = None) -> tuple[str, Any]:
    """A pruning string as (allocation, level): macs:<f> and uniform-macs:<f> as their MACs
    target f, so that the global and uniform allocations of one target share a level; any other
    scheme as its own string."""
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
        before_metric = first_measured(clean, ("acc_pruned_bn", "acc_pruned"))
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
    """A pruning level for claims.json: a MACs target as a float, any other level as its string."""
    return float(level) if isinstance(level, (float, np.floating)) else str(level)

