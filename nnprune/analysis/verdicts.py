"""A claim assessed at every operating point by the rule of nnprune/analysis/stats.py: which comparisons,
which comparator, which primary point. nnprune/analysis/claims.py says which rows each claim reads.

A claim arrives as a `ClaimInput`: one metric oriented so that higher is better, in a frame
with the columns criterion, stratum ("" or e.g. the noise kind), axis (the swept value), order
(its position on the axis), replicate (the seed), unit (what is matched inside a seed: dataset,
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnprune.analysis import stats
from nnprune.errors import UserError
from nnprune.plan.names import DEFAULT_FOCUS, PAPER_CRITERION

# the other form of the paper's energy (docs/background.md §2): no rival of the paper's criterion
SAME_ENERGY = {PAPER_CRITERION: {"nuclear-stacked"}}
FLOOR = "random"
DEFAULT_MARGINS = {"accuracy_pp": 1.0, "spearman": 0.02, "boundary_pp": 2.0}
DEFAULT_PRIMARY = {"toy_fraction": 0.333, "score_images": None, "label_noise": None,
                   "noise_kind": None, "pruning": None, "budget": None}
DEFAULT_REGIME_GAP_PP = 1.0
SETTING_KEYS = ("focus", "alpha", "power", "margins", "primary", "regime_gap_pp")
INSIDE, OUTSIDE = "inside the paper's regime", "outside the paper's regime"
POINT = ["stratum", "axis"]


@dataclass(frozen=True)
class ClaimSettings:
    """The config's `claims:` section: test level, power of the minimum detectable difference,
    equivalence margins per metric, each claim's primary point (None = the claim's stated rule).
    The schema (nnprune/plan/schemas/config.schema.yaml) repeats these defaults; a test holds them equal."""
    alpha: float = 0.05
    power: float = 0.8
    margins: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MARGINS))
    primary: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PRIMARY))
    regime_gap_pp: float = DEFAULT_REGIME_GAP_PP   # a point whose best criterion lies further below
    #                                                its baselines is outside the paper's regime
    focus: str = DEFAULT_FOCUS                     # the criterion every claim tests

    @property
    def paper_focus(self) -> bool:
        """Whether the claims are asked of the paper's own criterion (the paper's texts apply)."""
        return self.focus == PAPER_CRITERION

    @classmethod
    def from_mapping(cls, mapping: dict | None) -> ClaimSettings:
        mapping = dict(mapping or {})
        unknown = set(mapping) - set(SETTING_KEYS)
        for key, allowed in (("margins", DEFAULT_MARGINS), ("primary", DEFAULT_PRIMARY)):
            unknown |= {f"{key}.{name}" for name in set(mapping.get(key) or {}) - set(allowed)}
        if unknown:
            raise UserError(f"claims settings: unknown keys {sorted(unknown)}",
                            f"use focus, alpha, power, regime_gap_pp, margins.{{{','.join(DEFAULT_MARGINS)}}} and "
                            f"primary.{{{','.join(DEFAULT_PRIMARY)}}}")
        return cls(alpha=float(mapping.get("alpha", 0.05)), power=float(mapping.get("power", 0.8)),
                   margins={**DEFAULT_MARGINS, **(mapping.get("margins") or {})},
                   primary={**DEFAULT_PRIMARY, **(mapping.get("primary") or {})},
                   regime_gap_pp=float(mapping.get("regime_gap_pp", DEFAULT_REGIME_GAP_PP)),
                   focus=str(mapping.get("focus", DEFAULT_FOCUS)))


@dataclass
class Family:
    """A secondary comparison of a claim (the focus against the best other criterion only).
    With `baselines` each point gets a regime check (on `regime_frame`, the absolute metric, when
    `frame` holds differences); with `consistency` (rows criterion, axis, replicate, unit, a, b)
    each criterion's own a - b is tested against 0 by the same rule ("consistent" = equivalent)."""
    name: str
    metric: str
    axis: str
    margin_key: str
    frame: pd.DataFrame
    label: Callable[[Any], str] = str
    baselines: dict | None = None
    regime_frame: pd.DataFrame | None = None
    consistency: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ClaimInput:
    name: str
    claim: str
    metric: str
    axis: str
    replicate: str
    margin_key: str
    frame: pd.DataFrame
    label: Callable[[Any], str] = str
    primary_key: str = ""               # key of ClaimSettings.primary naming the axis value
    stratum_key: str | None = None      # key naming the stratum, where there are several
    default_axis: Any = None            # the primary axis value when none is configured
    default_rule: str = ""              # ... said in words
    distance: Callable[[Any, Any], float] | None = None   # configured vs tested, for the fallback
    secondary: list[Family] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    primary_values: dict = field(default_factory=dict)   # overrides of ClaimSettings.primary (parsed)
    strata_name: str = ""               # what the strata are, in words ("allocation", "noise kind")
    baselines: dict | None = None       # replicate (or (stratum, replicate)) -> its unpruned baseline's
    #                                     value: each point gets a regime check (the best criterion's gap)
    regime_frame: pd.DataFrame | None = None   # the absolute metric of the regime check, when `frame`
    #                                            holds differences (e.g. accuracy drops)
    point_fields: Callable[[Any], dict] | None = None   # axis value -> extra fields of its point records


