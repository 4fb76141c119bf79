"""The study-wide steps: aggregate, report, claims, and the toy study (toy, toy-report). Each is a
function of its typed spec (`nnprune.plan.specs`) returning a `StepResult`, as in `steps`.

Torch-free to import; report and claims also run without torch (aggregate reads score files,
and the toy steps train and read tensors: they load it)."""
from __future__ import annotations

from pathlib import Path

from nnprune.files import load_torch, save_torch
from nnprune.plan.specs import AggregateSpec, ClaimsSpec, ReportSpec, StepResult, ToyReportSpec, ToySpec


def aggregate(spec: AggregateSpec) -> StepResult:
    """OUT/runs.csv (one row per pruned model) and OUT/stability.csv from the runs' and score
    files' metrics; returns both frames as outputs "runs" and "stability"."""
    from nnprune.analysis.aggregate import collect_runs, score_stability
    from nnprune.files import write_text

    out = Path(spec.out)
    frame = collect_runs([Path(p) for p in spec.runs], study_dir=out, budgets=spec.budgets,
                         scratch=[Path(p) for p in spec.scratch])
    write_text(out / "runs.csv", frame.to_csv(index=False))
    stability = score_stability([Path(p) for p in spec.scores])
    write_text(out / "stability.csv", stability.to_csv(index=False))
    print(f"[aggregate] {len(frame)} runs, {len(stability)} stability rows -> {out}")
    return StepResult(outputs={"runs": frame, "stability": stability})


def report(spec: ReportSpec) -> StepResult:
    """Tables and figures of a study from its runs.csv and stability.csv (exactly `spec.tables` and
    `spec.figures` where given), the leaderboard ranked by the claims' `spec.settings`; output "files"."""
    from nnprune.analysis.claim_records import ClaimSettings
    from nnprune.analysis.report import write_report

    written = write_report(Path(spec.study_dir), main_pruning=spec.main_pruning,
                           main_score_images=spec.main_score_images, criteria=spec.criteria, focus=spec.focus,
                           settings=ClaimSettings.from_mapping(spec.settings), tables=spec.tables,
                           figures=spec.figures)
    print(f"[report] {len(written)} files under {spec.study_dir}")
    return StepResult(outputs={"files": written})


def toy(spec: ToySpec) -> StepResult:
    """One toy dataset, every seed: writes OUT/toy.csv, OUT/boundaries.pt, OUT/metrics.json;
    outputs "frame" (the rows) and "boundaries"."""
    from nnprune.files import write_text
    from nnprune.pipeline.steps import Step
    from nnprune.toy import run_dataset

    step = Step("toy", spec)
    frame, boundaries = run_dataset(spec.dataset, spec)
    write_text(step.out / "toy.csv", frame.to_csv(index=False))
    save_torch(step.out / "boundaries.pt", boundaries)
    base = frame[frame.input_noise == 0].groupby("seed").acc_base.first()
    step.log(f"{spec.dataset}: unpruned test accuracy {base.mean():.1f}% (min {base.min():.1f}%), "
             f"{len(frame)} rows")
    metrics = step.finish({"rows": len(frame), "acc_base_mean": float(base.mean()),
                           "acc_base_min": float(base.min())})
    return StepResult(metrics, outputs={"frame": frame, "boundaries": boundaries})


def toy_report(spec: ToyReportSpec) -> StepResult:
    """Toy figures and the combined toy.csv from the per-dataset outputs; output "frame"."""
    import pandas as pd

    from nnprune.analysis.figures import save_figure
    from nnprune.files import write_text
    from nnprune.toy import plot_boundaries, plot_curves

    out = Path(spec.out)
    frames = [pd.read_csv(Path(d) / "toy.csv") for d in spec.inputs]
    frame = pd.concat(frames, ignore_index=True)
    write_text(out / "toy.csv", frame.to_csv(index=False))
    criteria = list(dict.fromkeys(frame.criterion))
    fractions = sorted(frame.fraction.unique())
    for folder, rows in zip(spec.inputs, frames):
        boundaries = load_torch(Path(folder) / "boundaries.pt", "toy boundaries")
        dataset = rows.dataset.iloc[0]     # toy.csv records its dataset
        save_figure(plot_boundaries(boundaries, dataset, criteria, fractions), out, f"boundaries_{dataset}")
    save_figure(plot_curves(frame, "global", spec.focus), out, "toy_curves")
    if "per-layer" in set(frame.get("allocation", [])):
        save_figure(plot_curves(frame, "per-layer", spec.focus), out, "toy_curves_per_layer")
    print(f"[toy-report] {len(frame)} rows, figures in {out}")
    return StepResult(outputs={"frame": frame})


def claims(spec: ClaimsSpec) -> StepResult:
    """claims.md, claims.json and one forest plot per claim in the study directory, by the decision
    rule of `settings`; output "claims" (the verdicts)."""
    from nnprune.analysis.claims import write_claims
    from nnprune.analysis.verdicts import ClaimSettings
    from nnprune.plan.specs import StudyScale, from_values

    settings = ClaimSettings.from_mapping(spec.settings)
    scale = from_values(StudyScale, spec.scale)
    written = write_claims(Path(spec.study_dir), spec.main_pruning, spec.main_score_images, settings, scale)
    for claim in written:
        print(f"[claims] {claim.name}: {claim.verdict}")
    return StepResult(outputs={"claims": written})
