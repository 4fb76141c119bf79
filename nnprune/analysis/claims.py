"""Verdicts on the energy-aware paper's claims, computed from runs.csv, stability.csv and the toy
results. Which rows each claim reads, its metric and its swept axis: nnprune/analysis/claims_inputs.py
and, for the label-noise claim, nnprune/analysis/claims_noise.py. The rule (nnprune/analysis/stats.py)
and the comparisons at every operating point (nnprune/analysis/verdicts.py) were fixed before the run;
claims.md restates them (nnprune/analysis/claims_render.py).

  toy          100 - boundary change (%), per share of hidden units removed; seeds x datasets
  data_size    per-layer Spearman of scores from score_images images with those from the
               largest, per score_images; data-driven criteria. Second reading (a secondary
               family): fine-tuned accuracy pruned from fewer images minus from the most, the
               focus against the best other criterion and each criterion against 0 (consistency)
  label_noise  minus the accuracy drop from each run's own noisy baseline (pp), per noise level
               and noise kind: after fine-tuning at the largest budget on the run's own noisy
               labels where the noisy runs were fine-tuned (BN-recalibrated as a secondary family)
  cnn          test accuracy (%) per pruning level and fine-tuning budget (BN-recalibrated first,
               then each budget), clean labels; each point with its regime check. With several
               fine-tuned cuts, those points at the largest budget read along the cut axis, and
               the focus against its architecture trained from scratch per cut (a secondary
               family, nnprune/analysis/claims_cuts.py)
  headline     (paper configs) fine-tuned top-1 of ResNet-56/110 against the paper's figures
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from nnprune.analysis.aggregate import split_kinds
from nnprune.analysis.claim_records import Claim, ClaimInput, ClaimSettings, claim_record
from nnprune.analysis.claims_cuts import add_cut_axis
from nnprune.analysis.claims_inputs import cnn_input, data_size_input, toy_input
from nnprune.analysis.claims_limits import study_limits
from nnprune.analysis.claims_noise import across_allocations, label_noise_input, reach_notes
from nnprune.analysis.claims_render import render_markdown, rule_text, write_forests
from nnprune.analysis.stats import t_interval
from nnprune.analysis.table_text import number
from nnprune.analysis.verdicts import assess
from nnprune.files import write_json, write_text
from nnprune.plan.names import PAPER_CRITERION
from nnprune.plan.specs import StudyScale

CLAIM_NAMES = ("toy", "data_size", "label_noise", "cnn")   # one forest plot each (workflow: CLAIM_FORESTS)
PAPER_NORM = "pruning by nuclear norm"    # the paper's wording of its criterion in the claim texts


def build_claims(study_dir: Path, main_pruning: str, main_score_images: int,
                 settings: ClaimSettings | None = None) -> list[Claim]:
    """Every claim this study's files can test (toy.csv, stability.csv with two score_images or
    more, runs.csv with two label-noise levels or more; the CNN claim always), assessed by
    `settings`, then the headline claim where the study ran the paper's configs. runs.csv's
    from-scratch controls enter the CNN claim's "focus vs scratch" family only."""
    settings = settings or ClaimSettings()
    inputs: list[ClaimInput] = []
    toy_path = study_dir / "toy" / "toy.csv"
    if toy_path.exists():
        inputs.append(toy_input(pd.read_csv(toy_path)))
    runs, scratch = split_kinds(pd.read_csv(study_dir / "runs.csv"))
    stability_path = study_dir / "stability.csv"
    if stability_path.exists():
        stability = pd.read_csv(stability_path)
        if len(stability) and stability.score_images.nunique() > 1:
            inputs.append(data_size_input(stability, runs, main_pruning))
    if runs.label_noise.nunique() > 1:
        inputs.append(label_noise_input(runs, main_pruning, main_score_images))
    inputs.append(cnn_input(runs, main_pruning, main_score_images, settings.primary.get("pruning"),
                            settings.primary.get("budget")))
    if not settings.paper_focus:        # the paper's claims, asked of another criterion
        for spec in inputs:
            spec.claim = spec.claim.replace(PAPER_NORM, f"pruning by `{settings.focus}`")
    claims = [assess(spec, settings) for spec in inputs]
    for claim in claims:
        if claim.name == "label_noise":
            claim.across_allocations = across_allocations(claim)
            claim.notes.extend(reach_notes(claim, settings.power))
        if claim.name == "cnn":
            add_cut_axis(claim, runs, scratch, main_score_images, settings)
    headline = headline_claim(runs, settings.alpha)
    if headline:
        claims.append(Claim(**headline))
    return claims


