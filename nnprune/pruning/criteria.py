"""Channel-importance criteria: pure functions from tensors to one score per channel.

Low score = pruned first. No file I/O and no model surgery here (see `scoring` and `pruning`).

Data-driven criteria stream: each has a `batch_stat(features, grads)` whose results are summed
over batches, and a `finalize(total, images)` that turns the sum into scores. Memory therefore
does not grow with the number of scoring images.

Feature maps arrive as [B, C, H, W]; a fully connected layer's output [B, C] is treated as
[B, C, 1, 1], so for an MLP unit the nuclear norm of its 1x1 "map" is |activation| and the
`nuclear` score reduces to the mean absolute activation over the scoring samples.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor

from nnprune.plan.names import CRITERION_SOURCES, DATA_DRIVEN_SOURCES, check_registered

_POOL: dict[int, ThreadPoolExecutor] = {}


def _as_maps(features: Tensor) -> Tensor:
    return features if features.dim() == 4 else features.reshape(*features.shape[:2], 1, 1)


def per_matrix(function: Callable[[Tensor], Tensor], matrices: Tensor) -> Tensor:
    """`function` (a batched torch.linalg call) on [B, C, m, n] matrices, the batch split over
    torch's CPU threads. Why: on the CPU torch runs one LAPACK call per matrix in a serial loop
    on one core, and each call is too small to use a second one. Every matrix gets the same
    call as without the split, so results are bit-identical."""
    workers = torch.get_num_threads()
    if matrices.device.type != "cpu" or workers < 2 or matrices.shape[0] < workers:
        return function(matrices)
    pool = _POOL.get(workers) or _POOL.setdefault(workers, ThreadPoolExecutor(workers))
    return torch.cat(list(pool.map(function, matrices.chunk(workers))))


def _singular_values(maps: Tensor) -> Tensor:
    """Singular values of each [m, n] map, as the square roots of the eigenvalues of its
    min(m, n)-square Gram matrix in float64: a symmetric eigenproblem costs LAPACK less than an
    SVD. Squaring in float64 keeps the error of every singular value below ~1e-7 of the largest
    (float32 SVD: ~1e-7 too), far inside the 1e-4 tolerance of a score."""
    maps = maps.double()
    gram = maps @ maps.mT if maps.shape[-2] <= maps.shape[-1] else maps.mT @ maps
    return per_matrix(torch.linalg.eigvalsh, gram).clamp(min=0).sqrt()


def nuclear_norm_sum(features: Tensor) -> Tensor:
    """Sum over images of each channel's per-map nuclear norm. [B,C,H,W] -> [C] (float64)."""
    return _singular_values(_as_maps(features).detach()).sum(dim=-1).sum(dim=0)


def nuclear_norm(feature_maps: Tensor) -> Tensor:
    """Energy-aware importance (Yeom et al. 2021): mean over images of ||F[n, c]||_*, the sum of
    the singular values of each channel's H x W map. [N,C,H,W] -> [C]."""
    return (nuclear_norm_sum(feature_maps) / feature_maps.shape[0]).float()


def feature_rank_sum(features: Tensor) -> Tensor:
    """Sum over images of each channel's matrix rank (HRank). [B,C,H,W] -> [C] (float64)."""
    maps = _as_maps(features).detach().float()
    return per_matrix(torch.linalg.matrix_rank, maps).double().sum(dim=0)


def feature_rank(feature_maps: Tensor) -> Tensor:
    """HRank importance: mean over images of the matrix rank of each channel's map. -> [C]."""
    return (feature_rank_sum(feature_maps) / feature_maps.shape[0]).float()


def stacked_gram_sum(features: Tensor) -> Tensor:
    """Per channel, sum over images of vec(F[n,c]) vec(F[n,c])^T: [C, HW, HW] (float64).
    Its eigenvalues are the squared singular values of the N x HW stacked matrix M_c."""
    maps = _as_maps(features).detach().double().flatten(2)      # B, C, HW
    return torch.einsum("bci,bcj->cij", maps, maps)


