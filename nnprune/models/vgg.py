"""VGG-16 with batch norm, CIFAR variant (as in the HRank and network-slimming code bases).

Thirteen 3x3 conv+BN+ReLU layers in five stages of 64, 64 | 128, 128 | 256 x3 | 512 x3 | 512 x3
channels (times `width`), max pooling between stages, global average pooling after the last
stage (on 32x32 inputs the last map is 2x2), then a 512-512-C classifier with a BatchNorm1d
between the two linear layers. 14.99M parameters, 313.5M conv+linear MACs at 3x32x32.
"""
from __future__ import annotations

import torch
from torch import nn

from nnprune.models.layers import ConvBNReLU, init_conv_bn
from nnprune.models.resnet_cifar import scaled

STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        current = in_channels
        for stage, channels in enumerate(STAGES):
            if stage > 0:
                layers.append(nn.MaxPool2d(2))
            for base in channels:
                layers.append(ConvBNReLU(current, scaled(base, width), 3))
                current = scaled(base, width)
        self.features = nn.Sequential(*layers)
        # Adaptive, so that 28x28 inputs (1x1 after four poolings) work as well as 32x32 ones.
        self.pool = nn.AdaptiveAvgPool2d(1)
        hidden = scaled(512, width)
        self.classifier = nn.Sequential(nn.Linear(current, hidden), nn.BatchNorm1d(hidden),
                                        nn.ReLU(inplace=False), nn.Linear(hidden, num_classes))
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
