"""ImageNet-style ImageFolder data (`root/train/<class>/*`, `root/val/<class>/*`), streamed from
disk through a DataLoader: too large to hold in memory.

Same interface as the in-memory `DataBundle`: a validation split held out of train/ with
`split_seed`, seeded label noise on the training and validation labels, val/ as the clean test
set, and `batches(split, ...)` yielding device tensors. Augmentation follows the ImageNet recipe
(docs/background.md §4): RandomResizedCrop 224 + flip for training; Resize 256 + CenterCrop 224.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nnprune.errors import UserError
from nnprune.data.datasets import DatasetSpec
from nnprune.data.noise import flip_labels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FolderBatches:
    """Iterable of (inputs, labels) on `device`; `generator` drives shuffling (resumable)."""

    def __init__(self, dataset, indices: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool, seed: int, device: torch.device, channels_last: bool, workers: int,
                 drop_last: bool = False):
        self.dataset, self.indices, self.labels = dataset, indices, labels
        self.drop_last = drop_last
        self.batch_size, self.shuffle, self.device = batch_size, shuffle, torch.device(device)
        self.channels_last, self.workers = channels_last, workers
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.indices) // self.batch_size
        return (len(self.indices) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = torch.randperm(len(self.indices), generator=self.generator) if self.shuffle \
            else torch.arange(len(self.indices))
        subset = _Relabelled(self.dataset, self.indices[order].tolist(), self.labels[order].tolist())
        loader = torch.utils.data.DataLoader(subset, batch_size=self.batch_size,
                                             num_workers=self.workers, drop_last=self.drop_last,
                                             pin_memory=self.device.type == "cuda")
        for inputs, labels in loader:
            inputs = inputs.to(self.device, non_blocking=True)
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield inputs, labels.to(self.device, non_blocking=True)


class _Relabelled(torch.utils.data.Dataset):
    def __init__(self, dataset, indices: list[int], labels: list[int]):
        self.dataset, self.indices, self.labels = dataset, indices, labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        image, _ = self.dataset[self.indices[position]]
        return image, self.labels[position]


@dataclass
class FolderBundle:
    spec: DatasetSpec
    train_folder: object
    test_folder: object
    train_index: torch.Tensor
    train_labels: torch.Tensor
    clean_train_labels: torch.Tensor
    val_index: torch.Tensor
    val_labels: torch.Tensor
    test_labels: torch.Tensor
    flipped_train: torch.Tensor
    flipped_val: torch.Tensor
    workers: int = 8

    def batches(self, split: str, batch_size: int, *, train: bool = False, seed: int = 0,
                device: torch.device | str = "cpu", channels_last: bool = False,
                augment: str = "default", drop_last: bool = False) -> FolderBatches:
        import torchvision.transforms as T

        normalise = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        if split == "test":
            folder, index, labels = self.test_folder, torch.arange(len(self.test_labels)), self.test_labels
        else:
            folder = self.train_folder
            index, labels = ((self.train_index, self.train_labels) if split == "train"
                             else (self.val_index, self.val_labels))
        folder.transform = (T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
                                       T.ToTensor(), normalise]) if train and augment != "none" else
                            T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalise]))
        return FolderBatches(folder, index, labels, batch_size, train, seed, device, channels_last,
                             self.workers, drop_last)


def prepare_folder(root: str | Path, *, train_size: int | None, val_size: int, label_noise: float,
                   noise_kind: str, seed: int, split_seed: int, workers: int = 8) -> FolderBundle:
    import torchvision

    root = Path(root)
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise UserError(f"ImageFolder directory {root / part} not found",
                            "set data_root to a folder holding train/ and val/ with one "
                            "sub-folder per class (the standard ImageNet layout)")
    train_folder = torchvision.datasets.ImageFolder(str(root / "train"))
    test_folder = torchvision.datasets.ImageFolder(str(root / "val"))
    if train_folder.classes != test_folder.classes:
        raise UserError(f"train/ and val/ under {root} have different class folders",
                        "use the same class sub-folders in both")
    targets = torch.tensor(train_folder.targets, dtype=torch.long)
    pool = len(targets)
    if not 1 <= val_size < pool:
        raise UserError(f"val_size must be in [1, {pool - 1}], got {val_size}", "choose a smaller val_size")
    train_size = pool - val_size if train_size is None else train_size
    if not 1 <= train_size <= pool - val_size:
        raise UserError(f"train_size {train_size} is outside [1, {pool - val_size}]",
                        f"set train_size to at most {pool - val_size}")
    order = torch.randperm(pool, generator=torch.Generator().manual_seed(split_seed))
    val_index, train_index = order[:val_size], order[val_size:val_size + train_size]
    classes = len(train_folder.classes)
    noisy_train, flipped_train = flip_labels(targets[train_index], label_noise, classes, seed,
                                             noise_kind, "imagenet")
    noisy_val, flipped_val = flip_labels(targets[val_index], label_noise, classes, seed + 1_000_003,
                                         noise_kind, "imagenet")
    spec = DatasetSpec("imagenet", "ImageFolder", str(root), 3, 224, classes, IMAGENET_MEAN,
                       IMAGENET_STD, 0, True, len(test_folder.targets))
    return FolderBundle(spec, train_folder, test_folder, train_index, noisy_train,
                        targets[train_index], val_index, noisy_val,
                        torch.tensor(test_folder.targets, dtype=torch.long), flipped_train,
                        flipped_val, workers)
