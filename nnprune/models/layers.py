"""Building blocks shared by the CIFAR-style models."""
from __future__ import annotations

import torch
from torch import nn


class ConvBNReLU(nn.Module):
    """conv (no bias: the BatchNorm's shift makes it redundant) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        # Not in place: torch-pruning traces the graph through autograd.
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def init_conv_bn(model: nn.Module) -> nn.Module:
    """He-normal convolutions (fan out), BatchNorm scale 1 and shift 0. Returns `model`."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
