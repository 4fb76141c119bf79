"""Data: datasets in memory, a held-out validation split, training subsets and label noise.

`prepare()` is the one entry point the steps use. The split of the training pool into validation
and training images depends only on `split_seed`; label noise depends on the run `seed`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nnprune.errors import UserError
from nnprune.plan.names import DATASET_FILES, DATASET_NAMES, DATASET_TEST_IMAGES, check_registered
from nnprune.data.datasets import DATASETS, DatasetSpec, dataset_spec, load_images
from nnprune.data.loader import Batches
from nnprune.data.noise import NOISE_KINDS, flip_labels


@dataclass
class DataBundle:
    spec: DatasetSpec
    train_images: torch.Tensor   # uint8 [N, C, H, W]
    train_labels: torch.Tensor   # int64 [N], noisy when label_noise > 0
    clean_train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor     # same noise rate as training: a held-out slice of the same source
    test_images: torch.Tensor
    test_labels: torch.Tensor    # always clean
    flipped_train: torch.Tensor  # indices into the training subset whose labels were flipped
    flipped_val: torch.Tensor

    def batches(self, split: str, batch_size: int, *, train: bool = False, seed: int = 0,
                device: torch.device | str = "cpu", channels_last: bool = False,
                augment: str = "default", drop_last: bool = False) -> Batches:
        """Batches of a split; `train=True` shuffles and augments (`augment`: default = the
        dataset's crop and flip, flip = flips only, none)."""
        images, labels = {
            "train": (self.train_images, self.train_labels),
            "val": (self.val_images, self.val_labels),
            "test": (self.test_images, self.test_labels),
        }[split]
        return Batches(images, labels, batch_size, self.spec.mean, self.spec.std, shuffle=train,
                       crop_padding=self.spec.crop_padding if train and augment == "default" else 0,
                       flip=self.spec.flip and train and augment != "none", seed=seed, device=device,
                       channels_last=channels_last, drop_last=drop_last)


def test_subset(pool: int, test_size: int | None, split_seed: int) -> torch.Tensor | None:
    """Indices (sorted) of the `test_size` test images a run evaluates on: a fixed random subset
    drawn with `split_seed` (the same for every run of a study), or None for the whole test set.
    Meant for toy-size studies (config/smoke.yaml), where evaluating 10,000 images per job would
    be most of the job's time; reported numbers of real studies use the whole test set."""
    if test_size is None or test_size == pool:
        return None
    if not 1 <= test_size <= pool:
        raise UserError(f"test_size {test_size} is outside [1, {pool}] (the test set's size)",
                        f"set test_size to at most {pool}, or remove it to use the whole test set")
    order = torch.randperm(pool, generator=torch.Generator().manual_seed(split_seed + 7_919))
    return order[:test_size].sort().values


def prepare(dataset: str, root: str | Path, *, train_size: int | None = None, val_size: int = 5000,
            label_noise: float = 0.0, noise_kind: str = "symmetric", seed: int = 0,
            split_seed: int = 0, test_size: int | None = None) -> DataBundle:
    """Load `dataset` (`imagenet`: an ImageFolder root, streamed), hold out `val_size` training images, keep `train_size` of the rest
    (all when None), and flip labels of both with rate `label_noise` (seeded by `seed`).
    `test_size`: evaluate on a fixed subset of the test set (`test_subset`); None: all of it."""
    if dataset == "imagenet":
        if test_size is not None:
            raise UserError("test_size is only supported for in-memory datasets, not imagenet",
                            "remove test_size from the config (ImageNet runs use the whole val/ set)")
        from nnprune.data.folder import prepare_folder
        return prepare_folder(root, train_size=train_size, val_size=val_size, label_noise=label_noise,
                              noise_kind=noise_kind, seed=seed, split_seed=split_seed)
    spec = dataset_spec(dataset)
    pool_images, pool_labels = load_images(dataset, root, train=True)
    test_images, test_labels = load_images(dataset, root, train=False)
    subset = test_subset(test_labels.numel(), test_size, split_seed)
    if subset is not None:
        test_images, test_labels = test_images[subset], test_labels[subset]
    pool = pool_labels.numel()
    if val_size < 1 or val_size >= pool:
        raise UserError(f"val_size must be in [1, {pool - 1}] for {dataset}, got {val_size}",
                        "choose a smaller val_size")
    available = pool - val_size
    train_size = available if train_size is None else train_size
    if not 1 <= train_size <= available:
        raise UserError(f"train_size {train_size} is outside [1, {available}] for {dataset} "
                        f"({pool} training images minus val_size {val_size})",
                        f"set train_size to at most {available}")
    order = torch.randperm(pool, generator=torch.Generator().manual_seed(split_seed))
    val_index, train_index = order[:val_size], order[val_size:val_size + train_size]
    clean_train = pool_labels[train_index]
    noisy_train, flipped_train = flip_labels(clean_train, label_noise, spec.num_classes, seed,
                                             noise_kind, dataset)
    noisy_val, flipped_val = flip_labels(pool_labels[val_index], label_noise, spec.num_classes,
                                         seed + 1_000_003, noise_kind, dataset)
    return DataBundle(spec, pool_images[train_index], noisy_train, clean_train,
                      pool_images[val_index], noisy_val, test_images, test_labels,
                      flipped_train, flipped_val)


check_registered("dataset", set(DATASETS) | {"imagenet"}, set(DATASET_NAMES))
check_registered("dataset folder", {n: s.folder for n, s in DATASETS.items()},
                 {n: file.split("/")[0] for n, file in DATASET_FILES.items()})
check_registered("dataset test size", {n: s.test_images for n, s in DATASETS.items()}, DATASET_TEST_IMAGES)

__all__ = ["DATASETS", "DataBundle", "DatasetSpec", "NOISE_KINDS", "Batches", "dataset_spec",
           "flip_labels", "load_images", "prepare", "test_subset"]
