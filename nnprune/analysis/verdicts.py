"""A claim assessed at every operating point by the rule of nnprune/analysis/stats.py: which comparisons,
which comparator, which primary point. nnprune/analysis/claims_inputs.py says which rows each claim reads.

A claim arrives as a `ClaimInput` (nnprune/analysis/claim_records.py): one metric oriented so that higher
is better, in a frame with the columns criterion, stratum ("" or e.g. the noise kind), axis (the swept
value), order (its position on the axis), replicate (the seed), unit (what is matched inside a seed: dataset,
layer, ...) and value. At every (stratum, axis) point, without pooling points:
  - the focus criterion (`ClaimSettings.focus`, config `claims.focus`, default the paper's) against
    the best other criterion there: the one with the best mean, chosen from the data, which
    favours the comparator; `not_rivals(focus)` are not candidates (for the paper's criterion:
    nuclear-stacked, the other form of the same energy, docs/background.md §2);
  - the focus against `FLOOR` (random), the floor every criterion must clear;
  - every criterion against `FLOOR`: the ranking.
Each comparison is one Holm family over the claim's points. The primary point is named in the
config before the run; when it was not tested, the nearest tested point stands in, flagged
`fallback` with the reason. The claim's verdict is the primary point's verdict against the best
other criterion from all seeds, or "unstable" when the seed check (stats.seed_check: leave one
seed out, and the halves compared by their effect) finds that the seeds disagree on it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from nnprune.analysis import stats
from nnprune.analysis.claim_records import (
    Claim,
    ClaimInput,
    ClaimSettings,
    Family,
    plain,
    plain_tree,
    same_value,
)
from nnprune.plan.names import DEFAULT_FOCUS, PAPER_CRITERION

# the other form of the paper's energy (docs/background.md §2): no rival of the paper's criterion
SAME_ENERGY = {PAPER_CRITERION: {"nuclear-stacked"}}
FLOOR = "random"
INSIDE, OUTSIDE = "inside the paper's regime", "outside the paper's regime"
POINT = ["stratum", "axis"]


def not_rivals(focus: str) -> set[str]:
    """Criteria that are not the focus's rivals: another form of the same score."""
    return SAME_ENERGY.get(focus, set())


def best_other(frame: pd.DataFrame, focus: str = DEFAULT_FOCUS) -> str | None:
    """The criterion other than `focus` and its `not_rivals` with the best mean value."""
    means = frame[~frame.criterion.isin({focus, *not_rivals(focus)})].groupby("criterion").value.mean().dropna()
    return str(means.idxmax()) if len(means) else None


def points_in_order(frame: pd.DataFrame) -> list[tuple]:
    """(stratum, axis) points, by stratum and then along the axis."""
    table = frame.groupby(POINT, sort=False).order.mean().reset_index().sort_values(["stratum", "order"])
    return [(row.stratum, row.axis) for row in table.itertuples()]


def paired(frame: pd.DataFrame, first: str, comparators: dict[tuple, str]) -> pd.DataFrame:
    """Rows (stratum, axis, replicate, unit, a, b) of `first` (a) against each point's
    comparator (b), matched on the point, the seed and the unit; in the order of `comparators`."""
    keys = [*POINT, "replicate", "unit"]
    parts = []
    for (stratum, axis), comparator in comparators.items():
        here = frame[(frame.stratum == stratum) & (frame.axis == axis)]
        mine = here[here.criterion == first].set_index(keys).value.rename("a")
        theirs = here[here.criterion == comparator].set_index(keys).value.rename("b")
        parts.append(pd.concat([mine, theirs], axis=1, join="inner").dropna().reset_index())
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*keys, "a", "b"])


