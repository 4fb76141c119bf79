import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats as scipy_stats

from nnprune.analysis.claims import CLAIM_NAMES, cnn_input, label_noise_input, toy_input
from nnprune.analysis.verdicts import ClaimSettings, assess
from nnprune.models import build
from nnprune.pruning.layout import model_layout
from nnprune.pruning.removal import apply_removal
from nnprune.pruning.scoring import score_model
from nnprune.toy import TOY_DATASETS, global_keep, pruned_forward

REPO = Path(__file__).resolve().parents[1]
FRACTIONS = (0.1, 0.25, 0.5, 0.75)


def _toy(seeds: int = 8, fractions=FRACTIONS, nuclear_high: float = 60.0, seed: int = 0) -> pd.DataFrame:
    """toy.csv rows: nuclear changes ~1% of the grid up to 25% removed and `nuclear_high` % beyond;
    nuclear-stacked is better still (but is no rival); l1 and random grow with the fraction."""
    rng = np.random.default_rng(seed)
    change = {"nuclear": lambda f: 1.0 if f <= 0.25 else nuclear_high, "nuclear-stacked": lambda f: 0.2,
              "l1": lambda f: 5 + 10 * f, "random": lambda f: 6 + 15 * f}
    rows = []
    for s in range(seeds):
        for dataset in ("moons", "circles", "spiral"):
            for fraction in fractions:
                for criterion, curve in change.items():
                    value = max(0.0, curve(fraction) + rng.normal(0, 0.5))
                    rows.append({"dataset": dataset, "seed": s, "criterion": criterion, "allocation": "global",
                                 "fraction": fraction, "input_noise": 0.0, "acc_base": 99.5,
                                 "acc_pruned": 100 - value / 2, "boundary_change": value})
    return pd.DataFrame(rows)


def _points(claim, comparison="best other"):
    return {p["axis_value"]: p for p in claim.points if p["comparison"] == comparison}


def test_toy_claim_is_tested_at_every_fraction_with_the_seed_as_replicate():
    toy = _toy()
    claim = assess(toy_input(toy), ClaimSettings())
    points = _points(claim)
    assert list(points) == list(FRACTIONS)
    assert {p["comparator"] for p in points.values()} == {"l1"}          # nuclear-stacked is no rival
    assert {p["pairs"] for p in points.values()} == {8}                  # seeds, not seeds x datasets
    assert {p["rows"] for p in points.values()} == {24}
    assert claim.holds_where == "supported up to 25% removed, not supported from 50% removed"
    # the primary statistic by hand: per seed, the mean over datasets of l1's change - nuclear's
    at = toy[toy.fraction == 0.25].pivot_table(index=["seed", "dataset"], columns="criterion", values="boundary_change")
    per_seed = (at["l1"] - at["nuclear"]).groupby("seed").mean()
    primary = points[0.25]
    assert primary["primary"] and primary["mean_difference"] == pytest.approx(per_seed.mean())
    half = scipy_stats.t.ppf(0.975, 7) * per_seed.std(ddof=1) / np.sqrt(8)
    assert (primary["ci_low"], primary["ci_high"]) == pytest.approx((per_seed.mean() - half, per_seed.mean() + half))
    assert claim.verdict == "supported"
    check = claim.seed_check
    assert check["status"] == "stable" and check["halves"]["seeds"] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert [entry["left_out"] for entry in check["leave_one_out"]] == list(range(8))
    # each leave-one-seed-out subset's mean is the mean of the other 7 seeds' per-seed differences
    for entry in check["leave_one_out"]:
        assert entry["mean_difference"] == pytest.approx(per_seed.drop(entry["left_out"]).mean())
        assert entry["pairs"] == 7
    # Holm over the 4 points of each comparison, and the MDD at alpha/4
    assert all(p["p_holm"] >= p["p_value"] for p in claim.points)
    assert {p["comparator"] for p in _points(claim, "random").values()} == {"random"}
    assert [r["criterion"] for r in claim.ranking][0] == "nuclear-stacked"   # best against random at 25%


def test_primary_fraction_falls_back_to_the_nearest_tested_one_and_says_so():
    claim = assess(toy_input(_toy()), ClaimSettings())          # default toy_fraction 0.333
    assert claim.primary["axis_value"] == 0.25 and claim.primary["fallback"] is True
    assert "0.333" in claim.primary["reason"]
    exact = assess(toy_input(_toy(fractions=(0.1, 0.333, 0.5))), ClaimSettings())
    assert exact.primary == {"stratum": None, "axis_value": 0.333, "configured": 0.333, "fallback": False,
                             "reason": ""}
    assert [p["axis_value"] for p in exact.points if p["primary"]] == [0.333, 0.333]   # best other and random


def test_equal_criteria_are_equivalent_not_inconclusive():
    toy = _toy()
    twin = toy[toy.criterion == "nuclear"].assign(criterion="l2")
    twin["boundary_change"] += np.random.default_rng(1).normal(0, 0.2, len(twin))
    claim = assess(toy_input(pd.concat([toy, twin])), ClaimSettings())
    low = [p for p in _points(claim).values() if p["axis_value"] <= 0.25]
    assert [(p["comparator"], p["verdict"]) for p in low] == [("l2", "equivalent")] * 2


