"""The CNN claim along the cut axis, in a study that fine-tunes several cuts (the leaderboard
study): `along_cuts` reads the claim's own points at the largest budget, one per cut, each with
its regime check (a cut outside the paper's regime is still judged), into a "holds where" over
cuts; `scratch_family` compares, at each cut, the focus criterion's network pruned and fine-tuned
with its architecture re-initialised and trained from scratch (runs.csv rows of kind "scratch",
Scratch-E), paired by seed and by the claims' rule (`leaderboard.scratch_comparison`, Holm over the
cuts), and says in words whether pruning wins and whether the scratch networks beat the baselines."""
from __future__ import annotations

import pandas as pd

from nnprune.analysis.aggregate import at_budget, study_budgets_of
from nnprune.analysis.claim_records import Claim, ClaimSettings, plain, same_value
from nnprune.analysis.claims_inputs import allocation_and_level
from nnprune.analysis.leaderboard import FLOOR, focus_against_each, leaderboard, scratch_comparison
from nnprune.analysis.verdicts import INSIDE, OUTSIDE, holds_where
from nnprune.plan.budgets import BN, RAW, budget_label, budget_order, parse_budget
from nnprune.plan.studyconfig import main_label_noise

SCRATCH_FAMILY = "focus vs scratch"


def clean_runs(runs: pd.DataFrame, main_score_images: int) -> pd.DataFrame:
    """runs.csv's pruned rows at the main (lowest) label noise and the main score_images (data-free
    criteria at 0): the rows of the CNN claim."""
    return runs[(runs.label_noise == main_label_noise(runs.label_noise))
                & runs.score_images.isin([0, main_score_images])]


def cut_table(clean: pd.DataFrame) -> pd.DataFrame:
    """The cuts fine-tuned at the largest budget, by measured MACs cut: pruning, allocation, level
    (`claims_inputs.allocation_and_level`), macs_cut and params_cut (%, means over runs) and label
    ("macs:0.75 (-75.6% MACs)")."""
    columns = ["pruning", "allocation", "level", "macs_cut", "params_cut", "label"]
    budgets = study_budgets_of(clean[clean.acc_finetuned.notna()])
    if not budgets:
        return pd.DataFrame(columns=columns)
    done = clean[clean.budget.astype(str) == budgets[-1]]
    rows = []
    for text, part in done.groupby("pruning"):
        allocation, level = allocation_and_level(text, part.arch.iloc[0] if "arch" in part else None)
        macs = float(part.macs_reduction.mean())
        rows.append({"pruning": text, "allocation": allocation, "level": level, "macs_cut": macs,
                     "params_cut": float(part.params_reduction.mean()) if "params_reduction" in part else None,
                     "label": f"{text} (-{macs:.1f}% MACs)"})
    return pd.DataFrame(rows, columns=columns).sort_values("macs_cut", kind="stable").reset_index(drop=True)


def along_cuts(claim: Claim, cuts: pd.DataFrame) -> dict:
    """The claim's points against the best other criterion at its largest fine-tuning budget, one
    per cut of `cut_table` (pruning, macs_cut, params_cut and the cut's label added), their
    "holds where" over cuts and the cuts inside and outside the paper's regime. {} unless an
    allocation has two fine-tuned cuts or more."""
    tuned = [p for p in claim.points if p["comparison"] == "best other" and p.get("budget") not in (None, RAW, BN)]
    if not tuned or cuts.empty:
        return {}
    largest = max({p["budget"] for p in tuned}, key=budget_order)
    records = []
    for point in tuned:
        cut = next((row for row in cuts.itertuples() if row.allocation == point["stratum"]
                    and same_value(plain(row.level), point.get("level"))), None)
        if point["budget"] == largest and cut is not None:
            records.append({**point, "pruning": cut.pruning, "macs_cut": cut.macs_cut, "params_cut": cut.params_cut,
                            "label": cut.label})
    strata = [record["stratum"] for record in records]
    if not records or max(strata.count(s) for s in strata) < 2:
        return {}
    return {"budget": largest, "budget_label": budget_label(largest), "comparison": "best other",
            "rule": "the claim's own points at its largest budget, one per cut (Holm over all of the claim's points); "
                    "a cut whose best criterion lies more than regime_gap_pp below the baselines is outside the "
                    "paper's regime and still judged",
            "points": records,
            "holds_where": holds_where([{**r, "axis_value": r["label"]} for r in records], str),
            "inside": [r["label"] for r in records if r.get("regime") == INSIDE],
            "outside": [r["label"] for r in records if r.get("regime") == OUTSIDE]}