def compare(frame: pd.DataFrame, first: str, comparators: dict[tuple, str], margin: float,
            settings: ClaimSettings, comparison: str, primary: tuple | None,
            label: Callable[[Any], str] = str) -> tuple[list[dict], pd.DataFrame]:
    """One Holm family: `first` against each point's comparator. Returns JSON-ready point
    records (in axis order; `label` names the axis value in words) and the paired rows."""
    rows = paired(frame, first, comparators)
    family = stats.paired_family(rows, POINT, margin, settings.alpha, settings.power)
    records = []
    for row in family.to_dict("records"):
        point = (row.pop("stratum"), row.pop("axis"))
        records.append({"comparison": comparison, "focus": first, "comparator": comparators[point],
                        "stratum": point[0] or None, "axis_value": plain(point[1]), "label": label(point[1]),
                        **{k: plain(v) for k, v in row.items()}, "primary": point == primary})
    return records, rows


def rivals(frame: pd.DataFrame, focus: str = DEFAULT_FOCUS) -> dict[tuple, str]:
    found = {p: best_other(frame[(frame.stratum == p[0]) & (frame.axis == p[1])], focus)
             for p in points_in_order(frame)}
    return {point: name for point, name in found.items() if name is not None}


def choose_primary(spec: ClaimInput, points: list[tuple], wanted: dict) -> dict:
    """The primary (stratum, axis) point: the configured one when this claim tested it; else,
    flagged `fallback` with the reason, the tested point nearest to it (`spec.distance`, ties to
    the earlier point) or, without a finite distance, the default one. Not configured (None):
    the default one, not a fallback."""
    if not points:
        return {"stratum": None, "axis_value": None, "configured": None, "fallback": True,
                "reason": "no point was tested"}
    strata = list(dict.fromkeys(stratum for stratum, _ in points))
    reasons, fallback = [], False
    stratum = wanted.get(spec.stratum_key) if spec.stratum_key else None
    if strata == [""]:
        stratum = ""
    elif stratum not in strata:
        if stratum is not None:
            reasons.append(f"configured {spec.stratum_key} {stratum!r} is not among this claim's tested points")
            fallback = True
        stratum = "symmetric" if "symmetric" in strata else strata[0]
    axes = [axis for s, axis in points if s == stratum]
    default = spec.default_axis if spec.default_axis in axes else axes[0]
    configured = wanted.get(spec.primary_key)
    exact = [axis for axis in axes if configured is not None and same_value(configured, axis)]
    if configured is None:
        chosen = default
        reasons.append(f"not configured, so {spec.default_rule}")
    elif exact:
        chosen = exact[0]
    else:
        fallback = True
        gaps = [spec.distance(configured, axis) if spec.distance else np.inf for axis in axes]
        nearest = bool(np.isfinite(min(gaps)))
        chosen = axes[int(np.argmin(gaps))] if nearest else default
        reasons.append(f"configured {configured!r} is not among this claim's tested points; "
                       + ("the nearest of them stands in" if nearest else spec.default_rule))
    return {"stratum": stratum or None, "axis_value": plain(chosen), "configured": configured,
            "fallback": fallback, "reason": "; ".join(reasons)}


def assess(spec: ClaimInput, settings: ClaimSettings) -> Claim:
    """Every comparison of one claim at every point, its primary point and its seed split."""
    frame, margin = spec.frame, settings.margins[spec.margin_key]
    points = points_in_order(frame)
    primary = choose_primary(spec, points, {**settings.primary, **spec.primary_values})
    key = (primary["stratum"] or "", primary["axis_value"])
    claim = Claim(spec.name, spec.claim, spec.metric, spec.axis, spec.replicate, "inconclusive",
                  primary=primary, notes=list(spec.notes), focus=settings.focus)
    focus = settings.focus
    claim.points, main_rows = compare(frame, focus, rivals(frame, focus), margin, settings, "best other", key,
                                       spec.label)
    if FLOOR in set(frame.criterion):
        floor = {point: FLOOR for point in points}
        claim.points += compare(frame, focus, floor, margin, settings, "random", key, spec.label)[0]
        for criterion in sorted(set(frame.criterion) - {FLOOR}):
            found = compare(frame, criterion, floor, margin, settings, "random", key, spec.label)[0]
            claim.ranking.append({"criterion": criterion, "points": found})
        claim.ranking.sort(key=lambda entry: -_at_primary(entry["points"], "mean_difference", -np.inf))
    else:
        claim.notes.append(f"No comparison with `{FLOOR}`: it has no value of this metric.")
    main = [p for p in claim.points if p["comparison"] == "best other"]
    claim.holds_where = holds_where(main, spec.label)
    claim.seed_check = plain_tree(stats.seed_check(main_rows, POINT, key, margin, settings.alpha, settings.power))
    claim.verdict = _at_primary(main, "verdict", "inconclusive")
    if claim.seed_check["status"] == "unstable":
        claim.verdict = "unstable"
    claim.across_strata = across_strata(main, spec.strata_name or "stratum")
    claim.per_criterion = per_criterion(frame, spec.label)
    if spec.point_fields is not None:
        for record in [*claim.points, *claim.per_criterion]:
            record.update(spec.point_fields(record["axis_value"]))
    if spec.baselines is not None:
        claim.regime = regime_check(claim.points, regime_table(
            spec.frame if spec.regime_frame is None else spec.regime_frame, spec.baselines), settings.regime_gap_pp)
    claim.secondary = [assess_family(family, settings) for family in spec.secondary]
    return claim


