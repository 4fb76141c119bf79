"""Model files: enough to rebuild the (possibly pruned) architecture, and the weights.

A model file is a plain dict of tensors, numbers, strings and lists, loadable with
`torch.load(weights_only=True)`: the architecture name (for an outside model also `source`, its
`short=module:function`, imported again to rebuild it) and build arguments, the input shape, and
for a pruned model the removed channel indices per group. Loading rebuilds the base model,
re-applies the removal with torch-pruning, then loads the weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from nnprune.errors import UserError
from nnprune.files import load_torch, save_torch
from nnprune.models import build
from nnprune.pruning.removal import apply_removal

FORMAT = "nnprune-model-v1"


def model_record(model: nn.Module, arch: str, build_args: dict[str, Any], input_shape: tuple[int, ...],
                 removed: dict[str, list[int]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"format": FORMAT, "arch": arch, "build_args": dict(build_args),
            "input_shape": list(input_shape), "removed": removed or {},
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}


def save_model(path: str | Path, model: nn.Module, arch: str, build_args: dict[str, Any],
               input_shape: tuple[int, ...], removed: dict[str, list[int]] | None = None,
               **extra: Any) -> Path:
    return save_torch(path, model_record(model, arch, build_args, input_shape, removed, **extra))


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(model on the CPU in eval mode, the record without its state_dict)."""
    record = load_torch(path, "model file")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UserError(f"{path} is not an nnprune model file (format {FORMAT})",
                        "pass a model.pt written by `nnprune train`, `prune` or `finetune`")
    model = build(record.get("source") or record["arch"], **record["build_args"])   # source: an outside model
    if record["removed"]:
        apply_removal(model, tuple(record["input_shape"]), record["removed"])
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as error:
        raise UserError(f"weights in {path} do not fit architecture {record['arch']} ({error})",
                        "the file is damaged or from another nnprune version; rerun the step") from None
    meta = {k: v for k, v in record.items() if k != "state_dict"}
    return model.eval(), meta
