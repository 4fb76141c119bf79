"""The CNN claim along the cut axis and against the from-scratch control
(nnprune/analysis/claims_cuts.py), on synthetic runs.csv files whose answers are known: criteria tie
at the paper's cut and nuclear falls behind at the hardest; in one study the pruned architecture
trained from scratch wins at every cut, in the other pruning wins at the hard cut."""
import json

import numpy as np
import pandas as pd
import pytest

from nnprune.analysis.aggregate import SCRATCH_KIND
from nnprune.analysis.claims import write_claims
from nnprune.analysis.verdicts import INSIDE, OUTSIDE

CUTS = {"macs:0.404": 41.0, "macs:0.75": 75.6, "macs:0.875": 87.6}
# true fine-tuned accuracy per cut and criterion; nuclear 2.1 pp behind taylor at the hardest cut
TRUE = {"macs:0.404": {"nuclear": 91.2, "taylor": 91.3, "l1": 91.25, "random": 91.1},
        "macs:0.75": {"nuclear": 89.3, "taylor": 89.2, "l1": 89.1, "random": 88.4},
        "macs:0.875": {"nuclear": 84.0, "taylor": 86.1, "l1": 85.9, "random": 83.0}}
BASE = 91.6                       # the baselines' true accuracy (5 epochs)
SCRATCH_WINS = {"macs:0.404": 2.0, "macs:0.75": 2.0, "macs:0.875": 2.0}       # scratch minus nuclear
PRUNING_WINS_HARD = {"macs:0.404": 1.6, "macs:0.75": 0.0, "macs:0.875": -3.0}


def study_runs(scratch_gain: dict[str, float] | None, seeds: int = 5) -> pd.DataFrame:
    """runs.csv of the leaderboard's shape: every criterion at every cut fine-tuned at 2e, each
    seed's shared noise in every row of it; then nuclear's architecture trained from scratch for
    7 epochs at each cut (kind "scratch"), `scratch_gain` above the pruned network."""
    rng, scratch_rng = np.random.default_rng(3), np.random.default_rng(4)   # the pruned rows alike either way
    rows, scratch = [], []
    common = {"dataset": "fashion-mnist", "arch": "resnet20", "width": 0.5, "train_size": np.nan,
              "train_epochs": 5, "label_noise": 0.0, "noise_kind": "symmetric"}
    for seed in range(seeds):
        shared = rng.normal(0, 0.3)
        for cut, accs in TRUE.items():
            for criterion, acc in accs.items():
                finetuned = acc + shared + rng.normal(0, 0.05)
                rows.append({**common, "seed": seed, "criterion": criterion,
                             "score_images": 2048 if criterion in ("nuclear", "taylor") else 0, "pruning": cut,
                             "budget": "2e", "acc_base": BASE + shared, "acc_pruned": 10.0,
                             "acc_pruned_bn": acc - 30 + rng.normal(0, 1), "acc_finetuned": finetuned,
                             "macs_reduction": CUTS[cut], "params_reduction": CUTS[cut] - 8, "kind": "pruned"})
                if criterion == "nuclear" and scratch_gain is not None:
                    scratch.append({**common, "train_epochs": 7, "seed": seed, "criterion": "nuclear",
                                    "score_images": 2048, "pruning": cut, "budget": "7e", "acc_base": np.nan,
                                    "acc_finetuned": finetuned + scratch_gain[cut] + scratch_rng.normal(0, 0.05),
                                    "kind": SCRATCH_KIND})
    return pd.DataFrame(rows + scratch)


def claims_of(tmp_path, runs: pd.DataFrame, name: str = "study") -> tuple[dict, str]:
    study = tmp_path / name
    study.mkdir()
    runs.to_csv(study / "runs.csv", index=False)
    write_claims(study, "macs:0.404", 2048)
    claims = {c["name"]: c for c in json.loads((study / "claims.json").read_text())["claims"]}
    return claims["cnn"], (study / "claims.md").read_text()


