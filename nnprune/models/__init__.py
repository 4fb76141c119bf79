"""Model registry: `build(name, num_classes=10, in_channels=3, width=1.0)`.

CIFAR-style nets (resnet20/32/56/110, vgg16, densenet40, googlenet) scale their channels by
`width`; resnet50 is torchvision's ImageNet model (width 1 only); mlp is the toy-study MLP, whose
`in_channels` is the number of input features and whose `width` scales the hidden widths.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from nnprune.errors import UserError
from nnprune.models import googlenet
from nnprune.models.densenet import DenseNet40
from nnprune.models.googlenet import GoogLeNet
from nnprune.models.mlp import MLP
from nnprune.models.resnet_cifar import CifarResNet, ZeroPadShortcut
from nnprune.models.resnet_imagenet import resnet50
from nnprune.models.vgg import VGG16
from nnprune.plan.names import ARCHITECTURES, check_registered

MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet20": partial(CifarResNet, 20),
    "resnet32": partial(CifarResNet, 32),
    "resnet56": partial(CifarResNet, 56),
    "resnet110": partial(CifarResNet, 110),
    "vgg16": VGG16,
    "densenet40": DenseNet40,
    "googlenet": GoogLeNet,
    "resnet50": resnet50,
    "mlp": MLP,
}
check_registered("architecture", set(MODELS), set(ARCHITECTURES))

# Architectures whose HRank rate string gives one rate per unit rather than per conv: a function
# from the prunable layer names (module order) to, per unit, the layers that take its rate.
RATE_UNITS: dict[str, Callable[[list[str]], list[list[str]]]] = {
    "googlenet": googlenet.unit_rate_layers,
}


def build(name: str, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
          **options: Any) -> nn.Module:
    """A freshly initialised model of architecture `name` (see `MODELS`). `options` go to the
    architecture's constructor (e.g. `hidden=(100, 100)` for mlp)."""
    if name not in MODELS:
        raise UserError(f"unknown architecture {name!r}", f"use one of: {', '.join(sorted(MODELS))}")
    if width <= 0:
        raise UserError(f"width must be positive, got {width}", "set width to e.g. 0.25, 0.5 or 1.0")
    try:
        return MODELS[name](num_classes=num_classes, in_channels=in_channels, width=width, **options)
    except TypeError as error:
        if not options:
            raise
        raise UserError(f"architecture {name!r} does not take options {sorted(options)} ({error})",
                        "remove the options it does not know") from None


__all__ = ["MODELS", "RATE_UNITS", "build", "ZeroPadShortcut"]
