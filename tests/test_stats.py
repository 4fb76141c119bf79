"""nnprune.analysis.stats on synthetic paired data: the four verdicts, no pseudo-replication, Holm by hand,
the minimum detectable difference against a simulation, the seed check and "holds where"."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from nnprune.analysis.stats import (
    holds_where,
    holm,
    min_detectable_difference,
    paired_family,
    seed_check,
    sign_flip_p,
    t_interval,
)


def _rows(differences_by_point: dict, layers: int = 1, layer_noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Rows (point, replicate, layer, a, b) with b ~ N(50, 5) and a = b + the replicate's
    difference (+ independent layer noise when asked)."""
    rng = np.random.default_rng(seed)
    records = []
    for point, differences in differences_by_point.items():
        for replicate, difference in enumerate(differences):
            for layer in range(layers):
                b = rng.normal(50, 5)
                records.append({"point": point, "replicate": replicate, "layer": layer, "b": b,
                                "a": b + difference + rng.normal(0, layer_noise)})
    return pd.DataFrame(records)


def _family(differences_by_point: dict, margin: float = 1.0, **kwargs) -> pd.DataFrame:
    return paired_family(_rows(differences_by_point, **kwargs), ["point"], margin).set_index("point")


def test_each_of_the_four_verdicts_is_reached():
    rng = np.random.default_rng(1)
    family = _family({"ahead": rng.normal(3, 1, 8), "behind": rng.normal(-3, 1, 8),
                      "same": rng.normal(0, 0.1, 8), "unclear": rng.normal(0, 3, 4)}, margin=1.0)
    assert family.verdict.to_dict() == {"ahead": "supported", "behind": "not supported",
                                        "same": "equivalent", "unclear": "inconclusive"}
    assert (family.pairs == [8, 8, 8, 4]).all()
    # The unclear point's MDD (at alpha/4, 4 pairs of sd ~3) is far above its margin: too small a study.
    assert family.loc["unclear", "mdd"] > 5 * family.loc["unclear", "margin"]


def test_equivalence_wins_when_the_interval_excludes_zero_but_lies_inside_the_margin():
    family = _family({"tiny": np.random.default_rng(2).normal(0.3, 0.05, 10)}, margin=1.0)
    row = family.loc["tiny"]
    assert row.ci_low > 0 and row.p_holm < 0.05          # a real difference ...
    assert row.ci_high < 1.0 and row.verdict == "equivalent"  # ... smaller than the margin


def test_holm_can_turn_a_significant_point_inconclusive():
    differences = np.array([1.0, 1.9, 0.4, 1.5, -0.2, 1.2])
    alone = _family({"x": differences}, margin=0.1)
    assert 0.01 < alone.loc["x", "p_value"] < 0.05 and alone.loc["x", "verdict"] == "supported"
    with_others = _family({"x": differences, "y": np.zeros(6) + [0, 1, -1, 0, 1, -1],
                           "z": np.zeros(6) + [2, -2, 0, 0, 1, -1]}, margin=0.1)
    assert with_others.loc["x", "p_holm"] == pytest.approx(3 * alone.loc["x", "p_value"])
    assert with_others.loc["x", "verdict"] == "inconclusive"


def test_fewer_than_two_replicates_is_inconclusive_without_interval():
    family = _family({"one": [5.0]}, layers=10)
    assert family.loc["one", "verdict"] == "inconclusive"
    assert family.loc["one", "pairs"] == 1 and family.loc["one", "rows"] == 10
    assert np.isnan(family.loc["one", "ci_low"]) and family.loc["one", "mdd"] == np.inf


def test_correlated_layers_do_not_narrow_the_interval():
    """19 layers per replicate, each with exactly the replicate's difference: the interval is the
    one of the 5 per-replicate means, not of 95 rows."""
    replicate_differences = np.random.default_rng(3).normal(0.5, 1.0, 5)
    rows = _rows({"p": replicate_differences}, layers=19)
    family = paired_family(rows, ["point"], margin=0.1).iloc[0]
    low, high = t_interval(replicate_differences)
    assert (family.pairs, family.rows) == (5, 95)
    assert (family.ci_low, family.ci_high) == pytest.approx((low, high), abs=1e-9)
    naive_low, naive_high = t_interval((rows.a - rows.b).to_numpy())
    assert naive_high - naive_low < 0.5 * (high - low)     # what counting layers would have claimed