def _runs(kinds=("symmetric", "pairwise"), seeds=range(4)) -> pd.DataFrame:
    """runs.csv rows: clean baselines at two pruning levels, noisy ones at the main level."""
    rng = np.random.default_rng(2)
    drop = {"nuclear": 3.0, "taylor": 2.0, "l1": 6.0, "random": 8.0}
    settings = [(0.0, "symmetric", level) for level in ("macs:0.3", "macs:0.5")]
    settings += [(noise, kind, "macs:0.3") for kind in kinds for noise in (0.2, 0.4)]
    rows = []
    for noise, kind, pruning in settings:
        for seed in seeds:
            base = 85 - 20 * noise + rng.normal(0, 0.3)
            for criterion, loss in drop.items():
                rows.append({"dataset": "fashion-mnist", "arch": "resnet20", "train_size": 1000,
                             "label_noise": noise, "noise_kind": kind, "seed": seed, "criterion": criterion,
                             "score_images": 256 if criterion in ("nuclear", "taylor") else 0,
                             "pruning": pruning, "macs_reduction": 30.5 if pruning == "macs:0.3" else 50.2,
                             "budget": "3e",
                             "acc_base": base, "acc_pruned": 10.0, "acc_pruned_bn": base - 3 * loss,
                             "acc_finetuned": base - loss * (1 + noise) + rng.normal(0, 0.2)})
    return pd.DataFrame(rows)


def test_label_noise_points_per_kind_and_level():
    claim = assess(label_noise_input(_runs(), "macs:0.3", 256), ClaimSettings())
    keys = [(p["stratum"], p["axis_value"]) for p in claim.points if p["comparison"] == "best other"]
    assert keys == [("pairwise", 0.2), ("pairwise", 0.4), ("symmetric", 0.2), ("symmetric", 0.4)]
    assert claim.primary["stratum"] == "symmetric" and claim.primary["axis_value"] == 0.4   # defaults
    assert claim.holds_where.startswith("pairwise: not supported at every point")
    assert all(p["pairs"] == 4 and p["comparator"] == "taylor" for p in claim.points if p["comparison"] == "best other")
    without_kind = assess(label_noise_input(_runs(kinds=("symmetric",)).drop(columns="noise_kind"), "macs:0.3", 256),
                          ClaimSettings())
    assert {p["stratum"] for p in without_kind.points} == {None}


def test_cnn_primary_falls_back_to_the_level_nearest_in_measured_macs():
    runs = _runs()
    runs.loc[runs.pruning == "macs:0.5", "acc_finetuned"] -= 5
    settings = ClaimSettings.from_mapping({"primary": {"pruning": "macs:0.404"}})
    claim = assess(cnn_input(runs, "macs:0.3", 256, "macs:0.404"), settings)
    # BN-recalibrated accuracy is the first point of each level's budget axis
    assert [(p["stratum"], p["axis_value"]) for p in claim.points if p["comparison"] == "best other"] == [
        ("global", (0.3, "bn")), ("global", (0.3, "3e")), ("global", (0.5, "bn")), ("global", (0.5, "3e"))]
    assert claim.primary["axis_value"] == (0.5, "3e") and claim.primary["fallback"]   # 9.6 points away vs 10.4
    default = assess(cnn_input(runs, "macs:0.3", 256), ClaimSettings())
    assert default.primary["axis_value"] == (0.3, "3e") and not default.primary["fallback"]
    assert default.secondary == []          # BN recalibration is on the budget axis, not a secondary family
    assert default.across_strata == {}                       # one allocation only


def test_cnn_allocations_are_strata_and_the_report_says_whether_the_verdict_survives():
    """Global and uniform allocation at one MACs target: two strata at the same level. Nuclear
    loses to taylor under global and beats it under uniform, so the verdict does not survive."""
    runs = _runs()
    clean = runs[(runs.label_noise == 0) & (runs.pruning == "macs:0.3")]
    uniform = clean.assign(pruning="uniform-macs:0.3", macs_reduction=33.0)
    uniform.loc[uniform.criterion == "nuclear", "acc_finetuned"] += 3.0
    both = pd.concat([runs, uniform], ignore_index=True)
    claim = assess(cnn_input(both, "macs:0.3", 256, "macs:0.3"), ClaimSettings())
    main = {(p["stratum"], p["axis_value"]): p["verdict"] for p in claim.points if p["comparison"] == "best other"}
    assert main[("global", (0.3, "3e"))] == "not supported" and main[("uniform", (0.3, "3e"))] == "supported", main
    assert claim.primary["stratum"] == "global" and claim.primary["axis_value"] == (0.3, "3e")
    check = claim.across_strata
    assert check["name"] == "allocation" and not check["survives"]
    fine_tuned = next(entry for entry in check["values"] if entry["axis_value"] == (0.3, "3e"))
    assert fine_tuned["verdicts"] == {"global": "not supported", "uniform": "supported"}
    from nnprune.analysis.claims_render import across_strata_line
    assert "does **not** survive a change of allocation" in across_strata_line(check)
    # the same data with nuclear unchanged under uniform: the verdict survives
    same = assess(cnn_input(pd.concat([runs, clean.assign(pruning="uniform-macs:0.3")], ignore_index=True),
                            "macs:0.3", 256), ClaimSettings())
    assert same.across_strata["survives"]