def per_seed(runs: pd.DataFrame, cut: str) -> pd.Series:
    """nuclear pruned and fine-tuned minus its scratch control, per seed."""
    here = runs[runs.pruning == cut]
    pruned = here[(here.kind == "pruned") & (here.criterion == "nuclear")].set_index("seed").acc_finetuned
    return pruned - here[here.kind == SCRATCH_KIND].set_index("seed").acc_finetuned


def test_one_point_per_cut_with_its_regime_and_holds_where_over_cuts(tmp_path):
    runs = study_runs(SCRATCH_WINS)
    cnn, text = claims_of(tmp_path, runs)
    cuts = cnn["along_cuts"]
    assert cuts["budget"] == "2e" and [p["pruning"] for p in cuts["points"]] == list(CUTS)
    points = {p["pruning"]: p for p in cuts["points"]}
    # the claim's own points at 2e: nuclear against the best other criterion at each cut
    assert [p["comparator"] for p in cuts["points"]] == ["taylor", "taylor", "taylor"]
    assert points["macs:0.875"]["mean_difference"] == pytest.approx(-2.1, abs=0.1)
    assert [p["verdict"] for p in cuts["points"]] == ["equivalent", "equivalent", "not supported"]
    assert cuts["holds_where"] == ("global: equivalent up to macs:0.75 (-75.6% MACs), not supported at "
                                   "macs:0.875 (-87.6% MACs)")
    # regime: the best criterion 0.3 pp below the baselines at the paper's cut, 2.3 and 5.5 pp below at the others
    assert [p["regime"] for p in cuts["points"]] == [INSIDE, OUTSIDE, OUTSIDE]
    pruned = runs[(runs.kind == "pruned") & (runs.budget == "2e")]
    for cut, point in points.items():
        here = pruned[pruned.pruning == cut]
        gap = here.groupby("seed").acc_base.first().mean() - here.groupby("criterion").acc_finetuned.mean().max()
        assert point["gap_pp"] == pytest.approx(gap, abs=1e-9)
        assert point["gap_pp"] == pytest.approx(BASE - max(TRUE[cut].values()), abs=0.15)
    assert cuts["inside"] == ["macs:0.404 (-41.0% MACs)"] and len(cuts["outside"]) == 2
    assert points["macs:0.404"]["primary"] and not points["macs:0.875"]["primary"]
    main = [p for p in cnn["points"] if p["comparison"] == "best other" and p["budget"] == "2e"]
    assert [p["mean_difference"] for p in main] == [p["mean_difference"] for p in cuts["points"]]   # not retested
    assert cnn["verdict"] == "equivalent" and cnn["primary"]["axis_value"] == [0.404, "2e"]
    assert ("*Along the cut axis* (nuclear vs the best other criterion after 2 epochs, one point per cut; the "
            "claim's own points, Holm over all of them): global: equivalent up to macs:0.75") in text