def write_claims(study_dir: Path, main_pruning: str, main_score_images: int,
                 settings: ClaimSettings | None = None, scale: StudyScale | None = None) -> list[Claim]:
    """claims.json, claims.md and claims_forest_{name}.png/.pdf for each of CLAIM_NAMES; the limits
    of claims.md are written from `scale`, what the study ran. Returns the claims."""
    settings = settings or ClaimSettings()
    claims = build_claims(study_dir, main_pruning, main_score_images, settings)
    limits = study_limits(scale or StudyScale())
    write_json(study_dir / "claims.json", {"focus": settings.focus, "rule": rule_text(settings.focus),
                                           "settings": asdict(settings),
                                           "claims": [claim_record(c) for c in claims], "limits": limits})
    write_text(study_dir / "claims.md", render_markdown(claims, study_dir.name, settings, limits))
    write_forests(claims, study_dir, CLAIM_NAMES)
    return claims


def headline_claim(runs: pd.DataFrame, alpha: float = 0.05) -> dict | None:
    """Paper config only: ResNet-56/110 on CIFAR-10 at the paper's reductions. Supported when the
    (1 - alpha) t interval over seeds of (ours - paper) lies above -0.3 pp."""
    targets = {"resnet56": (94.13, 40.4, 45.9), "resnet110": (94.61, 49.8, 52.9)}
    # the paper's figures are its own criterion's: compared with its runs, whatever claims.focus is
    part = runs[(runs.dataset == "cifar10") & runs.arch.isin(targets) & (runs.criterion == PAPER_CRITERION)
                & (runs.label_noise == 0)]
    if part.empty:
        return None
    notes, verdicts = [], []
    for arch, (acc, macs, params) in targets.items():
        rows = part[(part.arch == arch) & ((part.macs_reduction - macs).abs() < 2.0)]
        if rows.empty:
            continue
        low, high = t_interval(rows.groupby("seed").acc_finetuned.mean().to_numpy(float) - acc, alpha)
        decided = "supported" if low > -0.3 else "not supported" if high < -0.3 else "inconclusive"
        verdicts.append(decided)
        notes.append(f"{arch}: fine-tuned {rows.acc_finetuned.mean():.2f}% over {rows.seed.nunique()} seeds at "
                     f"-{rows.macs_reduction.mean():.1f}% MACs (paper {acc}% at -{macs}% MACs, -{params}% params); "
                     f"CI of ours - paper [{number(low, 2, sign=True)}, {number(high, 2, sign=True)}] pp: {decided}")
    verdict = "inconclusive" if not verdicts else (
        "supported" if all(v == "supported" for v in verdicts) else
        "not supported" if any(v == "not supported" for v in verdicts) else "inconclusive")
    return {"name": "headline", "claim": "ResNet-56: 94.13% top-1 at -40.4% FLOPs; ResNet-110: 94.61% at -49.8%.",
            "metric": f"fine-tuned top-1 of {PAPER_CRITERION} runs within 2 pp of the paper's MACs reduction; "
            "supported if the CI of (ours - paper) lies above -0.3 pp", "axis": "architecture", "replicate": "seed",
            "verdict": verdict, "notes": notes}

