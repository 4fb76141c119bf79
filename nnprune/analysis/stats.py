"""Paired comparisons in which the replicate is the seed: intervals, tests, four verdicts, Holm,
the minimum detectable difference, a seed-split check and a one-line "holds where" summary.

Pure functions of numpy arrays and pandas frames (numpy, pandas, scipy; no torch). The rule below
is fixed before any result is read; nnprune/analysis/claims.py applies it to every claim.

THE UNIT. Input rows carry a replicate id (the seed: one trained network), an operating point
and the two values compared, `a` (the focus criterion) and `b` (its comparator). A replicate may
have many rows at one point (layers, datasets, ...). Rows of one replicate share one trained
network and are not independent, so every interval and test uses the per-replicate mean
difference d_r = mean over the replicate's rows of (a - b): n is the number of replicates,
never the number of rows. Replicates weigh equally whatever their number of rows.

INTERVAL. mean(d) +- t(1 - alpha/2, n - 1) * sd(d) / sqrt(n)   (Student t; sd with ddof 1).

TEST. Two-sided paired t-test on the d_r: p < alpha exactly when the interval excludes 0. Chosen
over a sign-flip permutation test because that test cannot reject at alpha = 0.05 with 5 or fewer
replicates (its smallest two-sided p is 2 / 2^n), so a study of 3-5 seeds could never answer. The
exact sign-flip p is reported beside it (`p_sign_flip`) as an assumption-free check.

HOLM. The m points of one comparison form a family. Sort their p-values, multiply the k-th
smallest by (m - k + 1), take the running maximum, cap at 1 (`holm`). Family-wise error <= alpha.

VERDICT, decided in this order (`verdict`):
  1. inconclusive   fewer than 2 replicates (no interval).
  2. equivalent     the whole (1 - alpha) interval lies within [-margin, +margin]. This wins over 3:
                    a difference smaller than the margin named before the run is, by that choice,
                    no practical difference, even when the interval excludes 0 (it is reported,
                    so a reader sees that case). Equivalence is judged on each point's own
                    interval (two one-sided tests at alpha/2 each), not Holm-adjusted.
  3. supported      Holm-adjusted p < alpha and mean > 0 (the focus criterion is better);
     not supported  Holm-adjusted p < alpha and mean < 0 (the comparator is better).
  4. inconclusive   otherwise. An unadjusted interval that excludes 0 with a Holm-adjusted
                    p >= alpha is inconclusive: it does not survive testing m points.

MINIMUM DETECTABLE DIFFERENCE (`min_detectable_difference`). The true mean difference delta that
the two-sided paired t-test at level alpha/m (Holm's first, strictest step) rejects with
probability `power`, for n replicates and the observed sd of the d_r:
    P(|T| > t(1 - alpha/(2m), n - 1)) = power,   T ~ noncentral t(n - 1, delta * sqrt(n) / sd),
solved for delta with scipy's noncentral t (exact, no normal approximation). A true difference
of that size would get a directional verdict with at least that probability.

SEED SPLIT (`seed_split`). Replicates sorted by id go alternately to two halves; the whole family
is tested again in each half by the same rule and the primary point's two verdicts compared:
"stable" when they agree, "unstable" when they differ, "not checkable" when a half has fewer
than 2 replicates.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from itertools import product

import numpy as np
import pandas as pd

VERDICTS = ("supported", "not supported", "equivalent", "inconclusive")
MIN_REPLICATES = 2
EXACT_SIGN_FLIP_MAX = 16          # enumerate all 2^n sign vectors up to this n
SIGN_FLIP_RESAMPLES = 20_000


def replicate_differences(rows: pd.DataFrame, by: Sequence[str], replicate: str = "replicate",
                          a: str = "a", b: str = "b") -> pd.DataFrame:
    """Per (point, replicate): the mean of a - b over the replicate's rows (`difference`) and
    how many rows it averages (`rows`). Rows with a missing a or b are dropped first."""
    clean = rows.dropna(subset=[a, b])
    frame = clean.assign(difference=clean[a].astype(float) - clean[b].astype(float))
    grouped = frame.groupby([*by, replicate], sort=False).difference
    return pd.concat([grouped.mean(), grouped.size().rename("rows")], axis=1).reset_index()


def t_interval(differences: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """(1 - alpha) Student-t interval of the mean of `differences` (one per replicate).
    (nan, nan) below 2 values; the mean twice when they are all equal."""
    from scipy import stats

    values = np.asarray(differences, dtype=float)
    if len(values) < MIN_REPLICATES:
        return float("nan"), float("nan")
    mean, spread = values.mean(), values.std(ddof=1)
    half = stats.t.ppf(1 - alpha / 2, len(values) - 1) * spread / np.sqrt(len(values))
    return float(mean - half), float(mean + half)


def paired_t_p(differences: np.ndarray) -> float:
    """Two-sided p of the one-sample t-test of mean 0 on the per-replicate differences. With no
    spread: 0 when the mean is not 0, else 1. nan below 2 values."""
    from scipy import stats

    values = np.asarray(differences, dtype=float)
    if len(values) < MIN_REPLICATES:
        return float("nan")
    if values.std(ddof=1) == 0:
        return 0.0 if values.mean() != 0 else 1.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def sign_flip_p(differences: np.ndarray, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p of mean 0: the share of sign vectors whose |sum| is at
    least the observed one. Exact up to EXACT_SIGN_FLIP_MAX values, else SIGN_FLIP_RESAMPLES
    random sign vectors (seeded; p = (1 + hits) / (1 + resamples))."""
    values = np.asarray(differences, dtype=float)
    if len(values) == 0:
        return float("nan")
    observed = abs(values.sum()) * (1 - 1e-12)
    if len(values) <= EXACT_SIGN_FLIP_MAX:
        signs = np.array(list(product((1.0, -1.0), repeat=len(values))))
        return float(np.mean(np.abs(signs @ values) >= observed))
    signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(SIGN_FLIP_RESAMPLES, len(values)))
    return float((1 + np.sum(np.abs(signs @ values) >= observed)) / (1 + SIGN_FLIP_RESAMPLES))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input order; nan entries stay nan and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (m - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


def min_detectable_difference(replicates: int, spread: float, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """Smallest true mean difference (units of the data) that a two-sided paired t-test at level
    `alpha` detects with probability `power`, for `replicates` pairs whose differences have
    standard deviation `spread` (noncentral t; see the module docstring). inf below 2 pairs."""
    from scipy import optimize, stats

    if replicates < MIN_REPLICATES or not np.isfinite(spread):
        return float("inf")
    if spread == 0:
        return 0.0
    df = replicates - 1
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(effect: float) -> float:
        noncentrality = effect * np.sqrt(replicates) / spread
        upper = stats.nct.sf(critical, df, noncentrality)
        # The far tail is ~0 for a positive effect; scipy returns nan there at large noncentrality.
        lower = np.nan_to_num(stats.nct.cdf(-critical, df, noncentrality), nan=0.0)
        return upper + lower - power

    high = spread
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-10 * spread))