def test_scratch_wins_at_every_cut(tmp_path):
    runs = study_runs(SCRATCH_WINS)
    cnn, text = claims_of(tmp_path, runs)
    family = next(f for f in cnn["secondary"] if f["name"] == "focus vs scratch")
    assert [p["pruning"] for p in family["points"]] == list(CUTS)
    for point in family["points"]:
        differences = per_seed(runs, point["pruning"])
        assert point["pairs"] == 5 and point["mean_difference"] == pytest.approx(differences.mean(), abs=1e-9)
        assert point["mean_difference"] == pytest.approx(-2.0, abs=0.1)
        assert point["verdict"] == "not supported" and point["comparator"] == "scratch"
        assert point["scratch_mean"] - point["pruned_mean"] == pytest.approx(-differences.mean(), abs=1e-9)
    assert [p["p_holm"] >= p["p_value"] for p in family["points"]] == [True] * 3        # Holm over the 3 cuts
    assert family["holds_where"] == ("not supported at every point (macs:0.404 (-41.0% MACs) to "
                                     "macs:0.875 (-87.6% MACs))")
    assert family["in_words"].startswith("No: pruning by `nuclear` beats training its architecture from scratch "
                                         "at no cut. `nuclear` pruned and fine-tuned for 2 epochs minus the same "
                                         "architecture trained from scratch for 7 epochs, paired by seed: scratch "
                                         "wins at every cut: macs:0.404 (-41.0% MACs: -")
    # from scratch at the paper's cut beats the 5-epoch baselines (91.2 + 2.0 against 91.6); not at the others
    first = family["points"][0]
    assert first["scratch_minus_baselines"] == pytest.approx(1.6, abs=0.1)
    assert family["scratch_above_baselines"] == ["macs:0.404"]
    assert family["baselines_words"] == (
        "The pruned architectures trained from scratch for 7 epochs beat the unpruned 5-epoch baselines themselves "
        f"at macs:0.404 ({first['scratch_mean']:.2f}% against {first['baseline_mean']:.2f}%, "
        f"{first['scratch_minus_baselines']:+.2f} pp): the 5-epoch baselines are short of convergence, so part of "
        "every drop measured from them is their short recipe, not pruning.")
    assert "### cnn, secondary: focus vs scratch" in text
    assert f"*In plain words.* {family['in_words']} {family['baselines_words']}" in text
    assert (f"| macs:0.404 (-41.0% MACs) | {first['pruned_mean']:.2f} | {first['scratch_mean']:.2f} | "
            f"{first['baseline_mean']:.2f} | {first['scratch_minus_baselines']:+.2f} | 5 |") in text


def test_pruning_wins_at_the_hard_cut(tmp_path):
    runs = study_runs(PRUNING_WINS_HARD)
    cnn, text = claims_of(tmp_path, runs)
    family = next(f for f in cnn["secondary"] if f["name"] == "focus vs scratch")
    points = {p["pruning"]: p for p in family["points"]}
    for cut, gain in PRUNING_WINS_HARD.items():
        assert points[cut]["mean_difference"] == pytest.approx(per_seed(runs, cut).mean(), abs=1e-9)
        assert points[cut]["mean_difference"] == pytest.approx(-gain, abs=0.1)
    assert [points[c]["verdict"] for c in CUTS] == ["not supported", "equivalent", "supported"]
    assert family["holds_where"] == ("not supported at macs:0.404 (-41.0% MACs), equivalent at macs:0.75 "
                                     "(-75.6% MACs), supported at macs:0.875 (-87.6% MACs)")
    hard = points["macs:0.875"]
    assert family["in_words"] == (
        "Pruning by `nuclear` beats training its architecture from scratch at macs:0.875 only. `nuclear` pruned and "
        "fine-tuned for 2 epochs minus the same architecture trained from scratch for 7 epochs, paired by seed: "
        f"pruning wins at macs:0.875 (-87.6% MACs: {hard['mean_difference']:+.2f} pp, 95% CI {hard['ci_low']:+.2f} "
        f"to {hard['ci_high']:+.2f}); scratch wins at macs:0.404 (-41.0% MACs: "
        f"{points['macs:0.404']['mean_difference']:+.2f} pp, 95% CI {points['macs:0.404']['ci_low']:+.2f} to "
        f"{points['macs:0.404']['ci_high']:+.2f}); the two are equivalent (within ±1 pp) at macs:0.75 (-75.6% MACs: "
        f"{points['macs:0.75']['mean_difference']:+.2f} pp, 95% CI {points['macs:0.75']['ci_low']:+.2f} to "
        f"{points['macs:0.75']['ci_high']:+.2f}).")
    # 91.2 + 1.6 = 92.8 against 91.6 at the paper's cut: the scratch network beats the baselines there only
    assert family["scratch_above_baselines"] == ["macs:0.404"]
    assert family["in_words"] in text


def test_scratch_rows_change_nothing_but_the_scratch_family(tmp_path):
    """The same pruned runs with and without from-scratch rows (and without the kind column, as a
    runs.csv written before it): claims.json differs only by the "focus vs scratch" family."""
    with_scratch, _ = claims_of(tmp_path, study_runs(SCRATCH_WINS), "with")
    pruned_only = study_runs(None).drop(columns="kind")
    without, _ = claims_of(tmp_path, pruned_only, "without")
    assert [f["name"] for f in with_scratch["secondary"]] == ["focus vs scratch"] and without["secondary"] == []
    with_scratch["secondary"] = []
    assert json.dumps(with_scratch, sort_keys=True) == json.dumps(without, sort_keys=True)


