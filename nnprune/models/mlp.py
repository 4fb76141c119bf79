"""Multilayer perceptron for the 2-D toy study: in_channels -> hidden... -> num_classes, ReLU.

The default 2-1000-1000-1000-C follows the first author's toy decision-boundary study
(docs/background.md §7). Hidden units are the prunable channels; the last Linear is the classifier.
"""
from __future__ import annotations

import torch
from torch import nn

from nnprune.models.resnet_cifar import scaled


class MLP(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 2, width: float = 1.0,
                 hidden: tuple[int, ...] = (1000, 1000, 1000)):
        super().__init__()
        layers: list[nn.Module] = []
        current = in_channels
        for units in hidden:
            layers += [nn.Linear(current, scaled(units, width)), nn.ReLU(inplace=False)]
            current = scaled(units, width)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(current, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Inputs of any shape [N, ...] are read as flat feature vectors.
        return self.classifier(self.features(torch.flatten(x, 1)))
