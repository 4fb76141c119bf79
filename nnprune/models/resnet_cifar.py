"""CIFAR-style ResNets (He et al. 2016, section 4.2) with the option-A shortcut.

Depth 6n+2: a 3x3 stem, three stages of n BasicBlocks with 16, 32 and 64 channels (times `width`),
global average pooling and one linear layer. Where a stage changes resolution and width, the
shortcut subsamples by 2 and pads the missing channels with zeros (option A: no parameters).

The zero-pad shortcut is its own module, `ZeroPadShortcut`, holding an explicit map from output
channel to input channel. That is what lets torch-pruning remove channels of the residual streams
physically: pruning a stream's channels edits the map instead of breaking a hard-coded pad.
"""
from __future__ import annotations

import torch
from torch import nn


def scaled(channels: int, width: float) -> int:
    """Channel count `channels * width`, rounded, at least 1."""
    return max(1, int(round(channels * width)))


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: subsample spatially by `stride`, then place input channel
    `source_index[j]` at output channel j; output channels with index -1 are zeros."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("ZeroPadShortcut cannot drop channels at construction")
        self.in_channels = in_channels
        self.stride = stride
        pad_front = (out_channels - in_channels) // 2
        source = torch.full((out_channels,), -1, dtype=torch.long)
        source[pad_front:pad_front + in_channels] = torch.arange(in_channels)
        self.register_buffer("source_index", source)

    @property
    def out_channels(self) -> int:
        return int(self.source_index.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # No torch.cat here: torch-pruning would read a concatenation as channel coupling. No
        # torch.nonzero either: its data-dependent shape forces a device-to-host sync on every
        # GPU pass, which CUDA-graph capture and torch.compile(fullgraph=True) refuse. Gathering
        # with the map clamped to a valid channel, then zeroing the padded outputs, keeps every
        # shape fixed by the model alone.
        padded = (self.source_index < 0).view(1, -1, 1, 1)
        gathered = x.index_select(1, self.source_index.clamp(min=0))
        return gathered.masked_fill(padded, 0.0)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU(inplace=False)
        if stride != 1 or in_channels != channels:
            self.shortcut: nn.Module = ZeroPadShortcut(in_channels, channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks_per_stage = (depth - 2) // 6
        stage_channels = [scaled(16, width) * factor for factor in (1, 2, 4)]
        self.conv1 = nn.Conv2d(in_channels, stage_channels[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stage_channels[0])
        self.relu = nn.ReLU(inplace=False)
        stages = []
        current = stage_channels[0]
        for stage, channels in enumerate(stage_channels):
            blocks = []
            for block in range(blocks_per_stage):
                stride = 2 if (stage > 0 and block == 0) else 1
                blocks.append(BasicBlock(current, channels, stride))
                current = channels
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(current, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))
