"""Dataset registry and in-memory loading of the small image datasets through torchvision."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nnprune.errors import UserError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    torchvision_class: str
    folder: str                 # torchvision's folder under the data root
    channels: int
    image_size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int           # random-crop padding for training augmentation (0: none)
    flip: bool                  # horizontal flips make sense (not for digits)
    test_images: int            # images in the test split (the largest test_size)


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec("fashion-mnist", "FashionMNIST", "FashionMNIST", 1, 28, 10,
                                 (0.2860,), (0.3530,), 2, True, 10_000),
    "mnist": DatasetSpec("mnist", "MNIST", "MNIST", 1, 28, 10, (0.1307,), (0.3081,), 2, False, 10_000),
    "cifar10": DatasetSpec("cifar10", "CIFAR10", "cifar-10-batches-py", 3, 32, 10,
                           (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), 4, True, 10_000),
    "cifar100": DatasetSpec("cifar100", "CIFAR100", "cifar-100-python", 3, 32, 100,
                            (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 4, True, 10_000),
}


def dataset_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}", f"use one of: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def load_images(name: str, root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of one split as (uint8 [N, C, H, W], int64 [N]). Never downloads.

    The first load parses torchvision's files and caches the tensors in
    `<root>/.nnprune-cache/` (written atomically); later loads read the cache, since parsing
    costs a second or more in every one of a study's short jobs.
    """
    from nnprune.files import load_torch, save_torch

    cache = Path(root) / ".nnprune-cache" / f"{name}-{'train' if train else 'test'}.pt"
    if cache.is_file():
        try:
            record = load_torch(cache, "dataset cache")
            return record["images"], record["labels"]
        except (UserError, KeyError):
            pass  # a damaged cache is rebuilt from the source files below
    images, labels = _parse(name, root, train)
    try:
        save_torch(cache, {"images": images, "labels": labels})
    except OSError:
        pass  # read-only data root: work without a cache
    return images, labels


def _parse(name: str, root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision

    spec = dataset_spec(name)
    cls = getattr(torchvision.datasets, spec.torchvision_class)
    try:
        dataset = cls(root=str(root), train=train, download=False)
    except RuntimeError as error:
        raise UserError(
            f"dataset {name} not found under {root} ({error})",
            f"run `make setup` or `nnprune fetch-data --dataset {name} --root {root}`",
        ) from None
    images = dataset.data
    if isinstance(images, np.ndarray):      # CIFAR: N x H x W x C numpy
        images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    elif images.dim() == 3:                 # MNIST family: N x H x W tensor
        images = images.unsqueeze(1)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.long)
    return images.to(torch.uint8), labels