def test_uneven_layers_per_replicate_weigh_replicates_equally():
    rows = pd.concat([_rows({"p": [1.0]}, layers=1).assign(replicate=0),
                      _rows({"p": [3.0]}, layers=9).assign(replicate=1)])
    family = paired_family(rows, ["point"], margin=0.1).iloc[0]
    assert family.mean_difference == pytest.approx(2.0)
    assert (family.pairs, family.rows) == (2, 10)


def test_holm_matches_a_hand_computation():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.02, np.nan, 0.04]), [0.04, np.nan, 0.04])   # m = 2
    np.testing.assert_allclose(holm([0.9, 0.6]), [1.0, 1.0])   # 0.6*2 caps at 1, then the running max


@pytest.mark.parametrize("replicates, spread, alpha", [(6, 2.0, 0.05), (10, 1.0, 0.05 / 3), (3, 0.5, 0.05)])
def test_min_detectable_difference_has_the_stated_power_in_simulation(replicates, spread, alpha):
    mdd = min_detectable_difference(replicates, spread, alpha, power=0.8)
    rng = np.random.default_rng(4)
    samples = rng.normal(mdd, spread, size=(20_000, replicates))
    t = samples.mean(1) / (samples.std(1, ddof=1) / np.sqrt(replicates))
    critical = scipy_stats.t.ppf(1 - alpha / 2, replicates - 1)
    power = np.mean(np.abs(t) > critical)
    assert power == pytest.approx(0.8, abs=0.08), (mdd, power)
    assert power == pytest.approx(0.8, abs=0.015)     # in fact much closer (simulation SE 0.003)
    normal = (scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(0.8)) * spread / np.sqrt(replicates)
    assert mdd > normal                                # t quantiles and the noncentral t widen it


def test_family_mdd_uses_alpha_over_the_tested_points():
    family = _family({"a": [1.0, 2.0, 1.5, 0.5], "b": [0.1, -0.2, 0.3, 0.0]})
    spread = np.std([1.0, 2.0, 1.5, 0.5], ddof=1)
    assert family.loc["a", "mdd"] == pytest.approx(min_detectable_difference(4, spread, 0.05 / 2))


