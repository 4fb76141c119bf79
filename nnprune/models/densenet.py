"""DenseNet-40 for CIFAR (Huang et al. 2017): growth rate k = 12, no bottleneck, no compression.

A 3x3 stem with 2k channels, three dense blocks of 12 layers separated by two transitions, then
BN-ReLU, global average pooling and a linear classifier. A dense layer is BN-ReLU-conv3x3 with k
output channels, concatenated to its input; a transition is BN-ReLU-conv1x1 (as many outputs as
inputs) followed by 2x2 average pooling. Channels: 24 -> 168 -> 312 -> 456.
1.06M parameters (1.04M without BatchNorm), 282.9M conv+linear MACs at 3x32x32.
"""
from __future__ import annotations

import torch
from torch import nn

from nnprune.models.layers import init_conv_bn
from nnprune.models.resnet_cifar import scaled


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(in_channels, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.relu(self.bn(x)))], dim=1)


class Transition(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class DenseNet40(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 layers_per_block: int = 12):
        super().__init__()
        growth = scaled(12, width)
        current = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, current, 3, 1, 1, bias=False)
        for block in (1, 2, 3):
            layers = []
            for _ in range(layers_per_block):
                layers.append(DenseLayer(current, growth))
                current += growth
            setattr(self, f"block{block}", nn.Sequential(*layers))
            if block < 3:
                setattr(self, f"trans{block}", Transition(current))
        self.bn = nn.BatchNorm2d(current)
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(current, num_classes)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block1(self.conv1(x))
        x = self.block2(self.trans1(x))
        x = self.block3(self.trans2(x))
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(x))), 1))