def parting(clean: pd.DataFrame, cuts: pd.DataFrame, settings: ClaimSettings) -> dict:
    """Where the criteria part ways, from the leaderboard's ranks (`leaderboard.leaderboard`: a
    criterion shares the first place unless the claims' rule finds it significantly below the
    leader, Holm within the cut): per fine-tuned cut in MACs order, the criteria sharing the first
    place, those ranked below, the criteria better than random (supported) and the range of the
    MDDs against random; and the answer in words: the first cut where some criterion falls below
    the leader, or that none does up to the hardest cut."""
    board = leaderboard(clean, pd.DataFrame(), settings.focus, settings.margins["accuracy_pp"],
                        settings.regime_gap_pp, settings.alpha, settings.power)
    board = board[board.criterion != "baselines"]
    against = focus_against_each(clean, settings.focus, settings.margins["accuracy_pp"], settings.alpha,
                                 settings.power)
    labels = dict(zip(cuts.pruning, cuts.label))
    records = []
    for cut in cuts.pruning:
        here = board[board.pruning == cut]
        if here.empty:
            continue
        versus = {row.criterion: {"verdict": row.vs_random_verdict, "mdd": plain(row.vs_random_mdd)}
                  for row in here.itertuples() if isinstance(row.vs_random_verdict, str)}
        mine = against[against.pruning == cut] if len(against) else against
        keys = ("pairs", "mean_difference", "ci_low", "ci_high", "p_holm", "verdict", "mdd")
        focus_versus = {row["criterion"]: {key: plain(row[key]) for key in keys} for row in mine.to_dict("records")}
        records.append({"pruning": cut, "label": labels[cut], "criteria": int(len(here)),
                        "first": sorted(here.criterion[here["rank"] == 1]),
                        "below": {c: int(r) for c, r in zip(here.criterion, here["rank"]) if r > 1},
                        "versus_random": versus, "focus_versus": focus_versus, "regime": here.regime.iloc[0]})
    if not records:
        return {}
    parted = [r for r in records if r["below"]]
    if parted:
        where = parted[0]
        ranked = "; ".join(f"{c} (rank {k})" for c, k in sorted(where["below"].items(), key=lambda item: item[1]))
        words = (f"The criteria part ways first at {where['label']}: {', '.join(where['first'])} share the first "
                 f"place; below it by the claims' rule: {ranked}")
        if where is not records[0]:
            words += f"; before it, at {', '.join(r['label'] for r in records[:records.index(where)])}, all share it"
    else:
        words = (f"The criteria do not part ways up to {records[-1]['label']}: at every fine-tuned cut all "
                 f"{records[-1]['criteria']} criteria share the first place (none is significantly below the leader "
                 "by the claims' rule, Holm within the cut)")
    return {"rule": "the leaderboard's ranks: the criterion with the highest mean leads each cut; a criterion shares "
                    "the first place unless its paired difference from the leader is a significant loss (Holm "
                    "within the cut)",
            "focus": settings.focus, "cuts": records, "first_parting": parted[0]["pruning"] if parted else None,
            "in_words": f"{words}. {_versus_random_words(records)}"}