def test_sign_flip_p_is_exact():
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(2 / 8)
    assert sign_flip_p(np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(2 / 32)
    assert sign_flip_p(np.array([1.0, -1.0])) == pytest.approx(1.0)


def _check(differences: list[float], margin: float = 0.02) -> dict:
    return seed_check(_rows({"p": differences}), ["point"], ("p",), margin=margin)


def test_seed_check_calls_a_consistent_effect_stable_where_halves_differ_in_power_only():
    # the committed data-size point: every seed positive (+0.032 to +0.070), the 3-seed half
    # [0, 2, 4] inconclusive and the 2-seed half [1, 3] supported under the old split rule
    differences = [0.032, 0.045, 0.070, 0.035, 0.039]
    result = _check(differences)
    assert result["verdict"] == "supported" and result["status"] == "stable"
    assert result["mean_difference"] == pytest.approx(np.mean(differences))
    loo = {entry["left_out"]: entry for entry in result["leave_one_out"]}
    assert sorted(loo) == [0, 1, 2, 3, 4] and all(entry["pairs"] == 4 for entry in loo.values())
    for seed, entry in loo.items():
        kept = np.delete(differences, seed)
        assert entry["mean_difference"] == pytest.approx(kept.mean())
        low, high = t_interval(kept)
        assert (entry["ci_low"], entry["ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert entry["finding"] in ("agrees", "less power")
        assert entry["ci_low"] <= result["mean_difference"] <= entry["ci_high"]
    # without seed 2 (+0.070) the 4 seeds are tighter, still supported; without seed 0 too
    assert loo[2]["verdict"] == "supported" and loo[2]["finding"] == "agrees"
    halves = result["halves"]
    assert halves["seeds"] == [[0, 2, 4], [1, 3]]
    assert halves["mean_differences"] == [pytest.approx(0.047), pytest.approx(0.040)]
    assert halves["difference"] == pytest.approx(0.007) and halves["p_value"] > 0.05
    assert halves["finding"] == "agree"


def test_seed_check_calls_an_effect_carried_by_one_outlier_seed_unstable():
    result = _check([0.001, 0.004, -0.002, 0.003, 0.40])
    assert result["status"] == "unstable"
    loo = {entry["left_out"]: entry for entry in result["leave_one_out"]}
    # without seed 4 the other four are equivalent within 0.02 and their interval excludes the
    # all-seeds mean (+0.081): the effect rests on one seed
    assert loo[4]["verdict"] == "equivalent" and loo[4]["finding"] == "disagrees"
    assert loo[4]["ci_high"] < result["mean_difference"] == pytest.approx(0.0812)
    assert [loo[s]["finding"] for s in range(4)] == ["agrees"] * 4       # all inconclusive, like all seeds
    assert "without seed(s) 4" in result["reason"]


def test_seed_check_calls_halves_with_opposite_signs_unstable():
    # even seeds gain about 1, odd seeds lose about 1: every 4-seed subset is inconclusive with a wide
    # interval (no leave-one-out subset disagrees), but the halves' effects differ far beyond their spread
    result = _check([1.0, -1.0, 1.1, -0.9, 0.9], margin=0.5)
    assert result["verdict"] == "inconclusive"
    assert {entry["finding"] for entry in result["leave_one_out"]} == {"agrees"}
    halves = result["halves"]
    assert halves["mean_differences"] == [pytest.approx(1.0), pytest.approx(-0.95)]
    assert halves["difference"] == pytest.approx(1.95) and halves["p_value"] < 0.01
    assert halves["finding"] == "disagree" and result["status"] == "unstable"


def test_seed_check_halves_that_differ_by_less_than_the_margin_agree():
    # halves at about -4.05 and -3.95 with almost no spread: Welch p < 0.05, but 0.1 is far inside the
    # margin of 1, so the halves agree (a float-rounding draw must not flip a 4-unit effect)
    result = _check([-4.05, -3.95, -4.06, -3.96, -4.04, -3.94], margin=1.0)
    halves = result["halves"]
    assert halves["p_value"] < 0.05 and halves["difference"] == pytest.approx(-0.1)
    assert halves["finding"] == "agree" and result["status"] == "stable"


def test_seed_check_needs_three_seeds():
    result = _check([0.03, 0.05])
    assert result["status"] == "not checkable" and result["leave_one_out"] == []
    assert result["replicates"] == [0, 1] and "2 replicate(s)" in result["reason"]
    three = _check([0.03, 0.05, 0.04])
    assert three["status"] != "not checkable" and len(three["leave_one_out"]) == 3
    assert three["halves"] is None          # a half of one seed has no spread to compare


def test_seed_check_opposite_directional_verdict_disagrees():
    from nnprune.analysis.stats import subset_finding

    assert subset_finding("supported", 0.5, "not supported", -0.9, -0.1) == "disagrees"
    assert subset_finding("supported", 0.5, "inconclusive", -0.1, 0.9) == "less power"
    assert subset_finding("supported", 0.5, "inconclusive", 0.6, 0.9) == "disagrees"
    assert subset_finding("equivalent", 0.1, "supported", 0.05, 0.3) == "compatible"
    assert subset_finding("equivalent", 0.1, "equivalent", 0.3, 0.4) == "agrees"


def test_holds_where_summarises_runs_of_verdicts():
    def percent(value):
        return f"{value:.0%} removed"

    fractions = [0.1, 0.25, 0.5, 0.75]
    assert holds_where(fractions, ["supported", "supported", "not supported", "not supported"], percent) == \
        "supported up to 25% removed, not supported from 50% removed"
    assert holds_where(fractions, ["equivalent", "inconclusive", "inconclusive", "not supported"], percent) == \
        "equivalent at 10% removed, inconclusive from 25% removed to 50% removed, not supported at 75% removed"
    assert holds_where(fractions, ["not supported"] * 4, percent) == \
        "not supported at every point (10% removed to 75% removed)"
    assert holds_where([32], ["inconclusive"]) == "inconclusive at the only point (32)"