def test_label_noise_pools_every_noisy_baseline_and_uses_bn_accuracy_without_fine_tuning():
    """Noisy runs that were not fine-tuned: the metric falls back to acc_pruned_bn. The pooled
    secondary point has one pair per noisy baseline (2 levels x 2 kinds x 4 seeds = 16)."""
    runs = _runs()
    runs.loc[runs.label_noise > 0, "acc_finetuned"] = np.nan
    claim = assess(label_noise_input(runs, "macs:0.3", 256), ClaimSettings())
    assert "acc_pruned_bn" in claim.metric
    pooled = next(extra for extra in claim.secondary if extra["name"] == "all noisy baselines")
    assert [p["pairs"] for p in pooled["points"]] == [16]
    per_point = [p["pairs"] for p in claim.points if p["comparison"] == "best other"]
    assert per_point == [4, 4, 4, 4]


def test_settings_reject_unknown_keys_and_match_the_schema_defaults():
    from nnprune.errors import UserError

    with pytest.raises(UserError, match="primary.fraction"):
        ClaimSettings.from_mapping({"primary": {"fraction": 0.3}})
    schema = yaml.safe_load((REPO / "nnprune/plan/schemas/config.schema.yaml").read_text())["properties"]["claims"]
    fields = schema["properties"]
    defaults = ClaimSettings()
    assert fields["alpha"]["default"] == defaults.alpha and fields["power"]["default"] == defaults.power
    assert {k: v["default"] for k, v in fields["margins"]["properties"].items()} == defaults.margins
    assert {k: v["default"] for k, v in fields["primary"]["properties"].items()} == defaults.primary
    assert fields["regime_gap_pp"]["default"] == defaults.regime_gap_pp


def test_workflow_declares_one_forest_plot_per_claim():
    """The claims rule declares a forest plot for each of grid.CLAIM_FORESTS, the claims that
    write_forests draws, in one order."""
    from nnprune.plan.grid import CLAIM_FORESTS

    assert CLAIM_FORESTS == CLAIM_NAMES == ("toy", "data_size", "label_noise", "cnn")
    rule = (REPO / "workflow/rules/aggregate.smk").read_text().split("rule claims:")[1]
    assert 'claims_forest_{c}.png"' in rule and "for c in grid.CLAIM_FORESTS" in rule


