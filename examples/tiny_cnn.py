"""A small CNN defined outside nnprune, benchmarked as `archs: {"tiny_cnn:small_cnn": {}}`.

nnprune calls `small_cnn(num_classes=..., in_channels=..., width=...)` and prunes the channels of
its convolutions, which it finds in torch-pruning's dependency graph (the classifier is kept).
"""
from torch import nn


class SmallCNN(nn.Module):
    """conv-BN-ReLU x 3 (the last two after a 2x2 max-pool each), global average pool, linear."""

    def __init__(self, num_classes: int, in_channels: int, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = (max(2, round(n * width)) for n in (16, 32, 64))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def small_cnn(num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> nn.Module:
    return SmallCNN(num_classes, in_channels, width)
