"""GoogLeNet, CIFAR variant (the Inception-v1 layout at 32x32, as in the HRank code base).

A 3x3 pre-layer with 192 channels, inception modules a3, b3, max pool, a4 to e4, max pool, a5,
b5, global average pooling and a linear classifier. An inception module has four branches whose
outputs are concatenated: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 3x3 -> 3x3 (the 5x5 branch as two
3x3 convs); 3x3 max pool -> 1x1. Every conv is followed by BatchNorm and ReLU.
6.16M parameters, 1.52G conv+linear MACs at 3x32x32.

Rate units. HRank gives GoogLeNet one compress rate per *unit*: the pre-layer, then each inception
module (10 rates). `unit_rate_layers` says which convs take a unit's rate: the pre-layer conv, and
in each inception module the three branch-internal convs (the two 1x1 reductions and the middle
3x3 of the double-3x3 branch). The four convs that feed the concatenation keep all channels, as in
HRank, so every module keeps its output width.
"""
from __future__ import annotations

import torch
from torch import nn

from nnprune.models.layers import ConvBNReLU, init_conv_bn
from nnprune.models.resnet_cifar import scaled

# name: (1x1, 3x3 reduce, 3x3, double-3x3 reduce, double-3x3, pool projection)
INCEPTIONS = {
    "a3": (64, 96, 128, 16, 32, 32),
    "b3": (128, 128, 192, 32, 96, 64),
    "a4": (192, 96, 208, 16, 48, 64),
    "b4": (160, 112, 224, 24, 64, 64),
    "c4": (128, 128, 256, 24, 64, 64),
    "d4": (112, 144, 288, 32, 64, 64),
    "e4": (256, 160, 320, 32, 128, 128),
    "a5": (256, 160, 320, 32, 128, 128),
    "b5": (384, 192, 384, 48, 128, 128),
}
POOL_AFTER = ("b3", "e4")
RATE_UNITS = ("pre_layers", *INCEPTIONS)
# Convs of an inception module that take the module's rate (names relative to the module).
UNIT_RATE_CONVS = ("branch2.0.conv", "branch3.0.conv", "branch3.1.conv")


class Inception(nn.Module):
    def __init__(self, in_channels: int, n1x1: int, n3x3_reduce: int, n3x3: int,
                 n_double_reduce: int, n_double: int, n_pool: int):
        super().__init__()
        self.branch1 = nn.Sequential(ConvBNReLU(in_channels, n1x1, 1))
        self.branch2 = nn.Sequential(ConvBNReLU(in_channels, n3x3_reduce, 1),
                                     ConvBNReLU(n3x3_reduce, n3x3, 3))
        self.branch3 = nn.Sequential(ConvBNReLU(in_channels, n_double_reduce, 1),
                                     ConvBNReLU(n_double_reduce, n_double, 3),
                                     ConvBNReLU(n_double, n_double, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBNReLU(in_channels, n_pool, 1))
        self.out_channels = n1x1 + n3x3 + n_double + n_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        self.pre_layers = ConvBNReLU(in_channels, scaled(192, width), 3)
        current = scaled(192, width)
        for name, channels in INCEPTIONS.items():
            module = Inception(current, *(scaled(c, width) for c in channels))
            setattr(self, name, module)
            current = module.out_channels
            if name in POOL_AFTER:
                setattr(self, f"pool_{name}", nn.MaxPool2d(3, 2, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(current, num_classes)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_layers(x)
        for name in INCEPTIONS:
            x = getattr(self, name)(x)
            if name in POOL_AFTER:
                x = getattr(self, f"pool_{name}")(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def unit_rate_layers(layers: list[str]) -> list[list[str]]:
    """For each of the 10 rate units, the names (among `layers`) of the convs that take its rate;
    every other layer gets rate 0. See the module docstring."""
    per_unit = [[name for name in layers if name.startswith("pre_layers.")]]
    for module in INCEPTIONS:
        wanted = {f"{module}.{relative}" for relative in UNIT_RATE_CONVS}
        per_unit.append([name for name in layers if name in wanted])
    return per_unit
