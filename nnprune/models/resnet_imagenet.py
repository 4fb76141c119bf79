"""ResNet-50 for ImageNet: torchvision's model, randomly initialised.

25.56M parameters, 4.09G conv+linear MACs at 3x224x224. Only the stem conv is replaced when the
input has other than 3 channels, and ReLUs are made out of place. torchvision fixes the channel
widths, so `width` must be 1.
"""
from __future__ import annotations

from torch import nn

from nnprune.errors import UserError


def resnet50(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """torchvision's ResNet-50 (no pretrained weights) with `in_channels` input channels."""
    if width != 1.0:
        raise UserError(f"resnet50 has fixed channel widths, got width={width}",
                        "use width 1.0 for resnet50, or a CIFAR architecture to vary the width")
    # Imported here: torchvision pulls in torch._dynamo (1-2 s), which every short job of a
    # study would otherwise pay for at start-up just by importing the model registry.
    import torchvision

    model = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            # Scoring keeps BatchNorm outputs for gradient criteria until after the backward
            # pass; an in-place ReLU would overwrite them with their rectified values.
            module.inplace = False
    if in_channels != 3:
        stem = model.conv1
        model.conv1 = nn.Conv2d(in_channels, stem.out_channels, stem.kernel_size, stem.stride,
                                stem.padding, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model