def _versus_random_words(records: list[dict]) -> str:
    """Which criteria beat random, lose to it or match it (equivalent), and the MDDs of the rest."""
    def where(verdict: str) -> list[str]:
        return [f"{', '.join(c for c, v in r['versus_random'].items() if v['verdict'] == verdict)} at {r['pruning']}"
                for r in records if any(v["verdict"] == verdict for v in r["versus_random"].values())]

    better, worse, same = where("supported"), where("not supported"), where("equivalent")
    parts = [f"Better than {FLOOR} (supported): {'; '.join(better)}" if better
             else f"No criterion is better than {FLOOR} (supported) at any cut"]
    if worse:
        parts.append(f"worse than {FLOOR}: {'; '.join(worse)}")
    if same:
        parts.append(f"equivalent to {FLOOR} within the margin: {'; '.join(same)}")
    mdds = [v["mdd"] for r in records for v in r["versus_random"].values()
            if v["verdict"] == "inconclusive" and v["mdd"] is not None]
    if mdds:
        parts.append(f"the other comparisons are inconclusive, with MDDs of {min(mdds):.2f} to {max(mdds):.2f} pp "
                     "at these seeds")
    return "; ".join(parts) + "."


def scratch_family(clean: pd.DataFrame, scratch: pd.DataFrame, cuts: pd.DataFrame,
                   settings: ClaimSettings) -> dict | None:
    """The secondary family "focus vs scratch" of the CNN claim: at each cut of `cut_table` with
    from-scratch controls of the focus, its network pruned and fine-tuned at the largest budget
    minus its architecture trained from scratch, per seed (Holm over the cuts); each point adds
    the means over its paired seeds of both and of their baselines. None without such controls."""
    focus, margin = settings.focus, settings.margins["accuracy_pp"]
    mine = scratch[(scratch.criterion == focus) & scratch.pruning.isin(set(cuts.pruning))] if len(scratch) else scratch
    if "label_noise" in mine:
        mine = mine[mine.label_noise == main_label_noise(clean.label_noise)]
    if mine.empty:
        return None
    found = scratch_comparison(clean, mine, focus, margin, settings.alpha, settings.power)
    if found.empty:
        return None
    budget = study_budgets_of(clean[clean.acc_finetuned.notna()])[-1]
    pruned = at_budget(clean, budget)
    pruned = pruned[(pruned.criterion == focus) & pruned.acc_finetuned.notna()]
    both = pruned.merge(mine, on=["pruning", "seed"], suffixes=("", "_scratch"))
    means = both.groupby("pruning").agg(pruned_mean=("acc_finetuned", "mean"),
                                        scratch_mean=("acc_finetuned_scratch", "mean"),
                                        baseline_mean=("acc_base", "mean"))
    scratch_budget = str(mine.budget.iloc[0])
    order = {text: index for index, text in enumerate(cuts.pruning)}
    labels = dict(zip(cuts.pruning, cuts.label))
    macs = dict(zip(cuts.pruning, cuts.macs_cut))
    records = []
    for row in sorted(found.to_dict("records"), key=lambda r: order[r["pruning"]]):
        cut = row.pop("pruning")
        here = means.loc[cut]
        records.append({"comparison": "scratch", "focus": focus, "comparator": "scratch", "stratum": None,
                        "axis_value": cut, "label": labels[cut], **{k: plain(v) for k, v in row.items()},
                        "primary": False, "pruning": cut, "macs_cut": plain(macs[cut]),
                        "pruned_mean": plain(here.pruned_mean), "scratch_mean": plain(here.scratch_mean),
                        "baseline_mean": plain(here.baseline_mean),
                        "scratch_minus_baselines": plain(here.scratch_mean - here.baseline_mean)})
    epochs = _baseline_epochs(clean)
    return {"name": SCRATCH_FAMILY,
            "metric": f"test accuracy (%) of `{focus}`'s network pruned at each cut and fine-tuned for "
                      f"{budget_label(budget)} minus its pruned architecture re-initialised and trained from scratch "
                      f"for {budget_label(scratch_budget)} with the baselines' recipe (Scratch-E), paired by seed; "
                      "higher is better (pruning wins)",
            "axis": "pruning level (cut)", "margin": margin, "points": records,
            "holds_where": holds_where(records, lambda cut: labels[cut]),
            "budget": budget, "scratch_budget": scratch_budget, "baseline_epochs": epochs,
            "in_words": scratch_words(records, focus, margin, budget, scratch_budget),
            "scratch_above_baselines": [r["pruning"] for r in records if r["scratch_minus_baselines"] > 0],
            "baselines_words": baselines_words(records, epochs, scratch_budget)}


