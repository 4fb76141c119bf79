"""nnprune from Python: every pipeline step as a function of a typed spec.

    from nnprune import api

    trained = api.train(api.TrainSpec(arch="resnet20", width=0.25, train_size=500, epochs=1,
                                      out="runs/base"))
    trained.results["acc_test"]      # % on the clean test set; trained.model is the network

Each step takes its spec (`nnprune.plan.specs`: the defaults are defined there, once) and returns a
`StepResult`: `metrics` (what it wrote to metrics.json), `model` (train, prune, finetune,
evaluate) and step-specific `outputs`. The command line and the workflow call the same
functions. Importing this module is light: torch loads when a step first runs.

A step that runs a network (its spec has `RunOptions`) changes process-wide state here, before
the step starts, and nowhere else: torch's CPU thread count (`threads`) and the global seeds
(`seed`, `deterministic`), which stay set after the call (`pipeline.process.set_up_run`).
"""
from __future__ import annotations

from collections.abc import Callable

from nnprune.plan.specs import (
    AggregateSpec,
    ClaimsSpec,
    DataSpec,
    EvaluateSpec,
    FinetuneSpec,
    PruneSpec,
    ReportSpec,
    RunOptions,
    ScoreSpec,
    ScratchSpec,
    StepResult,
    ToyReportSpec,
    ToySpec,
    TrainConfig,
    TrainSpec,
)

__all__ = ["AggregateSpec", "ClaimsSpec", "DataSpec", "EvaluateSpec", "FinetuneSpec", "PruneSpec",
           "ReportSpec", "RunOptions", "ScoreSpec", "ScratchSpec", "StepResult", "ToyReportSpec",
           "ToySpec", "TrainConfig", "TrainSpec", "aggregate", "claims", "evaluate", "finetune", "prune",
           "report", "score", "scratch", "toy", "toy_report", "train"]


def _run(step: Callable, spec) -> StepResult:
    """Set the threads and seeds of a `RunOptions` spec, then run `step(spec)`. The step's module
    is imported before the seeds are set, as in a fresh process."""
    if isinstance(spec, RunOptions):
        from nnprune.pipeline.process import set_up_run

        set_up_run(spec.threads, spec.seed, spec.deterministic)
    return step(spec)


def train(spec: TrainSpec) -> StepResult:
    """Train a baseline: `nnprune.pipeline.steps.train`."""
    from nnprune.pipeline import steps

    return _run(steps.train, spec)


def score(spec: ScoreSpec) -> StepResult:
    """Score every prunable channel of a model: `nnprune.pipeline.steps.score`."""
    from nnprune.pipeline import steps

    return _run(steps.score, spec)


def prune(spec: PruneSpec) -> StepResult:
    """Remove channels by scores and a scheme: `nnprune.pipeline.steps.prune`."""
    from nnprune.pipeline import steps

    return _run(steps.prune, spec)


def finetune(spec: FinetuneSpec) -> StepResult:
    """Fine-tune a pruned model: `nnprune.pipeline.steps.finetune`."""
    from nnprune.pipeline import steps

    return _run(steps.finetune, spec)


def scratch(spec: ScratchSpec) -> StepResult:
    """Train a pruned model's architecture from scratch: `nnprune.pipeline.scratch.scratch`."""
    from nnprune.pipeline.scratch import scratch as train_from_scratch

    return _run(train_from_scratch, spec)


def evaluate(spec: EvaluateSpec) -> StepResult:
    """Clean-test accuracy, MACs and params of a model: `nnprune.pipeline.steps.evaluate`."""
    from nnprune.pipeline import steps

    return _run(steps.evaluate, spec)


def aggregate(spec: AggregateSpec) -> StepResult:
    """runs.csv and stability.csv of a study: `nnprune.pipeline.study_steps.aggregate`."""
    from nnprune.pipeline import study_steps

    return _run(study_steps.aggregate, spec)


def report(spec: ReportSpec) -> StepResult:
    """Tables and figures of a study: `nnprune.pipeline.study_steps.report`."""
    from nnprune.pipeline import study_steps

    return _run(study_steps.report, spec)


def claims(spec: ClaimsSpec) -> StepResult:
    """Verdicts on the paper's claims: `nnprune.pipeline.study_steps.claims`."""
    from nnprune.pipeline import study_steps

    return _run(study_steps.claims, spec)


def toy(spec: ToySpec) -> StepResult:
    """The 2-D toy experiment for one dataset: `nnprune.pipeline.study_steps.toy`."""
    from nnprune.pipeline import study_steps

    return _run(study_steps.toy, spec)


def toy_report(spec: ToyReportSpec) -> StepResult:
    """Toy figures from `toy` outputs: `nnprune.pipeline.study_steps.toy_report`."""
    from nnprune.pipeline import study_steps

    return _run(study_steps.toy_report, spec)
