"""claims.focus: the criterion every claim tests (default the paper's, nuclear) -- in the
comparisons, the claim texts, claims.md, claims.json and the figures' order and styles."""
from __future__ import annotations

import pandas as pd
import pytest

from nnprune.analysis.claims_render import render_markdown, rule_text
from nnprune.analysis.style import Style, criterion_color
from nnprune.analysis.verdicts import ClaimInput, ClaimSettings, assess, best_other, not_rivals
from nnprune.errors import UserError
from nnprune.plan.names import CRITERION_SOURCES, DEFAULT_FOCUS

# per criterion, one value per seed at one operating point (higher is better)
VALUES = {"nuclear": [90.0, 91.0, 90.5, 90.8], "nuclear-stacked": [93.0, 93.5, 93.2, 93.4],
          "l1": [89.0, 89.6, 89.1, 89.4], "taylor": [88.0, 88.2, 88.1, 88.3], "random": [80.0, 81.0, 80.5, 80.2]}


def claim_input(values=VALUES) -> ClaimInput:
    rows = [{"criterion": name, "stratum": "", "axis": 0.4, "order": 0.4, "replicate": seed, "unit": "",
             "value": value} for name, series in values.items() for seed, value in enumerate(series)]
    return ClaimInput("cnn", "At the same pruning level (MACs cut), pruning by nuclear norm leaves a more "
                      "accurate network than the other criteria.", "test accuracy (%)", "pruning level", "seed",
                      "accuracy_pp", pd.DataFrame(rows), label=lambda v: f"macs {v:g}")


def test_settings_read_focus_and_default_to_the_papers_criterion():
    assert ClaimSettings().focus == DEFAULT_FOCUS == "nuclear" and ClaimSettings().paper_focus
    settings = ClaimSettings.from_mapping({"focus": "l1", "alpha": 0.1})
    assert settings.focus == "l1" and not settings.paper_focus and settings.alpha == 0.1
    with pytest.raises(UserError, match="use focus, alpha"):
        ClaimSettings.from_mapping({"focal": "l1"})


def test_the_rival_of_another_focus_may_be_nuclear_stacked():
    """nuclear-stacked is the same energy as nuclear, so never nuclear's rival; for l1 it is the best other."""
    frame = claim_input().frame
    assert not_rivals("nuclear") == {"nuclear-stacked"} and not_rivals("l1") == set()
    assert best_other(frame, "nuclear") == "l1"
    assert best_other(frame, "l1") == "nuclear-stacked"
    claim = assess(claim_input(), ClaimSettings(focus="l1"))
    main = [p for p in claim.points if p["comparison"] == "best other"]
    assert {p["focus"] for p in claim.points} == {"l1"} and claim.focus == "l1"
    assert main[0]["comparator"] == "nuclear-stacked"
    assert main[0]["mean_difference"] == pytest.approx(-4.0, abs=1e-9)    # 89.275 - 93.275
    assert main[0]["verdict"] == "not supported"
    default = assess(claim_input(), ClaimSettings())
    first = next(p for p in default.points if p["comparison"] == "best other")
    assert first["focus"] == "nuclear" and first["comparator"] == "l1"
    assert first["mean_difference"] == pytest.approx(90.575 - 89.275)


def test_claims_md_speaks_of_the_focus_and_keeps_the_papers_text_by_default():
    other = render_markdown([assess(claim_input(), ClaimSettings(focus="l1"))], "s", ClaimSettings(focus="l1"), [])
    assert other.startswith("# Claims of Yeom et al. 2021 (energy-aware pruning), asked of criterion `l1`, "
                            "tested by study `s`")
    assert "d = metric(l1) - metric(comparator)" in other and "| point | l1 vs |" in other
    assert "*Holds where* (l1 vs the best other criterion)" in other
    assert "nuclear vs" not in other and "is not a rival" not in other
    paper = render_markdown([assess(claim_input(), ClaimSettings())], "s", ClaimSettings(), [])
    assert paper.startswith("# Claims of Yeom et al. 2021 (energy-aware pruning), tested by study `s`")
    assert "d = metric(nuclear) - metric(comparator)" in paper and "| point | nuclear vs |" in paper
    assert ("(by mean; nuclear-stacked, the same energy in another form, is not a rival) and random"
            in rule_text("nuclear"))


def test_figures_put_the_focus_first_thicker_and_give_outside_criteria_a_colour():
    present = ["random", "l1", "bn_scale", "nuclear"]
    config = ("nuclear", "l1", "random", "bn_scale")
    assert Style(criteria=config).order(present)[0] == "nuclear"
    other = Style(focus="bn_scale", criteria=config)
    assert other.order(present) == ["bn_scale", "nuclear", "l1", "random"]
    assert other.series("bn_scale")["linewidth"] > other.series("nuclear")["linewidth"]
    # a style is a value: another focus leaves the default's as it was
    assert Style().series("nuclear")["linewidth"] > Style().series("bn_scale")["linewidth"]
    assert other.series("bn_scale")["color"] == Style().series("bn_scale")["color"] == criterion_color("bn_scale")
    builtin = {criterion_color(name) for name in CRITERION_SOURCES}
    assert criterion_color("bn_scale") == criterion_color("bn_scale")
    assert {criterion_color(name) for name in ("bn_scale", "gamma", "slim")} - {"black"}
    assert criterion_color("bn_scale") not in builtin
