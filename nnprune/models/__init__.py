"""Model registry: `build(name, num_classes=10, in_channels=3, width=1.0)`.

CIFAR-style nets (resnet20/32/56/110, vgg16, densenet40, googlenet) scale their channels by
`width`; resnet50 is torchvision's ImageNet model (width 1 only); mlp is the toy-study MLP, whose
`in_channels` is the number of input features and whose `width` scales the hidden widths.

A model from outside the package (config `archs:` key `[short=]package.module:function`, or an
entry point of group `nnprune.models`; nnprune/plan/plugins.py) is a function, or an nn.Module
class, called as `function(num_classes=..., in_channels=..., width=...)` (width: the config's
`width`, default 1.0) that returns a freshly initialised `nn.Module` taking [B, in_channels, H, W]
images. Its prunable channel groups come from torch-pruning's dependency graph (its convolutions;
the classifier is never pruned), so `macs:`, `uniform:` and `uniform-macs:` pruning work on it;
`rates:` and `preset:` strings are for the built-in models.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from nnprune.plan import plugins
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


@dataclass(frozen=True)
class Architecture:
    """A model constructor: `name` is its short name (runs.csv, paths), `origin` the
    `module:function` of one from outside (None for a built-in), `file` its module's source."""
    name: str
    constructor: Callable[..., nn.Module]
    origin: str | None = None
    file: str | None = None

    @property
    def entry(self) -> str:
        """What a model file records to rebuild it: the built-in name, or short=module:function."""
        return f"{self.name}={self.origin}" if self.origin else self.name


def resolve(entry: str) -> Architecture:
    """The architecture `entry` names: built-in, `[short=]package.module:function` or an entry
    point of group nnprune.models; an outside one is imported and checked to be callable."""
    if entry in MODELS:
        return Architecture(entry, MODELS[entry])
    name, target, module, constructor = plugins.load(entry, "model", sorted(MODELS))
    if not callable(constructor):
        raise UserError(f"architecture {entry!r}: {target} is "
                        + ("missing" if constructor is None else f"not callable (a {type(constructor).__name__})"),
                        "name a function that returns an nn.Module")
    return Architecture(name, constructor, target, module.__file__)


def build(name: str, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
          **options: Any) -> nn.Module:
    """A freshly initialised model of architecture `name` (see `MODELS`, or `resolve` for one from
    outside). `options` go to the architecture's constructor (e.g. `hidden=(100, 100)` for mlp)."""
    architecture = resolve(name)
    if width <= 0:
        raise UserError(f"width must be positive, got {width}", "set width to e.g. 0.25, 0.5 or 1.0")
    try:
        model = architecture.constructor(num_classes=num_classes, in_channels=in_channels, width=width, **options)
    except TypeError as error:
        if not options and not architecture.origin:
            raise
        given = sorted(["num_classes", "in_channels", "width", *options])
        raise UserError(f"architecture {name!r} does not take the arguments {given} ({error})",
                        "accept num_classes, in_channels and width (and remove options it does not know)") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"architecture {name!r} returned a {type(model).__name__}, not an nn.Module",
                        "return the network (a torch.nn.Module)")
    return model


__all__ = ["MODELS", "RATE_UNITS", "Architecture", "build", "resolve", "ZeroPadShortcut"]
