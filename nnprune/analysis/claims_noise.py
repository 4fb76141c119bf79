"""The label-noise claim (nnprune/analysis/claims.py lists the claims): what it reads from runs.csv,
each noisy run's accuracy minus its own noisy baseline's, and the checks that follow its verdict:
does it survive a change of allocation (`across_allocations`), and what can its replicates detect
(`reach_notes`)."""
from __future__ import annotations

import pandas as pd

from nnprune.analysis.aggregate import at_budget, study_budgets_of
from nnprune.analysis.claim_records import Claim, ClaimInput, Family, same_value, standard_frame
from nnprune.analysis.claims_inputs import ACCURACIES, allocation_and_level, first_measured
from nnprune.analysis.table_text import number
from nnprune.plan.budgets import budget_label
from nnprune.plan.studyconfig import main_label_noise


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
    metric = first_measured(part)
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
        if not same_value(level, main_level) or first_measured(other) != metric:
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