def assess_family(family: Family, settings: ClaimSettings) -> dict:
    """A secondary comparison of a claim: the focus against the best other criterion at each of
    its points (one Holm family), with the regime check and each criterion's consistency where
    `family` has baselines and consistency rows."""
    margin = settings.margins[family.margin_key]
    found = compare(family.frame, settings.focus, rivals(family.frame, settings.focus), margin,
                    settings, "best other", None, family.label)[0]
    record = {"name": family.name, "metric": family.metric, "axis": family.axis,
              "margin": margin, "points": found, "holds_where": holds_where(found, family.label)}
    if family.baselines is not None:
        table = regime_table(family.frame if family.regime_frame is None else family.regime_frame, family.baselines)
        record["regime"] = regime_check(found, table, settings.regime_gap_pp)
        record["regime"]["per_point"] = [{"label": point_label(stratum, family.label(axis)), **values}
                                         for (stratum, axis), values in table.items()]
    if family.consistency is not None:
        record["consistency"] = consistency(family.consistency, margin, settings, family.label)
    if family.notes:
        record["notes"] = list(family.notes)
    return record


CONSISTENT = {"equivalent": "consistent", "supported": "higher from fewer images",
              "not supported": "lower from fewer images", "inconclusive": "inconclusive"}


def consistency(rows: pd.DataFrame, margin: float, settings: ClaimSettings, label: Callable[[Any], str]) -> list[dict]:
    """Each criterion's own a - b (e.g. accuracy pruned from fewer images minus from the most)
    tested against 0 by the rule of stats.py, Holm over that criterion's points: "consistent"
    where the whole interval lies within +-margin (equivalent). One record per criterion and point."""
    records = []
    for criterion, mine in rows.groupby("criterion", sort=False):
        family = stats.paired_family(mine, ["axis"], margin, settings.alpha, settings.power, "replicate")
        for row in family.to_dict("records"):
            axis = row.pop("axis")
            records.append({"criterion": criterion, "axis_value": plain(axis), "label": label(axis),
                            **{k: plain(v) for k, v in row.items()}, "reading": CONSISTENT[row["verdict"]]})
    return records


def regime_table(frame: pd.DataFrame, baselines: dict) -> dict:
    """At every (stratum, axis) point of `frame` (an absolute metric): the mean over its seeds of
    their baselines' value (`baselines` keyed by (stratum, replicate) or by replicate), the best
    criterion there (by the mean over seeds of each seed's mean), its mean and its gap below."""
    table = {}
    for (stratum, axis), here in frame.groupby(POINT, sort=False):
        seeds = here.groupby(["criterion", "replicate"]).value.mean().groupby("criterion").mean()
        replicates = sorted(here.replicate.unique())
        values = [baselines.get((stratum, r), baselines.get(r)) for r in replicates]
        base = float(np.mean([v for v in values if v is not None]))
        best = str(seeds.idxmax())
        table[(stratum, plain(axis))] = {"baseline_mean": base, "best_criterion": best,
                                         "best_mean": float(seeds.max()), "gap_pp": base - float(seeds.max())}
    return table


