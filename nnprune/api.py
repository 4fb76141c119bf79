"""nnprune from Python: every pipeline step as a function of a typed spec.

    from nnprune import api

    trained = api.train(api.TrainSpec(arch="resnet20", width=0.25, train_size=500, epochs=1,
                                      out="runs/base"))
    trained.results["acc_test"]      # % on the clean test set; trained.model is the network

Each step takes its spec (`nnprune.plan.specs`: the defaults are defined there, once) and returns a
`StepResult`: `metrics` (what it wrote to metrics.json), `model` (train, prune, finetune,
evaluate) and step-specific `outputs`. The command line and the workflow call the same
functions. Importing this module is light: torch loads when a step first runs.
"""
from __future__ import annotations

from typing import Any

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
    StepResult,
    ToyReportSpec,
    ToySpec,
    TrainConfig,
    TrainSpec,
)

# step function -> the module that defines it (imported on first use: it imports torch)
STEPS = {"train": "pipeline.steps", "score": "pipeline.steps", "prune": "pipeline.steps",
         "finetune": "pipeline.steps", "evaluate": "pipeline.steps",
         "aggregate": "pipeline.study_steps", "report": "pipeline.study_steps",
         "claims": "pipeline.study_steps",
         "toy": "pipeline.study_steps", "toy_report": "pipeline.study_steps"}

__all__ = ["AggregateSpec", "ClaimsSpec", "DataSpec", "EvaluateSpec", "FinetuneSpec", "PruneSpec",
           "ReportSpec", "RunOptions", "ScoreSpec", "StepResult", "ToyReportSpec", "ToySpec",
           "TrainConfig", "TrainSpec", *STEPS]


def __getattr__(name: str) -> Any:
    if name in STEPS:
        import importlib

        return getattr(importlib.import_module(f".{STEPS[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
