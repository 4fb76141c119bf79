"""Seeded label noise on training labels. Test labels are never touched.

`symmetric`: each flipped label moves to a class drawn uniformly from the other classes.
`pairwise`: each flipped label moves to one fixed, similar class (`PAIR_MAPS`); datasets without
a documented map use c -> (c + 1) mod K.
"""
from __future__ import annotations

import torch

from nnprune.errors import UserError
from nnprune.plan.names import NOISE_KINDS

PAIR_MAPS: dict[str, dict[int, int]] = {
    # Fashion-MNIST: 0 T-shirt, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
    # 7 Sneaker, 8 Bag, 9 Ankle boot. Tops swap with tops, footwear cycles within footwear.
    "fashion-mnist": {0: 6, 6: 0, 2: 4, 4: 2, 1: 3, 3: 1, 5: 7, 7: 9, 9: 5, 8: 2},
    # CIFAR-10 (after Patrini et al. 2017, completed so every class has a target):
    # airplane<->bird, automobile<->truck, cat<->dog, deer<->horse, frog->cat, ship->airplane.
    "cifar10": {0: 2, 2: 0, 1: 9, 9: 1, 3: 5, 5: 3, 4: 7, 7: 4, 6: 3, 8: 0},
}



def pair_map(dataset: str, num_classes: int) -> dict[int, int]:
    return PAIR_MAPS.get(dataset, {c: (c + 1) % num_classes for c in range(num_classes)})


def flip_labels(labels: torch.Tensor, rate: float, num_classes: int, seed: int,
                kind: str = "symmetric", dataset: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Flip exactly round(rate * N) labels to a different class.

    Returns (noisy_labels, flipped_indices sorted ascending). Same seed -> same flips.
    """
    if not 0.0 <= rate < 1.0:
        raise UserError(f"label_noise must be in [0, 1), got {rate}", "use e.g. 0.0, 0.2 or 0.4")
    if kind not in NOISE_KINDS:
        raise UserError(f"unknown label noise kind {kind!r}", f"use one of: {', '.join(NOISE_KINDS)}")
    generator = torch.Generator().manual_seed(seed)
    count = round(rate * labels.numel())
    flipped = torch.randperm(labels.numel(), generator=generator)[:count].sort().values
    noisy = labels.clone()
    if count == 0:
        return noisy, flipped
    original = labels[flipped]
    if kind == "symmetric":
        # An offset in 1..K-1 added mod K lands uniformly on the other classes.
        offset = torch.randint(1, num_classes, (count,), generator=generator)
        noisy[flipped] = (original + offset) % num_classes
    else:
        mapping = pair_map(dataset, num_classes)
        noisy[flipped] = torch.tensor([mapping[int(c)] for c in original], dtype=labels.dtype)
    return noisy, flipped