def _baseline_epochs(clean: pd.DataFrame) -> int | None:
    epochs = clean.train_epochs.dropna().unique() if "train_epochs" in clean else []
    return int(epochs[0]) if len(epochs) == 1 else None


def _at(points: list[dict], every: int) -> str:
    """Where, with each cut's difference and interval: "every cut (a; b)" or "a; b"."""
    cells = "; ".join(f"{p['pruning']} (-{p['macs_cut']:.1f}% MACs: {p['mean_difference']:+.2f} pp, 95% CI "
                      f"{p['ci_low']:+.2f} to {p['ci_high']:+.2f})" if p["ci_low"] is not None else
                      f"{p['pruning']} ({p['mean_difference']:+.2f} pp, {p['pairs']} pair)" for p in points)
    return f"every cut: {cells}" if len(points) == every and every > 1 else cells


def scratch_words(points: list[dict], focus: str, margin: float, budget: str, scratch_budget: str) -> str:
    """Whether pruning by the focus beats training its architecture from scratch, and where."""
    by = {verdict: [p for p in points if p["verdict"] == verdict]
          for verdict in ("supported", "not supported", "equivalent", "inconclusive")}
    wins = [p["pruning"] for p in by["supported"]]
    if len(wins) == len(points):
        answer = f"Yes: pruning by `{focus}` beats training its architecture from scratch at every cut"
    elif wins:
        answer = f"Pruning by `{focus}` beats training its architecture from scratch at {', '.join(wins)} only"
    else:
        answer = f"No: pruning by `{focus}` beats training its architecture from scratch at no cut"
    words = {"supported": "pruning wins at", "not supported": "scratch wins at",
             "equivalent": f"the two are equivalent (within ±{margin:g} pp) at",
             "inconclusive": "the seeds cannot tell them apart at"}
    clauses = [f"{words[verdict]} {_at(mine, len(points))}" for verdict, mine in by.items() if mine]
    return (f"{answer}. `{focus}` pruned and fine-tuned for {budget_label(budget)} minus the same architecture "
            f"trained from scratch for {budget_label(scratch_budget)}, paired by seed: " + "; ".join(clauses) + ".")


def baselines_words(points: list[dict], epochs: int | None, scratch_budget: str) -> str | None:
    """Where the networks trained from scratch beat the unpruned baselines themselves, with the
    numbers: then the baselines' recipe is short of convergence. None where they do not."""
    above = [p for p in points if p["scratch_minus_baselines"] > 0]
    if not above:
        return None
    recipe = f"{epochs}-epoch " if epochs else ""
    scratch_epochs = parse_budget(scratch_budget).count
    cells = "; ".join(f"{p['pruning']} ({p['scratch_mean']:.2f}% against {p['baseline_mean']:.2f}%, "
                      f"{p['scratch_minus_baselines']:+.2f} pp)" for p in above)
    where = f"every cut: {cells}" if len(above) == len(points) > 1 else cells
    return (f"The pruned architectures trained from scratch for {scratch_epochs} epochs beat the unpruned "
            f"{recipe}baselines themselves at {where}: the {recipe}baselines are short of convergence, so part of "
            "every drop measured from them is their short recipe, not pruning.")


def add_cut_axis(claim: Claim, runs: pd.DataFrame, scratch: pd.DataFrame, main_score_images: int,
                 settings: ClaimSettings) -> None:
    """The CNN claim's cut axis: `along_cuts` into claim.along_cuts, and the "focus vs scratch"
    family appended to its secondary families where the study has from-scratch controls."""
    clean = clean_runs(runs, main_score_images)
    cuts = cut_table(clean)
    claim.along_cuts = along_cuts(claim, cuts)
    if claim.along_cuts:
        claim.along_cuts["parting"] = parting(clean, cuts, settings)
    family = scratch_family(clean, scratch, cuts, settings)
    if family is not None:
        claim.secondary.append(family)