def verdict(mean: float, ci_low: float, ci_high: float, p_holm: float, margin: float,
            alpha: float = 0.05) -> str:
    """One of VERDICTS by the rule of the module docstring (mean = focus minus comparator)."""
    if not np.isfinite(ci_low) or not np.isfinite(ci_high):
        return "inconclusive"
    if -margin <= ci_low and ci_high <= margin:
        return "equivalent"
    if np.isfinite(p_holm) and p_holm < alpha and mean != 0:
        return "supported" if mean > 0 else "not supported"
    return "inconclusive"


def paired_family(rows: pd.DataFrame, by: Sequence[str], margin: float, alpha: float = 0.05,
                  power: float = 0.8, replicate: str = "replicate", a: str = "a",
                  b: str = "b") -> pd.DataFrame:
    """Test every point (the distinct values of the `by` columns, in order of first appearance)
    of one comparison, Holm across them. One row per point with the `by` columns and:
    pairs (independent replicates), rows (input rows behind them), mean_difference, sd (of the
    per-replicate differences), ci_low, ci_high, p_value, p_sign_flip, p_holm, margin, verdict,
    mdd (at alpha / number of tested points)."""
    by = list(by)
    per_replicate = replicate_differences(rows, by, replicate, a, b)
    records = []
    for key, part in per_replicate.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        values = part.difference.to_numpy(float)
        low, high = t_interval(values, alpha)
        records.append({**dict(zip(by, key)), "pairs": len(values), "rows": int(part.rows.sum()),
                        "mean_difference": float(values.mean()) if len(values) else float("nan"),
                        "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                        "ci_low": low, "ci_high": high, "p_value": paired_t_p(values),
                        "p_sign_flip": sign_flip_p(values)})
    columns = [*by, "pairs", "rows", "mean_difference", "sd", "ci_low", "ci_high", "p_value",
               "p_sign_flip", "p_holm", "margin", "verdict", "mdd"]
    if not records:
        return pd.DataFrame(columns=columns)
    family = pd.DataFrame(records)
    family["p_holm"] = holm(family.p_value)
    family["margin"] = float(margin)
    family["verdict"] = [verdict(r.mean_difference, r.ci_low, r.ci_high, r.p_holm, margin, alpha)
                         for r in family.itertuples()]
    tested = max(1, int(family.p_value.notna().sum()))
    family["mdd"] = [min_detectable_difference(r.pairs, r.sd, alpha / tested, power)
                     for r in family.itertuples()]
    return family[columns]