def test_one_cut_has_no_cut_axis_in_claims_json(tmp_path):
    """A study fine-tuned at one cut (the default study) keeps the claims.json it had: no along_cuts key."""
    runs = study_runs(None)
    cnn, text = claims_of(tmp_path, runs[runs.pruning == "macs:0.404"])
    assert "along_cuts" not in cnn and "Along the cut axis" not in text


def test_where_the_criteria_part_ways_is_the_first_cut_with_a_criterion_below_the_leader(tmp_path):
    cnn, text = claims_of(tmp_path, study_runs(SCRATCH_WINS))
    parting = cnn["along_cuts"]["parting"]
    cuts = {c["pruning"]: c for c in parting["cuts"]}
    # at the paper's cut all four are within 0.2 pp (equivalent to the leader, taylor): one first place
    assert cuts["macs:0.404"]["first"] == ["l1", "nuclear", "random", "taylor"] and not cuts["macs:0.404"]["below"]
    # at -75% random is 0.9 pp below nuclear with a seed spread of 0.07 pp: its interval leaves the margin
    assert cuts["macs:0.75"]["below"] == {"random": 2}
    assert cuts["macs:0.75"]["versus_random"]["nuclear"]["verdict"] == "supported"
    # at -88% taylor and l1 lead; nuclear (2.1 pp behind) and random (3.1 pp behind) fall to ranks 2 and 3
    assert cuts["macs:0.875"]["first"] == ["l1", "taylor"]
    assert cuts["macs:0.875"]["below"] == {"nuclear": 2, "random": 3}
    assert parting["first_parting"] == "macs:0.75"
    # nuclear against each criterion, paired by seed: 2.1 pp behind taylor at -88% (a loss), 0.1 pp at -41%
    versus = cuts["macs:0.875"]["focus_versus"]["taylor"]
    assert versus["mean_difference"] == pytest.approx(-2.1, abs=0.1) and versus["verdict"] == "not supported"
    assert cuts["macs:0.404"]["focus_versus"]["taylor"]["verdict"] == "equivalent"
    assert sorted(cuts["macs:0.75"]["focus_versus"]) == ["l1", "random", "taylor"]
    assert parting["in_words"].startswith("The criteria part ways first at macs:0.75 (-75.6% MACs): l1, nuclear, "
                                          "taylor share the first place; below it by the claims' rule: random (rank 2)")
    assert "*Where the criteria part ways*" in text
    assert "| macs:0.875 (-87.6% MACs) | 4 | l1, taylor | nuclear (2), random (3) |" in text


def test_criteria_that_never_separate_are_said_not_to_part_ways_up_to_the_hardest_cut(tmp_path):
    runs = study_runs(SCRATCH_WINS)
    pruned = runs.kind == "pruned"
    rng = np.random.default_rng(5)
    # every criterion as accurate as nuclear at every cut, up to seed noise of 0.5 pp
    nuclear = runs[pruned & (runs.criterion == "nuclear")].set_index(["seed", "pruning"]).acc_finetuned
    keys = list(zip(runs.seed[pruned], runs.pruning[pruned]))
    runs.loc[pruned, "acc_finetuned"] = nuclear.loc[keys].to_numpy() + rng.normal(0, 0.5, len(keys))
    parting = claims_of(tmp_path, runs)[0]["along_cuts"]["parting"]
    assert parting["first_parting"] is None
    assert all(len(c["first"]) == 4 and not c["below"] for c in parting["cuts"])
    assert parting["in_words"].startswith("The criteria do not part ways up to macs:0.875 (-87.6% MACs): at every "
                                          "fine-tuned cut all 4 criteria share the first place")
    assert "No criterion is better than random (supported) at any cut" in parting["in_words"]