def stacked_nuclear_finalize(gram: Tensor, images: int) -> Tensor:
    eigenvalues = torch.linalg.eigvalsh(gram).clamp(min=0)
    return (eigenvalues.sqrt().sum(dim=-1) / images).float()


def zero_fraction_sum(features: Tensor) -> Tensor:
    """Sum over images of the fraction of exactly-zero activations per channel. -> [C]."""
    return (_as_maps(features).detach() == 0).double().mean(dim=(2, 3)).sum(dim=0)


def taylor_sum(features: Tensor, grads: Tensor) -> Tensor:
    """Sum over images of |sum over positions of a * dL/da| per channel. -> [C]."""
    product = (_as_maps(features).detach() * _as_maps(grads).detach()).double()
    return product.sum(dim=(2, 3)).abs().sum(dim=0)


def mean_finalize(total: Tensor, images: int) -> Tensor:
    return (total / images).float()


def weight_norm(weight: Tensor, order: int) -> Tensor:
    """Norm of each output filter's weights (Li et al. 2017). [C_out, ...] -> [C_out]."""
    return weight.detach().flatten(1).norm(p=order, dim=1).float()


def geometric_median_distance(weight: Tensor) -> Tensor:
    """FPGM (He et al. 2019): sum of Euclidean distances from each filter to all others. Filters
    close to the geometric median (small sum) are the most replaceable and pruned first."""
    flat = weight.detach().flatten(1).double()
    return torch.cdist(flat, flat).sum(dim=1).float()


def seeded_uniform(channels: int, seed: int) -> Tensor:
    """Uniform random scores in [0, 1), reproducible from `seed`."""
    return torch.rand(channels, generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class Criterion:
    """One importance criterion. `source` says what it reads: weights, features (forward maps),
    gradients (maps and their gradients; uses labels) or seed."""
    name: str
    summary: str
    source: str
    feature_point: str | None = None
    batch_stat: Callable[..., Tensor] | None = None
    finalize: Callable[[Tensor, int], Tensor] = mean_finalize
    from_weight: Callable[[Tensor], Tensor] | None = None

    @property
    def data_driven(self) -> bool:
        return self.source in DATA_DRIVEN_SOURCES


CRITERIA: dict[str, Criterion] = {c.name: c for c in [
    Criterion("nuclear", "energy-aware: mean nuclear norm of each BN output map (Yeom et al. 2021)",
              "features", "bn", nuclear_norm_sum),
    Criterion("nuclear-stacked", "nuclear norm of the images x (H*W) stack of each channel's maps / N",
              "features", "bn", stacked_gram_sum, stacked_nuclear_finalize),
    Criterion("hrank", "mean matrix rank of each ReLU(BN) output map (Lin et al. 2020)",
              "features", "relu", feature_rank_sum),
    Criterion("apoz", "1 - average percentage of zeros after ReLU (Hu et al. 2016)",
              "features", "relu", zero_fraction_sum,
              lambda total, images: (1.0 - total / images).float()),
    Criterion("taylor", "first-order Taylor |sum a*dL/da| of BN outputs; uses labels, so label "
              "noise reaches it (Molchanov et al. 2019)", "gradients", "bn", taylor_sum),
    Criterion("l1", "L1 norm of each filter's weights (Li et al. 2017)", "weights",
              from_weight=lambda w: weight_norm(w, 1)),
    Criterion("l2", "L2 norm of each filter's weights", "weights",
              from_weight=lambda w: weight_norm(w, 2)),
    Criterion("fpgm", "distance of each filter to the others, near the geometric median first "
              "(He et al. 2019)", "weights", from_weight=geometric_median_distance),
    Criterion("random", "seeded uniform random scores (baseline)", "seed"),
]}
check_registered("criteria", {name: c.source for name, c in CRITERIA.items()}, CRITERION_SOURCES)

__all__ = ["CRITERIA", "Criterion", "nuclear_norm", "feature_rank",
           "weight_norm", "geometric_median_distance", "seeded_uniform"]
