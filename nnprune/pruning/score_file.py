"""Score files (scores.pt): one criterion's per-channel scores of every prunable layer of a model,
written by `nnprune score` and read by `nnprune prune` (and the stability analysis).

A score file is a plain dict, loadable with `torch.load(weights_only=True)`:

    format         "nnprune-scores-v1"
    arch           the architecture scored (the model file's `arch`)
    criterion      the criterion's name
    layers         the prunable layers, in the model's order
    scores         {layer: float Tensor[C]}, higher = more important
    score_images   training images the criterion read (0: data-free)
    feature_point  where feature maps were read (`bn`, `relu`), or None
    channels       {layer: C}, to check the file against a model before pruning it

It is written atomically (`files.save_torch`) and read with `weights_only=True`; a missing,
truncated or foreign file ends in one UserError that names the fix. Torch-free to import.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nnprune.errors import UserError
from nnprune.files import load_torch, save_torch

FORMAT = "nnprune-scores-v1"
KEYS = ("format", "arch", "criterion", "layers", "scores", "score_images", "feature_point", "channels")


def score_record(arch: str, criterion: str, layers: list[str], scores: dict[str, Any], score_images: int,
                 feature_point: str | None) -> dict[str, Any]:
    """The score file's dict; `scores`: {layer: Tensor[C]} for every layer of `layers`."""
    return {"format": FORMAT, "arch": arch, "criterion": criterion, "layers": list(layers), "scores": scores,
            "score_images": score_images, "feature_point": feature_point,
            "channels": {layer: int(values.numel()) for layer, values in scores.items()}}


def save_scores(path: str | Path, arch: str, criterion: str, layers: list[str], scores: dict[str, Any],
                score_images: int, feature_point: str | None) -> Path:
    """Write a score file atomically (an interrupted write leaves no partial file); returns `path`."""
    return save_torch(path, score_record(arch, criterion, layers, scores, score_images, feature_point))


def read_scores(path: str | Path) -> dict[str, Any]:
    """The record of the score file at `path` (the dict above), checked to be one."""
    record = load_torch(path, "scores file")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UserError(f"{path} is not an nnprune scores file", "pass scores.pt from `nnprune score`")
    missing = [key for key in KEYS if key not in record]
    if missing or not isinstance(record["scores"], dict) or set(record["scores"]) != set(record["layers"]):
        raise UserError(f"scores file {path} is damaged (missing {', '.join(missing) or 'scores of its layers'})",
                        "delete it and rerun `nnprune score` (Snakemake: --forcerun that rule)")
    return record


def load_scores(path: str | Path, arch: str, layers: list[str], channels: dict[str, int]) -> dict[str, Any]:
    """The score file at `path`, checked to fit a model of architecture `arch` with prunable
    `layers` of `channels` output channels each (a UserError otherwise)."""
    record = read_scores(path)
    if record["arch"] != arch or record["layers"] != layers or record["channels"] != channels:
        raise UserError(f"scores file {path} was computed for architecture {record['arch']} with "
                        f"{len(record['layers'])} prunable layers, but the model is {arch} with "
                        f"{len(layers)}", "score this model with `nnprune score` and pass that file")
    return record
