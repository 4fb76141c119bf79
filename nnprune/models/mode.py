"""A model's train/eval mode, set for a block of code and then given back."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def in_mode(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Put `model` in eval mode (or train mode with `training=True`) for the `with` block and
    yield it. On leaving, also by an exception, every submodule gets back its own mode, so a
    caller's mixed setting (a frozen BatchNorm in a training model) survives too."""
    saved = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, mode in saved:
            module.training = mode