def _check_forest(study: Path, name: str, claim: dict | None, again: Path) -> None:
    """claims_forest_{name}.png is the forest plot of `claim` from claims.json (the same pixels when drawn
    again), and that plot draws each point's mean difference on its row, labelled with its comparator."""
    import matplotlib.image

    from nnprune.analysis.claims_render import forest
    from nnprune.analysis.figures import save_figure
    from nnprune.analysis.verdicts import Claim

    figure = forest(Claim(**claim) if claim else None, name)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    points = [p for p in claim["points"] if p["comparison"] in ("best other", "random")] if claim else []
    if not points:
        assert texts == [f"{name}: not tested by this study"]
    else:
        drawn = dict(sorted((-int(line.get_ydata()[0]), float(line.get_xdata()[0])) for line in figure.axes[0].lines
                            if line.get_marker() in ("*", "o") and len(line.get_xdata()) == 1))
        assert list(drawn) == list(range(len(points)))            # one marker per row, row i = point i
        assert list(drawn.values()) == pytest.approx([p["mean_difference"] for p in points])
        labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
        assert [f"vs {p['comparator']}" in label for label, p in zip(labels, points)] == [True] * len(points)
        assert sum(p["primary"] for p in points) == sum("[primary" in label for label in labels) >= 1
    save_figure(figure, again, name)
    written = matplotlib.image.imread(study / f"claims_forest_{name}.png")
    assert np.array_equal(written, matplotlib.image.imread(again / f"{name}.png")), name
    assert (study / f"claims_forest_{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_claims_cli_writes_points_tables_and_forests(tmp_path):
    from nnprune.pipeline.cli import main

    study = tmp_path / "study"
    (study / "toy").mkdir(parents=True)
    _toy().to_csv(study / "toy" / "toy.csv", index=False)
    _runs().to_csv(study / "runs.csv", index=False)
    settings = json.dumps({"alpha": 0.05, "primary": {"toy_fraction": 0.333}, "margins": {"boundary_pp": 2.0}})
    assert main(["claims", "--study-dir", str(study), "--main-pruning", "macs:0.3", "--main-score-images", "256",
                 "--settings", settings]) == 0
    claims = {c["name"]: c for c in json.loads((study / "claims.json").read_text())["claims"]}
    assert list(claims) == ["toy", "label_noise", "cnn"]
    point = claims["toy"]["points"][0]
    for key in ("axis_value", "comparator", "pairs", "mean_difference", "ci_low", "ci_high", "margin", "p_holm",
                "verdict", "mdd", "primary"):
        assert key in point, key
    for name in CLAIM_NAMES:      # data_size is not in this study: its figure says so
        _check_forest(study, name, claims.get(name), tmp_path / "again")
    text = (study / "claims.md").read_text()
    assert "supported up to 25% removed, not supported from 50% removed" in text
    assert "**Fallback:** configured 0.333 is not among this claim's tested points" in text
    assert main(["claims", "--study-dir", str(study), "--main-pruning", "macs:0.3", "--main-score-images", "256",
                 "--settings", "{not json"]) == 2


def _limits_of(study: Path, config_name: str) -> list[str]:
    """The limits section of claims.md written by `nnprune claims --scale` from config/<config_name>.yaml."""
    from nnprune.pipeline.cli import main
    from nnprune.plan import jobspecs

    config = yaml.safe_load((REPO / "config" / f"{config_name}.yaml").read_text())
    assert main(["claims", "--study-dir", str(study), "--main-pruning", "macs:0.3", "--main-score-images", "256",
                 "--scale", jobspecs.claims_scale(config)]) == 0
    section = (study / "claims.md").read_text().split("## What this scale cannot show\n\n")[1]
    limits = [line[2:] for line in section.splitlines() if line.startswith("- ")]
    assert limits == json.loads((study / "claims.json").read_text())["limits"]
    return limits


def test_claims_limits_state_each_configs_own_scale(tmp_path):
    """The same results under config.yaml and smoke.yaml: the limits name each config's dataset,
    network and width, training images and epochs, seeds, budgets and toy width."""
    study = tmp_path / "study"
    (study / "toy").mkdir(parents=True)
    _toy().to_csv(study / "toy" / "toy.csv", index=False)
    _runs().to_csv(study / "runs.csv", index=False)
    smoke = _limits_of(study, "smoke")
    assert smoke[0].startswith("Absolute CIFAR-10 / ImageNet accuracies: this study trains on fashion-mnist: "
                               "resnet20 at width 0.25, each baseline trained on 3,000 training images for 8 epochs")
    assert smoke[1] == ("The toy MLP is scaled down to width 0.1 (2-100-100-100-C, against the paper's "
                        "2-1000-1000-1000-C), trained for 150 Adam steps, 3 seeds per dataset.")
    assert smoke[2].startswith("1 seed of the clean baselines (0); each noisy baseline (label level and kind) "
                               "has 1 seed:")
    assert smoke[3].startswith("Fine-tuning budgets: 5 batches (`5b`), 2 epochs (`2e`), each a standalone")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    grid, seeds = config["grid"], config["seeds"]
    default = _limits_of(study, "config")
    assert (f"resnet20 at width {config['archs']['resnet20']['width']:g}, each clean baseline trained on all "
            f"training images but the validation split for {config['train']['epochs']} epochs, each noisy one on "
            f"{grid['noise_train_size']:,} training images for {grid['noise_train']['epochs']} epochs") in default[0]
    assert default[1].startswith(f"The toy MLP has the paper's size (width {config['toy']['width']:g}, "
                                 "2-1000-1000-1000-C)")
    assert default[2].startswith(f"{len(seeds)} seeds of the clean baselines ({', '.join(map(str, seeds))}); "
                                 f"each noisy baseline (label level and kind) has {len(grid['noise_seeds'])} seeds")
    assert all(f"(`{budget}`)" in default[3] for budget in config["finetune"]["budgets"])
    assert default != smoke
    assert "scaled down" not in " ".join(default)
    study_without = tmp_path / "bare"
    study_without.mkdir()
    _runs().to_csv(study_without / "runs.csv", index=False)
    from nnprune.pipeline.cli import main

    assert main(["claims", "--study-dir", str(study_without), "--main-pruning", "macs:0.3",
                 "--main-score-images", "256"]) == 0         # no --scale: a limit that says the settings are absent
    assert "were not passed to `nnprune claims` (--scale)" in (study_without / "claims.md").read_text()
    assert main(["claims", "--study-dir", str(study_without), "--main-pruning", "macs:0.3",
                 "--main-score-images", "256", "--scale", '{"toy_width": "wide"}']) == 2


def _recompute(frame: pd.DataFrame, first: str, second: str, keys: list[str], value: str) -> pd.Series:
    """Per seed: the mean over its matched rows of value(first) - value(second)."""
    table = frame[frame.criterion.isin([first, second])].pivot_table(index=["seed", *keys], columns="criterion",
                                                                     values=value)
    return (table[first] - table[second]).dropna().groupby("seed").mean()


def _check(point: dict, per_seed: pd.Series) -> None:
    assert point["pairs"] == len(per_seed)
    assert point["mean_difference"] == pytest.approx(per_seed.mean(), abs=1e-9)
    if len(per_seed) > 1:
        low, high = scipy_stats.t.interval(0.95, len(per_seed) - 1, per_seed.mean(), scipy_stats.sem(per_seed))
        assert (point["ci_low"], point["ci_high"]) == pytest.approx((low, high), abs=1e-9)


def test_committed_default_claims_match_their_raw_results():
    """Every primary point of results/default/claims.json, recomputed from runs.csv, stability.csv
    and toy/toy.csv with code independent of nnprune.analysis.stats."""
    study = REPO / "results" / "default"
    claims = {c["name"]: c for c in json.loads((study / "claims.json").read_text())["claims"]}
    primary = {name: next(p for p in c["points"] if p["primary"] and p["comparison"] == "best other")
               for name, c in claims.items() if c["points"]}
    assert set(primary) == {"toy", "data_size", "label_noise", "cnn"}
    toy = pd.read_csv(study / "toy" / "toy.csv").query("allocation == 'global' and input_noise == 0")
    toy = toy[toy.fraction == primary["toy"]["axis_value"]]
    _check(primary["toy"], -_recompute(toy, "nuclear", primary["toy"]["comparator"], ["dataset"], "boundary_change"))
    stability = pd.read_csv(study / "stability.csv").query("label_noise == 0")
    stability = stability[stability.score_images == primary["data_size"]["axis_value"]]
    _check(primary["data_size"], _recompute(stability, "nuclear", primary["data_size"]["comparator"],
                                            ["layer"], "spearman"))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    main_pruning, main_size = config["grid"]["main_pruning"], config["grid"]["main_score_images"]
    every_budget = pd.read_csv(study / "runs.csv")
    largest = config["finetune"]["budgets"][-1]
    runs = every_budget[every_budget.budget.astype(str).isin(["0", largest])]     # one row per run
    noisy = runs[(runs.pruning == main_pruning) & runs.score_images.isin([0, main_size])
                 & (runs.label_noise == primary["label_noise"]["axis_value"])
                 & (runs.noise_kind == primary["label_noise"]["stratum"])]
    # the metric the claim states: fine-tuned accuracy where noisy runs were fine-tuned, else BN-recalibrated
    metric = "acc_finetuned" if noisy.acc_finetuned.notna().all() else "acc_pruned_bn"
    assert metric in claims["label_noise"]["metric"]
    noisy = noisy.assign(kept=noisy[metric] - noisy.acc_base)
    _check(primary["label_noise"], _recompute(noisy, "nuclear", primary["label_noise"]["comparator"], [], "kept"))
    # CNN: the primary point is a MACs target at one allocation (macs:<f> is the global one) after
    # the largest fine-tuning budget; every budget's point and the BN-recalibrated one recomputed
    assert (primary["cnn"]["stratum"], primary["cnn"]["axis_value"]) == ("global", [0.404, largest])
    clean = every_budget[(every_budget.label_noise == 0) & every_budget.score_images.isin([0, main_size])
                         & (every_budget.pruning == "macs:0.404")]
    _check(primary["cnn"], _recompute(clean[clean.budget == largest], "nuclear", primary["cnn"]["comparator"], [],
                                      "acc_finetuned"))
    points = {(p["stratum"], p["budget"]): p for p in claims["cnn"]["points"] if p["comparison"] == "best other"}
    assert {budget for stratum, budget in points if stratum == "global"} == {"bn", *config["finetune"]["budgets"]}
    for budget in config["finetune"]["budgets"]:
        point = points[("global", budget)]
        _check(point, _recompute(clean[clean.budget == budget], "nuclear", point["comparator"], [], "acc_finetuned"))
        tuned = clean[clean.budget == budget]
        base = tuned.groupby("seed").acc_base.first().mean()
        best = tuned.groupby(["criterion", "seed"]).acc_finetuned.mean().groupby("criterion").mean().max()
        assert point["gap_pp"] == pytest.approx(base - best, abs=1e-9)
        assert point["regime"] == ("inside the paper's regime" if base - best <= config["claims"]["regime_gap_pp"]
                                   else "outside the paper's regime")
    once = clean[clean.budget == largest]
    _check(points[("global", "bn")], _recompute(once, "nuclear", points[("global", "bn")]["comparator"], [],
                                                "acc_pruned_bn"))
    for name, point in primary.items():      # the comparator is the best other criterion there
        assert point["comparator"] not in ("nuclear", "nuclear-stacked"), name
    _check_label_noise_regime(claims["label_noise"], noisy, metric, config["claims"]["regime_gap_pp"])
    _check_data_size_accuracy(claims["data_size"], runs, main_pruning, main_size)
    for name, claim in claims.items():       # every claim's seed check by the current rule
        check = claim["seed_check"]
        assert check["status"] in ("stable", "unstable", "not checkable"), name
        assert claim["verdict"] == ("unstable" if check["status"] == "unstable" else primary[name]["verdict"]), name
        if check["status"] != "not checkable":
            for entry in check["leave_one_out"]:
                assert entry["pairs"] == primary[name]["pairs"] - 1, name
            per_seed = [entry["mean_difference"] for entry in check["leave_one_out"]]
            # the mean of the leave-one-out means is the all-seeds mean (each seed left out once)
            assert np.mean(per_seed) == pytest.approx(primary[name]["mean_difference"], abs=1e-9), name


def _check_label_noise_regime(claim: dict, noisy: pd.DataFrame, metric: str, threshold: float) -> None:
    """The primary label-noise point's regime check: the best criterion's drop from its noisy
    baselines; and, when the primary reading is fine-tuned, the BN-recalibrated secondary family."""
    point = next(p for p in claim["points"] if p["primary"] and p["comparison"] == "best other")
    drops = (noisy.acc_base - noisy[metric]).groupby([noisy.criterion, noisy.seed]).mean().groupby("criterion").mean()
    assert point["gap_pp"] == pytest.approx(drops.min(), abs=1e-9)
    assert point["best_criterion"] == drops.idxmin()
    inside = drops.min() <= threshold
    assert point["regime"] == ("inside the paper's regime" if inside else "outside the paper's regime")
    if metric == "acc_finetuned":
        family = next(f for f in claim["secondary"] if f["name"] == "before fine-tuning (BN recalibrated)")
        here = next(p for p in family["points"] if p["stratum"] == point["stratum"])
        _check(here, _recompute(noisy.assign(kept=noisy.acc_pruned_bn - noisy.acc_base), "nuclear",
                                here["comparator"], [], "kept"))
        assert here["regime"] == "outside the paper's regime"
        assert len(noisy.seed.unique()) >= 5 and point["pairs"] >= 5


def _check_data_size_accuracy(claim: dict, runs: pd.DataFrame, main_pruning: str, main_size: int) -> None:
    """The data-size claim's pruned-accuracy reading: per criterion pruned from fewer images, its
    fine-tuned accuracy minus the one pruned from main_size images, per seed, against 0."""
    level = runs[(runs.pruning == main_pruning) & (runs.label_noise == 0) & (runs.score_images > 0)]
    smaller = sorted(set(level.score_images) - {main_size})
    family = next((f for f in claim["secondary"] if f["name"] == "pruned accuracy"), None)
    if not smaller:
        assert family is None
        return
    records = {(r["criterion"], r["axis_value"]): r for r in family["consistency"]}
    table = level.pivot_table(index=["criterion", "seed"], columns="score_images", values="acc_finetuned")
    checked = 0
    for size in smaller:
        difference = (table[size] - table[main_size]).dropna()
        for criterion, per_seed in difference.groupby("criterion"):
            record = records[(criterion, size)]
            _check(record, per_seed.droplevel("criterion"))
            within = record["ci_low"] >= -record["margin"] and record["ci_high"] <= record["margin"]
            assert (record["reading"] == "consistent") == within
            checked += 1
    assert checked == len(records) >= 1


@pytest.mark.parametrize("name", list(TOY_DATASETS))
def test_toy_datasets_shapes_and_balance(name):
    make, classes = TOY_DATASETS[name]
    points, labels = make(400, torch.Generator().manual_seed(0))
    assert points.shape == (400, 2)
    assert torch.bincount(labels).tolist() == [400 // classes] * classes
    again, _ = make(400, torch.Generator().manual_seed(0))
    assert torch.equal(points, again)


def test_global_keep_removes_exact_fraction_and_selection_equals_physical_removal():
    torch.manual_seed(0)
    model = build("mlp", num_classes=3, in_channels=2, hidden=(20, 30, 10)).eval()
    layout = model_layout(model, (2,))
    assert layout.layers == ["features.0", "features.2", "features.4"]
    x = torch.randn(64, 2)
    scores, _ = score_model(model, layout.layers, "nuclear", batches=[(x, torch.zeros(64).long())],
                            limit=64, feature_point="relu")
    # nuclear of a 1x1 map is |activation|: the mean ReLU output over the samples.
    activation = torch.relu(model.features[0](x))
    torch.testing.assert_close(scores["features.0"], activation.abs().mean(0))
    keep = global_keep(layout, scores, 0.5)
    assert sum(len(k) for k in keep.values()) == 60 - 30
    expected = pruned_forward(model, keep)(x)
    removed = {layer: sorted(set(range(len(scores[layer]))) - set(keep[layer].tolist()))
               for layer in layout.layers}
    apply_removal(model, (2,), removed)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def _budget_runs(seeds=range(6), base=92.0, bn_gap=(30.0, 20.0, 35.0), tuned=None) -> pd.DataFrame:
    """runs.csv rows of clean baselines pruned at macs:0.404 and fine-tuned at budgets 30b and 3e:
    before fine-tuning and at 30 batches the criteria differ by pp and all lie far below the
    baselines (outside the paper's regime); at 3 epochs they all recover to within 0.3 pp of the
    baselines and tie (inside it). `tuned` overrides {budget: {criterion: loss in pp}}."""
    rng = np.random.default_rng(5)
    loss = tuned or {"30b": {"nuclear": 9.0, "taylor": 5.0, "random": 12.0},
                     "3e": {"nuclear": 0.30, "taylor": 0.30, "random": 0.9}}
    rows = []
    for seed in seeds:
        acc_base = base + rng.normal(0, 0.2)
        for index, criterion in enumerate(("nuclear", "taylor", "random")):
            row = {"dataset": "fashion-mnist", "arch": "resnet20", "width": 0.5, "train_size": None,
                   "label_noise": 0.0, "noise_kind": "symmetric", "seed": seed, "criterion": criterion,
                   "score_images": 2048 if criterion != "random" else 0, "pruning": "macs:0.404",
                   "macs_reduction": 40.6, "params_reduction": 35.0, "acc_base": acc_base,
                   "acc_pruned": 10.0 + index, "acc_pruned_bn": acc_base - bn_gap[index] + rng.normal(0, 0.5)}
            for budget, losses in loss.items():
                rows.append({**row, "budget": budget,
                             "acc_finetuned": acc_base - losses[criterion] + rng.normal(0, 0.05)})
    return pd.DataFrame(rows)


def test_cnn_claim_has_a_verdict_per_budget_and_a_regime_check_per_point():
    """Nuclear loses to taylor before and shortly after pruning (outside the paper's regime) and
    ties with it after recovery (inside): one point per budget, BN recalibration first, the
    primary point at the largest budget, and a regime status on every point."""
    from nnprune.analysis.claims_render import render_markdown
    from nnprune.analysis.verdicts import INSIDE, OUTSIDE

    claim = assess(cnn_input(_budget_runs(), "macs:0.404", 2048), ClaimSettings())
    main = [p for p in claim.points if p["comparison"] == "best other"]
    assert [p["axis_value"] for p in main] == [(0.404, "bn"), (0.404, "30b"), (0.404, "3e")]
    assert [p["budget"] for p in main] == ["bn", "30b", "3e"]
    assert [p["verdict"] for p in main] == ["not supported", "not supported", "equivalent"]
    assert claim.holds_where == "global: not supported up to 30 batches, equivalent at 3 epochs"
    assert claim.primary["axis_value"] == (0.404, "3e") and not claim.primary["fallback"]
    assert claim.verdict == "equivalent"
    # the regime check: gap of the best criterion below the baselines' mean, against 1 pp
    assert [p["regime"] for p in main] == [OUTSIDE, OUTSIDE, INSIDE]
    runs = _budget_runs()
    base = runs.groupby("seed").acc_base.first().mean()
    best_3e = runs[runs.budget == "3e"].groupby("criterion").acc_finetuned.mean().max()
    assert main[2]["baseline_mean"] == pytest.approx(base) and main[2]["gap_pp"] == pytest.approx(base - best_3e)
    assert main[1]["best_criterion"] == "taylor" and main[1]["gap_pp"] > 4.5
    assert claim.regime["primary"] == INSIDE and claim.regime["threshold_pp"] == 1.0
    text = render_markdown([claim], "synthetic", ClaimSettings(), [])
    assert "| cnn | equivalent | inside (" in text                  # the summary table's regime column
    assert text.count("**outside**") == 2 + 2                          # best other and random, bn and 30b
    assert "regime" in json.dumps(claim.regime)


def test_a_level_that_no_budget_fine_tuned_keeps_its_bn_point_as_a_stratum():
    """The default study fine-tunes the global allocation only: the uniform one enters the CNN
    claim with its BN-recalibrated point, and the allocation check compares the two there."""
    runs = _budget_runs()
    uniform = runs[runs.budget == "3e"].assign(pruning="uniform-macs:0.404", budget="0", acc_finetuned=np.nan,
                                               macs_reduction=43.6)
    claim = assess(cnn_input(pd.concat([runs, uniform], ignore_index=True), "macs:0.404", 2048), ClaimSettings())
    main = [(p["stratum"], p["axis_value"]) for p in claim.points if p["comparison"] == "best other"]
    assert main == [("global", (0.404, "bn")), ("global", (0.404, "30b")), ("global", (0.404, "3e")),
                    ("uniform", (0.404, "bn"))]
    assert [entry["axis_value"] for entry in claim.across_strata["values"]] == [(0.404, "bn")]
    assert claim.primary["stratum"] == "global" and claim.primary["axis_value"] == (0.404, "3e")
    assert any("uniform-macs:0.404" in note and "BN-recalibrated point only" in note for note in claim.notes)


def test_a_tighter_regime_threshold_moves_the_largest_budget_outside():
    claim = assess(cnn_input(_budget_runs(), "macs:0.404", 2048), ClaimSettings.from_mapping({"regime_gap_pp": 0.1}))
    main = [p for p in claim.points if p["comparison"] == "best other"]
    assert main[-1]["regime"] == "outside the paper's regime" and claim.regime["inside"] == []


def test_a_primary_budget_off_the_grid_falls_back_to_the_nearest_and_says_so():
    settings = ClaimSettings.from_mapping({"primary": {"budget": "40b"}})
    claim = assess(cnn_input(_budget_runs(), "macs:0.404", 2048, None, "40b"), settings)
    assert claim.primary["axis_value"] == (0.404, "30b") and claim.primary["fallback"]
    assert "is not among this claim's tested points" in claim.primary["reason"]
    far = assess(cnn_input(_budget_runs(), "macs:0.404", 2048, None, "10e"), settings)
    assert far.primary["axis_value"] == (0.404, "3e") and far.primary["fallback"]
    exact = assess(cnn_input(_budget_runs(), "macs:0.404", 2048, None, "30b"), settings)
    assert exact.primary["axis_value"] == (0.404, "30b") and not exact.primary["fallback"]
    assert exact.verdict == "not supported"


def test_label_noise_says_whether_its_verdict_survives_the_allocation():
    """Noisy runs pruned at the same MACs target under two allocations: nuclear loses to taylor
    under global and beats it under uniform, so the verdict does not survive the allocation."""
    from nnprune.analysis.claims import across_allocations

    runs = _runs()
    runs.loc[runs.label_noise > 0, "acc_finetuned"] = np.nan
    noisy = runs[runs.label_noise > 0]
    uniform = noisy.assign(pruning="uniform-macs:0.3")
    uniform.loc[uniform.criterion == "nuclear", "acc_pruned_bn"] += 10.0
    claim = assess(label_noise_input(pd.concat([runs, uniform], ignore_index=True), "macs:0.3", 256),
                   ClaimSettings())
    check = across_allocations(claim)
    assert check["verdicts"]["main"]["verdict"] == "not supported"
    assert check["verdicts"]["uniform allocation (uniform-macs:0.3)"]["verdict"] == "supported"
    assert not check["survives"] and "does not survive the allocation" in check["line"]
    same = assess(label_noise_input(pd.concat([runs, noisy.assign(pruning="uniform-macs:0.3")], ignore_index=True),
                                    "macs:0.3", 256), ClaimSettings())
    assert across_allocations(same)["survives"]


def test_budget_figure_plots_each_criterion_along_raw_bn_and_every_budget():
    """acc_vs_budget read back from the matplotlib objects: its x axis is the budget axis (raw,
    BN recalibrated, 30 batches, 3 epochs), one line per criterion whose points are the means over
    seeds, and the baselines' mean as a dashed line."""
    from matplotlib.lines import Line2D

    from nnprune.analysis.figures import budget_curve, plot_budget_curve

    runs = _budget_runs()
    fig = plot_budget_curve(budget_curve(runs, 2048))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["raw (pruned)", "BN recalibrated", "30 batches",
                                                           "3 epochs"]
    assert ax.get_xlabel() == "fine-tuning budget" and "fine-tuning budget" in fig._suptitle.get_text()
    lines = {container.get_label(): container.lines[0] for container in ax.containers}   # one errorbar each
    assert set(lines) == {"nuclear", "taylor", "random"}
    once = runs[runs.budget == "3e"]
    for criterion in ("nuclear", "taylor", "random"):
        x, y = lines[criterion].get_data()
        expected = [once[once.criterion == criterion].acc_pruned.mean(),
                    once[once.criterion == criterion].acc_pruned_bn.mean(),
                    runs[(runs.budget == "30b") & (runs.criterion == criterion)].acc_finetuned.mean(),
                    once[once.criterion == criterion].acc_finetuned.mean()]
        assert list(x) == [0, 1, 2, 3] and list(y) == pytest.approx(expected)
    dashed = [line for line in ax.get_lines() if isinstance(line, Line2D) and line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(runs.groupby("seed").acc_base.first().mean())


def test_committed_leaderboard_claims_match_their_raw_results():
    """results/leaderboard/claims.json's CNN points along the cut axis, the focus against each
    criterion and against its architecture trained from scratch, recomputed from its runs.csv with
    code independent of nnprune.analysis.stats; every criterion has 5 seeds at every cut."""
    study = REPO / "results" / "leaderboard"
    reused = json.loads((study / "reused.json").read_text())       # its baselines were the default study's
    assert reused["source"] == "results/default" and len(reused["baselines"]) == 5
    assert not (study / "baselines").exists()
    cnn = next(c for c in json.loads((study / "claims.json").read_text())["claims"] if c["name"] == "cnn")
    runs = pd.read_csv(study / "runs.csv")
    pruned = runs[(runs.kind == "pruned") & (runs.budget == "2e")]
    scratch = runs[runs.kind == "scratch"].set_index(["pruning", "seed"]).acc_finetuned
    cuts = ["macs:0.404", "macs:0.75", "macs:0.875", "macs:0.95"]
    assert pruned.groupby(["pruning", "criterion"]).seed.nunique().eq(5).all()
    assert set(pruned.criterion) == {"nuclear", "taylor", "l1", "random", "chip", "fpgm"}
    assert [p["pruning"] for p in cnn["along_cuts"]["points"]] == cuts
    for point in cnn["along_cuts"]["points"]:
        _check(point, _recompute(pruned[pruned.pruning == point["pruning"]], "nuclear", point["comparator"], [],
                                 "acc_finetuned"))
    for cut in cnn["along_cuts"]["parting"]["cuts"]:
        here = pruned[pruned.pruning == cut["pruning"]]
        for other, point in cut["focus_versus"].items():
            _check(point, _recompute(here, "nuclear", other, [], "acc_finetuned"))
    family = next(f for f in cnn["secondary"] if f["name"] == "focus vs scratch")
    assert [p["pruning"] for p in family["points"]] == cuts
    for point in family["points"]:
        mine = pruned[(pruned.pruning == point["pruning"]) & (pruned.criterion == "nuclear")].set_index("seed")
        _check(point, mine.acc_finetuned - scratch.loc[point["pruning"]].reindex(mine.index))
