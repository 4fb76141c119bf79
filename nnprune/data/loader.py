"""Batches from in-memory uint8 tensors, with batched augmentation on the target device.

The whole (small) dataset sits on the device as uint8; each batch is indexed, converted to float,
normalised and augmented as one tensor operation, so no per-image Python work is done.
"""
from __future__ import annotations

from typing import Iterator

import torch


def random_crop(images: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """Zero-pad by `padding` and crop each image at its own offset (`top`, `left`: [B] ints in
    [0, 2 * padding]) to the original size."""
    batch, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    rows = (top[:, None] + torch.arange(height, device=images.device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(width, device=images.device))[:, None, None, :]
    batch_index = torch.arange(batch, device=images.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols]


def random_flip(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Flip horizontally the images where `flip` ([B] bool) is set."""
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
        return self.epoch()

    def epoch(self, limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass: all batches, or the first `limit`.

        The epoch's random numbers (order, crop offsets, flips) are drawn up front on the CPU
        generator, in the order a batch-by-batch loop would draw them (so a seeded run's stream,
        and the generator state a resume saves, are the same), and reach the device in one copy
        per epoch: no host-to-device transfer, and so no stall, inside the training loop. With a
        `limit`, one batch more is drawn than is served, as the loop this replaced did (it built
        the next batch before the caller stopped): seeded short fine-tunes keep their stream."""
        count = self.labels.numel()
        batches = len(self) if limit is None else min(limit, len(self))
        drawn = len(self) if limit is None else min(limit + 1, len(self))
        order = torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        sizes = [min(self.batch_size, count - start) for start in range(0, drawn * self.batch_size,
                                                                        self.batch_size)]
        draws = {"top": [], "left": [], "flip": []}
        for size in sizes:
            if self.crop_padding:
                span = 2 * self.crop_padding + 1
                draws["top"].append(torch.randint(0, span, (size,), generator=self.generator))
                draws["left"].append(torch.randint(0, span, (size,), generator=self.generator))
            if self.flip:
                draws["flip"].append(torch.rand(size, generator=self.generator) < 0.5)
        on_device = {key: torch.cat(values).to(self.device).split(sizes) if values else None
                     for key, values in draws.items()}
        order = order.to(self.device)
        for number, start in enumerate(range(0, batches * self.batch_size, self.batch_size)):
            index = order[start:start + self.batch_size]
            inputs = (self.images[index].float() - self.mean) * self.scale
            if self.crop_padding:
                inputs = random_crop(inputs, self.crop_padding, on_device["top"][number],
                                     on_device["left"][number])
            if self.flip:
                inputs = random_flip(inputs, on_device["flip"][number])
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield inputs, self.labels[index]
