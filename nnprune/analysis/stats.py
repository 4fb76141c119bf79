"""Paired comparisons in which the replicate is the seed: intervals, tests, four verdicts, Holm,
the minimum detectable difference, a seed check and a one-line "holds where" summary.

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

SEED CHECK (`seed_check`). Does the primary point's verdict rest on the seeds agreeing, or on one
of them? It reports instability only when the data disagree, never because a subset of the seeds
has less power than all of them (a 2- or 3-seed half of 5 seeds is often inconclusive where all 5
decide). The claim's verdict stays the one from all seeds. Two checks, both at the primary point:
  (a) leave one seed out: for each replicate r, the whole family is tested again without r (Holm
      included), by the same rule. The subset
        agrees           when its verdict equals the all-seeds verdict;
        has less power   when it is inconclusive and its interval contains the all-seeds mean;
        is compatible    when it reaches another decisive verdict that is not the opposite one
                         (equivalent against supported or not supported) and its interval contains
                         the all-seeds mean;
        disagrees        when its verdict is the opposite direction (supported against not
                         supported), or when its verdict differs and its interval excludes the
                         all-seeds mean (the all-seeds estimate rests on the seed left out).
  (b) halves compared by their effect: replicates sorted by id are dealt alternately into two
      halves; the difference of the halves' mean differences is tested with Welch's t-test. The
      halves disagree when p < alpha and the difference is larger than the margin: their effects
      differ by more than their combined uncertainty, and by more than the difference the claim
      calls negligible (halves at -4.05 and -3.95 pp of a 1 pp margin agree however small their
      spread), not merely in verdict. Needs 2 replicates in each half (4 or more in all).
Status: "not checkable" below 3 replicates at the primary point; "unstable" when a subset of (a)
disagrees or the halves of (b) do; "stable" otherwise. With 3 replicates (a) runs on 2-seed
subsets and (b) cannot run: the check is weak there, and the record says how many subsets it has.
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


MIN_CHECKABLE = 3                 # replicates at the primary point below which the seed check cannot run
OPPOSITE = {"supported": "not supported", "not supported": "supported"}


def subset_finding(full_verdict: str, full_mean: float, verdict_here: str, low: float, high: float) -> str:
    """What one leave-one-seed-out subset found, by rule (a) of the module docstring: "agrees",
    "less power", "compatible" or "disagrees"."""
    if verdict_here == full_verdict:
        return "agrees"
    if OPPOSITE.get(full_verdict) == verdict_here:
        return "disagrees"
    contains = np.isfinite(low) and np.isfinite(high) and low <= full_mean <= high
    if not contains:
        return "disagrees"
    return "less power" if verdict_here == "inconclusive" else "compatible"


def welch_difference(first: np.ndarray, second: np.ndarray, alpha: float = 0.05) -> dict:
    """The difference of two groups' means (first - second) with Welch's (1 - alpha) interval
    and two-sided p. Both groups without spread: p 0 when the means differ, else 1."""
    from scipy import stats as sstats

    first, second = np.asarray(first, float), np.asarray(second, float)
    difference = float(first.mean() - second.mean())
    var_a, var_b = first.var(ddof=1) / len(first), second.var(ddof=1) / len(second)
    error = float(np.sqrt(var_a + var_b))
    if error == 0:
        return {"difference": difference, "ci_low": difference, "ci_high": difference,
                "p_value": 0.0 if difference != 0 else 1.0}
    dof = (var_a + var_b) ** 2 / (var_a ** 2 / (len(first) - 1) + var_b ** 2 / (len(second) - 1))
    half = float(sstats.t.ppf(1 - alpha / 2, dof)) * error
    p_value = float(2 * sstats.t.sf(abs(difference) / error, dof))
    return {"difference": difference, "ci_low": difference - half, "ci_high": difference + half, "p_value": p_value}


def seed_check(rows: pd.DataFrame, by: Sequence[str], primary: tuple, margin: float,
               alpha: float = 0.05, power: float = 0.8, replicate: str = "replicate",
               a: str = "a", b: str = "b") -> dict:
    """The seed check of the primary point (module docstring): leave-one-seed-out subsets and
    halves compared by their effect. Returns {rule, replicates, verdict, mean_difference,
    leave_one_out: [{left_out, pairs, verdict, mean_difference, ci_low, ci_high, finding}],
    halves: {seeds, mean_differences, pairs, difference, ci_low, ci_high, p_value, finding} or
    None, status, reason}, status "stable", "unstable" or "not checkable"."""
    by = list(by)
    usable = rows.dropna(subset=[a, b])
    at_primary = usable[_point_mask(usable, by, primary)]
    seeds = sorted(set(at_primary[replicate].tolist())) if len(at_primary) else []
    result = {"rule": "leave one seed out, and halves compared by their effect (Welch)",
              "replicates": [_plain(s) for s in seeds], "leave_one_out": [], "halves": None}
    if len(seeds) < MIN_CHECKABLE:
        return {**result, "status": "not checkable",
                "reason": f"{len(seeds)} replicate(s) at the primary point; the check needs {MIN_CHECKABLE}"}
    full = _primary_row(paired_family(rows, by, margin, alpha, power, replicate, a, b), by, primary)
    result.update(verdict=full["verdict"], mean_difference=full["mean_difference"])
    for seed in seeds:
        here = _primary_row(paired_family(rows[rows[replicate] != seed], by, margin, alpha, power, replicate, a, b),
                            by, primary)
        result["leave_one_out"].append({
            "left_out": _plain(seed), "pairs": here["pairs"], "verdict": here["verdict"],
            "mean_difference": here["mean_difference"], "ci_low": here["ci_low"], "ci_high": here["ci_high"],
            "finding": subset_finding(full["verdict"], full["mean_difference"], here["verdict"],
                                      here["ci_low"], here["ci_high"])})
    per_seed = replicate_differences(at_primary, by, replicate, a, b).set_index(replicate).difference
    halves = split_halves(seeds)
    if min(len(h) for h in halves) >= MIN_REPLICATES:
        first, second = (per_seed.loc[h].to_numpy(float) for h in halves)
        test = welch_difference(first, second, alpha)
        apart = test["p_value"] < alpha and abs(test["difference"]) > margin
        result["halves"] = {"seeds": [list(map(_plain, h)) for h in halves],
                            "mean_differences": [float(first.mean()), float(second.mean())],
                            **test, "finding": "disagree" if apart else "agree"}
    disagreeing = [entry["left_out"] for entry in result["leave_one_out"] if entry["finding"] == "disagrees"]
    halves_disagree = bool(result["halves"]) and result["halves"]["finding"] == "disagree"
    reasons = []
    if disagreeing:
        reasons.append(f"without seed(s) {', '.join(map(str, disagreeing))} the verdict disagrees with all seeds'")
    if halves_disagree:
        reasons.append("the halves' effects differ (Welch p < alpha, by more than the margin)")
    status = "unstable" if reasons else "stable"
    if not reasons:
        reasons.append("no subset disagrees" + ("" if result["halves"] else
                                                 "; halves not compared (fewer than 2 replicates in a half)"))
    return {**result, "status": status, "reason": "; ".join(reasons)}


def _primary_row(family: pd.DataFrame, by: list[str], primary: tuple) -> dict:
    """The primary point's row of a tested family as plain values (nan for a missing point)."""
    found = family[_point_mask(family, by, primary)]
    if not len(found):
        return {"pairs": 0, "verdict": "inconclusive", "mean_difference": float("nan"),
                "ci_low": float("nan"), "ci_high": float("nan")}
    row = found.iloc[0]
    return {"pairs": int(row.pairs), "verdict": str(row.verdict), "mean_difference": float(row.mean_difference),
            "ci_low": float(row.ci_low), "ci_high": float(row.ci_high)}


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
