"""Model registry: `build(name, num_classes=10, in_channels=3, width=1.0)`."""
from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from ..errors import UserError
from .resnet_cifar import CifarResNet, ZeroPadShortcut

MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet20": partial(CifarResNet, 20),
    "resnet32": partial(CifarResNet, 32),
    "resnet56": partial(CifarResNet, 56),
    "resnet110": partial(CifarResNet, 110),
}


def build(name: str, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """A freshly initialised model of architecture `name` (see `MODELS`)."""
    if name not in MODELS:
        raise UserError(f"unknown architecture {name!r}", f"use one of: {', '.join(sorted(MODELS))}")
    if width <= 0:
        raise UserError(f"width must be positive, got {width}", "set width to e.g. 0.25, 0.5 or 1.0")
    return MODELS[name](num_classes=num_classes, in_channels=in_channels, width=width)


__all__ = ["MODELS", "build", "ZeroPadShortcut"]