@dataclass
class Claim:
    name: str
    claim: str
    metric: str
    axis: str
    replicate: str
    verdict: str
    primary: dict = field(default_factory=dict)
    holds_where: str = ""
    seed_check: dict = field(default_factory=dict)
    points: list[dict] = field(default_factory=list)
    ranking: list[dict] = field(default_factory=list)
    per_criterion: list[dict] = field(default_factory=list)
    secondary: list[dict] = field(default_factory=list)
    across_strata: dict = field(default_factory=dict)
    regime: dict = field(default_factory=dict)
    across_allocations: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    focus: str = DEFAULT_FOCUS          # the criterion the claim was asked of


def standard_frame(frame: pd.DataFrame, value: pd.Series, axis: str, units: list[str],
                   stratum: str | None = None, replicate: str = "seed", order: pd.Series | None = None) -> pd.DataFrame:
    """The columns every claim is assessed on, from a results frame and its oriented metric."""
    # map(str), not astype(str): a missing value (train_size of "all images") becomes "nan", not NaN
    unit = frame[units].map(str).agg("/".join, axis=1) if units else pd.Series("", index=frame.index)
    return pd.DataFrame({
        "criterion": frame.criterion, "stratum": frame[stratum].astype(str) if stratum else "",
        "axis": frame[axis], "order": frame[axis] if order is None else order,
        "replicate": frame[replicate], "unit": unit, "value": value.astype(float)})


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
    for extra in spec.secondary:
        margin_here = settings.margins[extra.margin_key]
        found = compare(extra.frame, focus, rivals(extra.frame, focus), margin_here,
                        settings, "best other", None, extra.label)[0]
        record = {"name": extra.name, "metric": extra.metric, "axis": extra.axis,
                  "margin": margin_here, "points": found, "holds_where": holds_where(found, extra.label)}
        if extra.baselines is not None:
            table = regime_table(extra.frame if extra.regime_frame is None else extra.regime_frame, extra.baselines)
            record["regime"] = regime_check(found, table, settings.regime_gap_pp)
            record["regime"]["per_point"] = [{"label": label, **values} for (_, _, label), values in
                                             _labelled(table, extra.label).items()]
        if extra.consistency is not None:
            record["consistency"] = consistency(extra.consistency, margin_here, settings, extra.label)
        if extra.notes:
            record["notes"] = list(extra.notes)
        claim.secondary.append(record)
    return claim


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


def _labelled(table: dict, label: Callable[[Any], str]) -> dict:
    return {(stratum, axis, f"{stratum}, {label(axis)}" if stratum else label(axis)): values
            for (stratum, axis), values in table.items()}


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
            "inside": [p["label"] if not p["stratum"] else f"{p['stratum']}, {p['label']}"
                       for p in main if p.get("regime") == INSIDE],
            "outside": [p["label"] if not p["stratum"] else f"{p['stratum']}, {p['label']}"
                        for p in main if p.get("regime") == OUTSIDE]}


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


def same_value(a, b) -> bool:
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(same_value(x, y) for x, y in zip(a, b)))
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(np.isclose(float(a), float(b), rtol=0, atol=1e-9))


def plain_tree(value):
    """`plain` applied through dicts and lists (JSON-ready nested records)."""
    if isinstance(value, dict):
        return {key: plain_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_tree(item) for item in value]
    return plain(value)


def plain(value):
    """JSON-ready: numpy scalars to Python ones, nan and inf to None."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (tuple, list)):     # a composite axis value (level, budget); hashable
        return tuple(plain(item) for item in value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