def point_label(stratum: str | None, label: str) -> str:
    """A point in words: "symmetric, noise 0.3" in a stratum, else the axis label alone."""
    return f"{stratum}, {label}" if stratum else label


def regime_check(points: list[dict], table: dict, threshold: float) -> dict:
    """Is each point in the paper's regime, where pruning and fine-tuning lose almost nothing? A
    point whose best criterion lies more than `threshold` below its baselines (`regime_table`) is
    outside it. Adds `baseline_mean`, `best_criterion`, `best_mean`, `gap_pp` and `regime` to every
    point record; returns the summary."""
    for record in points:
        found = table.get((record["stratum"] or "", record["axis_value"]))
        if found:
            record.update({k: plain(v) for k, v in found.items()},
                          regime=INSIDE if found["gap_pp"] <= threshold else OUTSIDE)
    main = [p for p in points if p["comparison"] == "best other"]
    primary = next((p for p in main if p["primary"]), None)
    return {"threshold_pp": threshold,
            "rule": f"a point is {OUTSIDE} when its best criterion lies more than {threshold:g} pp below the "
                    "mean of its baselines; the paper compares networks that lose almost nothing",
            "primary": primary.get("regime") if primary else None,
            "primary_gap_pp": primary.get("gap_pp") if primary else None,
            "inside": [point_label(p["stratum"], p["label"]) for p in main if p.get("regime") == INSIDE],
            "outside": [point_label(p["stratum"], p["label"]) for p in main if p.get("regime") == OUTSIDE]}


def across_strata(points: list[dict], name: str) -> dict:
    """Does a verdict survive a change of stratum (allocation, noise kind)? At every axis value
    tested in two or more strata: each stratum's verdict against the best other criterion, and
    whether they agree. {} when the claim has one stratum."""
    strata = list(dict.fromkeys(point["stratum"] for point in points))
    if len(strata) < 2:
        return {}
    values = []
    for value in dict.fromkeys(point["axis_value"] for point in points):
        here = {point["stratum"]: point for point in points if point["axis_value"] == value}
        if len(here) < 2:
            continue
        verdicts = {stratum: point["verdict"] for stratum, point in here.items()}
        values.append({"axis_value": value, "label": next(iter(here.values()))["label"], "verdicts": verdicts,
                       "comparators": {stratum: point["comparator"] for stratum, point in here.items()},
                       "agree": len(set(verdicts.values())) == 1})
    return {"name": name, "strata": strata, "values": values,
            "survives": bool(values) and all(entry["agree"] for entry in values)}


def holds_where(points: list[dict], label: Callable[[Any], str]) -> str:
    """The "holds where" line of stats.holds_where, one clause per stratum."""
    lines = []
    for stratum in dict.fromkeys(point["stratum"] for point in points):
        mine = [point for point in points if point["stratum"] == stratum]
        line = stats.holds_where([p["axis_value"] for p in mine], [p["verdict"] for p in mine], label)
        lines.append(f"{stratum}: {line}" if stratum else line)
    return "; ".join(lines) or "no operating point tested"


def per_criterion(frame: pd.DataFrame, label: Callable[[Any], str]) -> list[dict]:
    """Per criterion and point: the mean and sd over seeds of each seed's mean value, the number
    of seeds (replicates) and of rows."""
    seeds = frame.groupby(["criterion", *POINT, "replicate"]).value.agg(["mean", "size"]).reset_index()
    table = seeds.groupby(["criterion", *POINT]).agg(mean=("mean", "mean"), sd=("mean", "std"),
                                                    replicates=("mean", "size"), rows=("size", "sum"))
    records = []
    for row in table.reset_index().to_dict("records"):
        stratum, axis = row.pop("stratum"), row.pop("axis")
        records.append({"criterion": row.pop("criterion"), "stratum": stratum or None, "axis_value": plain(axis),
                        "label": label(axis), **{k: plain(v) for k, v in row.items()}})
    return records


def _at_primary(points: list[dict], name: str, default):
    for point in points:
        if point["primary"]:
            return default if point[name] is None else point[name]
    return default

