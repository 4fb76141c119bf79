"""The records a claim passes through: its settings (config `claims:`, `ClaimSettings`), what it
reads (`ClaimInput`, its secondary comparisons `Family`, on a frame of `standard_frame`'s columns)
and what it returns (`Claim`, JSON-ready through `plain`). nnprune/analysis/claims_inputs.py fills
them, nnprune/analysis/verdicts.py assesses them, nnprune/analysis/claims_render.py writes them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nnprune.errors import UserError
from nnprune.plan.names import DEFAULT_FOCUS, PAPER_CRITERION

DEFAULT_MARGINS = {"accuracy_pp": 1.0, "spearman": 0.02, "boundary_pp": 2.0}
DEFAULT_PRIMARY = {"toy_fraction": 0.333, "score_images": None, "label_noise": None,
                   "noise_kind": None, "pruning": None, "budget": None}
DEFAULT_REGIME_GAP_PP = 1.0
SETTING_KEYS = ("focus", "alpha", "power", "margins", "primary", "regime_gap_pp")


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
    """One claim as `verdicts.assess` reads it: `frame` of `standard_frame`'s columns (the metric
    oriented so that higher is better), the words of claims.md, and how its primary point is found."""
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
    """One claim's verdict and the records behind it, as claims.json holds them."""
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
    along_cuts: dict = field(default_factory=dict)   # the CNN claim over several fine-tuned cuts


# left out of claims.json while empty: a study of one cut keeps the file it had before they existed
WHEN_TESTED = ("along_cuts",)


def claim_record(claim: Claim) -> dict:
    """A claim as claims.json holds it: its fields, those of WHEN_TESTED only when filled."""
    return {key: value for key, value in asdict(claim).items() if value or key not in WHEN_TESTED}


def standard_frame(frame: pd.DataFrame, value: pd.Series, axis: str, units: list[str],
                   stratum: str | None = None, replicate: str = "seed", order: pd.Series | None = None) -> pd.DataFrame:
    """The columns every claim is assessed on, from a results frame and its oriented metric."""
    # map(str), not astype(str): a missing value (train_size of "all images") becomes "nan", not NaN
    unit = frame[units].map(str).agg("/".join, axis=1) if units else pd.Series("", index=frame.index)
    return pd.DataFrame({
        "criterion": frame.criterion, "stratum": frame[stratum].astype(str) if stratum else "",
        "axis": frame[axis], "order": frame[axis] if order is None else order,
        "replicate": frame[replicate], "unit": unit, "value": value.astype(float)})


def same_value(a, b) -> bool:
    """Whether two axis values are the same point: numbers within 1e-9, strings (or a string and
    anything) by text, tuples element by element, None only with None."""
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