def split_halves(replicates: Sequence[Hashable]) -> tuple[list, list]:
    """Replicate ids sorted, then dealt alternately: (1st, 3rd, ...), (2nd, 4th, ...)."""
    ordered = sorted(set(replicates))
    return ordered[0::2], ordered[1::2]


def seed_split(rows: pd.DataFrame, by: Sequence[str], primary: tuple, margin: float,
               alpha: float = 0.05, power: float = 0.8, replicate: str = "replicate",
               a: str = "a", b: str = "b") -> dict:
    """The primary point's verdict in each of two disjoint halves of the replicates (the whole
    family retested in each half, Holm included). Returns {halves, verdicts, mean_differences,
    status} with status "stable", "unstable" or "not checkable" (a half below 2 replicates)."""
    by = list(by)
    usable = rows.dropna(subset=[a, b])
    at_primary = usable[_point_mask(usable, by, primary)]
    halves = split_halves(at_primary[replicate].tolist() if len(at_primary) else [])
    result = {"halves": [list(map(_plain, h)) for h in halves], "verdicts": [], "mean_differences": []}
    if min(len(h) for h in halves) < MIN_REPLICATES:
        return {**result, "status": "not checkable"}
    for half in halves:
        family = paired_family(rows[rows[replicate].isin(half)], by, margin, alpha, power, replicate, a, b)
        point = family[_point_mask(family, by, primary)]
        result["verdicts"].append(str(point.verdict.iloc[0]) if len(point) else "inconclusive")
        result["mean_differences"].append(float(point.mean_difference.iloc[0]) if len(point) else None)
    status = "stable" if result["verdicts"][0] == result["verdicts"][1] else "unstable"
    return {**result, "status": status}


def holds_where(values: Sequence, verdicts: Sequence[str],
                label: Callable[[object], str] = str) -> str:
    """One line from per-point verdicts along an ordered axis (values in axis order), e.g.
    "supported up to 25% removed, not supported from 50% removed"."""
    if not values:
        return "no operating point tested"
    runs: list[tuple[str, list]] = []
    for value, decided in zip(values, verdicts):
        if runs and runs[-1][0] == decided:
            runs[-1][1].append(value)
        else:
            runs.append((decided, [value]))
    if len(runs) == 1:
        decided, points = runs[0]
        span = label(points[0]) if len(points) == 1 else f"{label(points[0])} to {label(points[-1])}"
        return f"{decided} at {'the only point' if len(points) == 1 else 'every point'} ({span})"
    parts = []
    for index, (decided, points) in enumerate(runs):
        if index == 0:
            parts.append(f"{decided} {'at' if len(points) == 1 else 'up to'} {label(points[-1])}")
        elif index == len(runs) - 1:
            parts.append(f"{decided} {'at' if len(points) == 1 else 'from'} {label(points[0])}")
        elif len(points) == 1:
            parts.append(f"{decided} at {label(points[0])}")
        else:
            parts.append(f"{decided} from {label(points[0])} to {label(points[-1])}")
    return ", ".join(parts)


def _point_mask(frame: pd.DataFrame, by: list[str], point: tuple) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in zip(by, point):
        mask &= frame[column] == value
    return mask


def _plain(value):
    """numpy scalars to Python ones, for JSON."""
    return value.item() if isinstance(value, np.generic) else value
