"""Batches from in-memory uint8 tensors, with batched augmentation on the target device.

The whole (small) dataset sits on the device as uint8; each batch is indexed, converted to float,
normalised and augmented as one tensor operation, so no per-image Python work is done.
"""
from __future__ import annotations

from typing import Iterator

import torch


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` and take one random crop of the original size per image."""
    batch, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(images.device)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator).to(images.device)
    rows = (top[:, None] + torch.arange(height, device=images.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(width, device=images.device))[:, None, None, :]
    batch_index = torch.arange(batch, device=images.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2."""
    flip = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(3), images)


class Batches:
    """Iterate (inputs float [B,C,H,W] normalised, labels int64 [B]) over in-memory tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 mean: tuple[float, ...], std: tuple[float, ...], *, shuffle: bool = False,
                 crop_padding: int = 0, flip: bool = False, seed: int = 0,
                 device: torch.device | str = "cpu", channels_last: bool = False,
                 drop_last: bool = False):
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.crop_padding, self.flip = shuffle, crop_padding, flip
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, device=self.device).view(shape) * 255.0
        self.scale = 1.0 / (torch.tensor(std, device=self.device).view(shape) * 255.0)

    def __len__(self) -> int:
        full, rest = divmod(self.labels.numel(), self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = self.labels.numel()
        order = torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        order = order.to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            inputs = (self.images[index].float() - self.mean) * self.scale
            if self.crop_padding:
                inputs = random_crop(inputs, self.crop_padding, self.generator)
            if self.flip:
                inputs = random_flip(inputs, self.generator)
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield inputs, self.labels[index]
