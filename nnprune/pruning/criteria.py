"""Channel-importance criteria, and the protocol every criterion follows, built-in or not.

The protocol
------------
A criterion is a function of one prunable layer, declared with `@criterion(...)`:

    from nnprune.pruning.criteria import LayerInputs, criterion

    @criterion(reads="weights")
    def bn_scale(layer: LayerInputs) -> torch.Tensor:
        return layer.bn.weight.detach().abs()         # one score per output channel

What it declares (`criterion(reads, feature_point="bn", finalize=mean_finalize, name=None, summary="")`):
  reads          what it needs, one of
                   "weights"    data-free: the layer's weight and its BatchNorm;
                   "features"   data-driven: feature maps of the scoring images (no labels);
                   "gradients"  data-driven: feature maps and the loss gradient there (uses labels);
                   "seed"       data-free: only the run's seed (the random baseline).
  feature_point  where a data-driven criterion reads maps: "bn", the output of the BatchNorm that
                 follows the layer (the layer's own output where none does), or "relu", ReLU of it.
                 The config's `feature_point` overrides it for every criterion (an ablation).
  finalize       data-driven only: `finalize(total, images) -> Tensor[C]` turns the sum over the
                 scoring images of the function's per-batch results into scores; default the mean.
What it receives: a `LayerInputs` (below): the layer's name, weight and BatchNorm, its number of
output channels and seed, and for data-driven criteria one batch's `features` (and `grads`).
What it returns: for "weights" and "seed", the scores, a tensor of shape [C]; for "features" and
"gradients", this batch's statistic summed over its images (first dimension C; e.g. [C], or
[C, k, k] when `finalize` needs more). Memory does not grow with the number of scoring images.
Scores are one finite number per output channel, higher = keep: the lowest are pruned first.
nnprune checks the shape and finiteness of every layer's scores and names the criterion and the
layer when they are wrong. A criterion may raise `nnprune.errors.UserError` for a layer it cannot
score (e.g. no BatchNorm); the score job then ends with that one line.

A config names a criterion by its built-in name, by `package.module:function` (or
`short=package.module:function`), or by an installed entry point (group `nnprune.criteria`);
see nnprune/plan/plugins.py. The built-in criteria below follow the same protocol.

Feature maps arrive as [B, C, H, W]; a fully connected layer's output [B, C] arrives as
[B, C, 1, 1], so for an MLP unit the nuclear norm of its 1x1 "map" is |activation| and the
`nuclear` score reduces to the mean absolute activation over the scoring samples. `chip` needs
maps of more than one position and stops with a UserError on 1x1 maps. No file I/O and no model
surgery here (see `scoring`, `allocation` and `removal`).
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nnprune.errors import UserError
from nnprune.plan import plugins
from nnprune.plan.names import CRITERION_SOURCES, DATA_DRIVEN_SOURCES, check_registered

_POOL: dict[int, ThreadPoolExecutor] = {}


def as_maps(features: Tensor) -> Tensor:
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
    return _singular_values(as_maps(features).detach()).sum(dim=-1).sum(dim=0)


def nuclear_norm(feature_maps: Tensor) -> Tensor:
    """Energy-aware importance (Yeom et al. 2021): mean over images of ||F[n, c]||_*, the sum of
    the singular values of each channel's H x W map. [N,C,H,W] -> [C]."""
    return (nuclear_norm_sum(feature_maps) / feature_maps.shape[0]).float()


def feature_rank_sum(features: Tensor) -> Tensor:
    """Sum over images of each channel's matrix rank (HRank). [B,C,H,W] -> [C] (float64)."""
    maps = as_maps(features).detach().float()
    return per_matrix(torch.linalg.matrix_rank, maps).double().sum(dim=0)


def feature_rank(feature_maps: Tensor) -> Tensor:
    """HRank importance: mean over images of the matrix rank of each channel's map. -> [C]."""
    return (feature_rank_sum(feature_maps) / feature_maps.shape[0]).float()


def stacked_gram_sum(features: Tensor) -> Tensor:
    """Per channel, sum over images of vec(F[n,c]) vec(F[n,c])^T: [C, HW, HW] (float64).
    Its eigenvalues are the squared singular values of the N x HW stacked matrix M_c."""
    maps = as_maps(features).detach().double().flatten(2)      # B, C, HW
    return torch.einsum("bci,bcj->cij", maps, maps)


def stacked_nuclear_finalize(gram: Tensor, images: int) -> Tensor:
    eigenvalues = torch.linalg.eigvalsh(gram).clamp(min=0)
    return (eigenvalues.sqrt().sum(dim=-1) / images).float()


# One chunk of the CHIP computation holds at most this many float64 matrix entries (32 MiB), so
# its memory is bounded whatever the batch size and the layer's width.
CHIP_CHUNK_ENTRIES = 4 * 2**20


def _gram_nuclear_norms(grams: Tensor, floor: Tensor) -> Tensor:
    """Nuclear norms of the matrices whose Gram matrices are `grams` [..., m, m]: the sum of the
    square roots of the eigenvalues, those at or below `floor` (broadcast against the eigenvalues,
    [..., 1]) counted as zero. Returns [...] (float64)."""
    leading = grams.shape[:-2]
    eigenvalues = per_matrix(torch.linalg.eigvalsh, grams.flatten(0, -3))
    eigenvalues = eigenvalues.reshape(*leading, grams.shape[-1])
    # An eigenvalue of a rank-deficient Gram comes out as +-(rounding of the largest one); its
    # square root would add ~1e-8 of the largest singular value per zero one, so it counts as zero.
    return torch.where(eigenvalues > floor, eigenvalues, 0.0).sqrt().sum(dim=-1)


def _independence_of_images(rows: Tensor) -> Tensor:
    """CI of every channel of each image: rows [b, C, P] (float64, P = H*W positions) -> [b, C].

    Both norms come from Gram matrices. Where C - 1 <= P: zeroing row c of A zeroes row and column
    c of A A^T, whose other eigenvalues are those of the (C-1)-square principal submatrix without
    c. Where P is smaller: A^T A loses the rank-one term a_c a_c^T, a P-square matrix. Either way
    every eigenproblem is at most min(C - 1, P) square, and all of them run as one batch.
    Precision: squaring makes each singular value's error ~1e-16 of the largest squared over it,
    so a CI comes out to ~1e-8 of the layer's largest (float32 scores round at ~6e-8 of themselves);
    per-channel SVDs would cost 1.6-3.3x more on ResNet widths for digits the scores do not keep."""
    channels, positions = rows.shape[1], rows.shape[2]
    if channels - 1 <= positions:
        gram = rows @ rows.mT                                                   # b, C, C
        others = torch.arange(channels, device=rows.device).expand(channels, channels)
        others = others[~torch.eye(channels, dtype=torch.bool, device=rows.device)].view(channels, channels - 1)
        without = gram[:, others[:, :, None], others[:, None, :]]               # b, C, C-1, C-1
    else:
        gram = rows.mT @ rows                                                   # b, P, P
        without = gram[:, None] - rows[..., :, None] * rows[..., None, :]       # b, C, P, P
    # One floor per image, from its full Gram's largest eigenvalue (each submatrix's is no larger):
    # the same zero test on both sides of the difference, at the rounding of forming the Gram.
    full = per_matrix(torch.linalg.eigvalsh, gram)
    floor = full[:, -1:].clamp(min=0) * max(channels, positions) * torch.finfo(torch.float64).eps
    full_norm = torch.where(full > floor, full, 0.0).sqrt().sum(dim=-1)         # b
    return full_norm[:, None] - _gram_nuclear_norms(without, floor[:, None, :])


def channel_independence_sum(features: Tensor) -> Tensor:
    """CHIP (Sui et al. 2021), summed over images: for each image, A is the layer's C x (H*W)
    matrix of maps, and channel c's independence is CI_c = ||A||_* - ||A with row c zeroed||_*.
    [B,C,H,W] -> [C] (float64). In float64 because CI_c is a small difference of two large norms."""
    maps = as_maps(features).detach()
    rows = maps.flatten(2)                                                      # B, C, HW
    channels, positions = rows.shape[1], rows.shape[2]
    side = min(channels - 1, positions)
    images_per_chunk = max(1, CHIP_CHUNK_ENTRIES // max(1, channels * side * side))
    total = torch.zeros(channels, dtype=torch.float64, device=rows.device)
    for start in range(0, rows.shape[0], images_per_chunk):
        total += _independence_of_images(rows[start:start + images_per_chunk].double()).sum(dim=0)
    return total


def channel_independence(feature_maps: Tensor) -> Tensor:
    """CHIP importance: mean over images of CI_c (see `channel_independence_sum`). [N,C,H,W] -> [C]."""
    return (channel_independence_sum(feature_maps) / feature_maps.shape[0]).float()


def zero_fraction_sum(features: Tensor) -> Tensor:
    """Sum over images of the fraction of exactly-zero activations per channel. -> [C]."""
    return (as_maps(features).detach() == 0).double().mean(dim=(2, 3)).sum(dim=0)


def taylor_sum(features: Tensor, grads: Tensor) -> Tensor:
    """Sum over images of |sum over positions of a * dL/da| per channel. -> [C]."""
    product = (as_maps(features).detach() * as_maps(grads).detach()).double()
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
class LayerInputs:
    """What a criterion receives for one prunable layer (for a data-driven one, per batch).

    name      the layer's module name, e.g. "layer1.0.conv1"
    weight    its weight, detached: [C, C_in/groups, kH, kW] (Conv2d) or [C, C_in] (Linear)
    bn        the BatchNorm fed directly by the layer's output (its `.weight` is gamma), or None
    seed      a seed for this layer, from the run's seed and the layer's name ("seed" criteria)
    features  data-driven: this batch's maps at the feature point, [B, C, H, W], detached; else None
    grads     "gradients": dL/d features, the same shape (summed loss over the batch); else None
    """
    name: str
    weight: Tensor
    bn: nn.Module | None = None
    seed: int = 0
    features: Tensor | None = None
    grads: Tensor | None = None

    @property
    def channels(self) -> int:
        """C: the number of scores to return."""
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class Criterion:
    """A declared criterion (see the protocol above). `origin` is `module:function` for one from
    outside the package (None for a built-in), `file` its module's source file."""
    name: str
    summary: str
    reads: str
    fn: Callable[[LayerInputs], Tensor]
    feature_point: str | None = None
    finalize: Callable[[Tensor, int], Tensor] = mean_finalize
    origin: str | None = None
    file: str | None = None

    @property
    def data_driven(self) -> bool:
        return self.reads in DATA_DRIVEN_SOURCES

    def __call__(self, layer: LayerInputs) -> Tensor:
        return self.fn(layer)


MARK = "__nnprune_criterion__"
FEATURE_POINTS = ("bn", "relu")


def criterion(*, reads: str, feature_point: str = "bn", finalize: Callable[[Tensor, int], Tensor] = mean_finalize,
              name: str | None = None, summary: str = ""):
    """Declare a function of `LayerInputs` a criterion (the protocol above); the function itself
    is returned unchanged, with its declaration attached."""
    if reads not in plugins.READS:
        raise ValueError(f"@criterion(reads={reads!r}): reads must be one of {', '.join(plugins.READS)}")
    if feature_point not in FEATURE_POINTS:
        raise ValueError(f"@criterion(feature_point={feature_point!r}): use one of {', '.join(FEATURE_POINTS)}")

    def declare(function: Callable[[LayerInputs], Tensor]):
        doc = (function.__doc__ or "").strip().splitlines()
        declared = Criterion(name or function.__name__, summary or (doc[0] if doc else function.__name__), reads,
                             function, feature_point if reads in DATA_DRIVEN_SOURCES else None, finalize)
        setattr(function, MARK, declared)
        return function
    return declare


@criterion(reads="features", name="nuclear",
           summary="energy-aware: mean nuclear norm of each BN output map (Yeom et al. 2021)")
def _nuclear(layer: LayerInputs) -> Tensor:
    return nuclear_norm_sum(layer.features)


@criterion(reads="features", finalize=stacked_nuclear_finalize, name="nuclear-stacked",
           summary="nuclear norm of the images x (H*W) stack of each channel's maps / N")
def _nuclear_stacked(layer: LayerInputs) -> Tensor:
    return stacked_gram_sum(layer.features)


@criterion(reads="features", feature_point="relu", name="hrank",
           summary="mean matrix rank of each ReLU(BN) output map (Lin et al. 2020)")
def _hrank(layer: LayerInputs) -> Tensor:
    return feature_rank_sum(layer.features)


@criterion(reads="features", feature_point="relu", finalize=lambda total, images: (1.0 - total / images).float(),
           name="apoz", summary="1 - average percentage of zeros after ReLU (Hu et al. 2016)")
def _apoz(layer: LayerInputs) -> Tensor:
    return zero_fraction_sum(layer.features)


@criterion(reads="features", feature_point="relu", name="chip",
           summary="channel independence: drop in the nuclear norm of the C x (H*W) ReLU map matrix "
                   "without the channel (Sui et al. 2021)")
def _chip(layer: LayerInputs) -> Tensor:
    maps = as_maps(layer.features)
    if maps.shape[2] * maps.shape[3] == 1:
        # The C x 1 matrix of an MLP unit (or a 1x1 map) has a single singular value, so CHIP would
        # only rank the channels by activation size: not the independence it stands for.
        raise UserError(f"criterion 'chip' needs feature maps of more than one position (H x W > 1); "
                        f"layer {layer.name!r} has 1 x 1 maps",
                        "use chip on convolutional layers with spatial maps, or another criterion for this model")
    return channel_independence_sum(maps)


@criterion(reads="gradients", name="taylor",
           summary="first-order Taylor |sum a*dL/da| of BN outputs; uses labels, so label noise reaches it "
                   "(Molchanov et al. 2019)")
def _taylor(layer: LayerInputs) -> Tensor:
    return taylor_sum(layer.features, layer.grads)


@criterion(reads="weights", name="l1", summary="L1 norm of each filter's weights (Li et al. 2017)")
def _l1(layer: LayerInputs) -> Tensor:
    return weight_norm(layer.weight, 1)


@criterion(reads="weights", name="l2", summary="L2 norm of each filter's weights")
def _l2(layer: LayerInputs) -> Tensor:
    return weight_norm(layer.weight, 2)


@criterion(reads="weights", name="fpgm",
           summary="distance of each filter to the others, near the geometric median first (He et al. 2019)")
def _fpgm(layer: LayerInputs) -> Tensor:
    return geometric_median_distance(layer.weight)


@criterion(reads="seed", name="random", summary="seeded uniform random scores (baseline)")
def _random(layer: LayerInputs) -> Tensor:
    return seeded_uniform(layer.channels, layer.seed)


CRITERIA: dict[str, Criterion] = {c.name: c for c in (getattr(f, MARK) for f in (
    _nuclear, _nuclear_stacked, _hrank, _apoz, _taylor, _l1, _l2, _fpgm, _random, _chip))}
check_registered("criteria", {name: c.reads for name, c in CRITERIA.items()}, CRITERION_SOURCES)


def layer_seed(seed: int, layer: str) -> int:
    """A layer's seed: depends on the run's seed and the layer's name only."""
    return seed * 1_000_003 + zlib.crc32(layer.encode())


def resolve(entry: str) -> Criterion:
    """The criterion a config or spec names: a built-in name, `[short=]package.module:function`,
    or an installed entry point (group nnprune.criteria). Imports an outside module and checks
    that the name is a function declared with `@criterion`; raises one clear UserError if not."""
    if entry in CRITERIA:
        return CRITERIA[entry]
    name, target, module, function = plugins.load(entry, "criterion", CRITERIA)
    if function is None:
        raise UserError(f"criterion {entry!r}: module {module.__name__!r} has no {target.split(':')[1]!r}",
                        f"name a function that {module.__file__} defines")
    if not callable(function):
        raise UserError(f"criterion {entry!r}: {target} is not callable (a {type(function).__name__})",
                        "name a function decorated with @criterion(reads=...) from nnprune.pruning.criteria")
    declared = getattr(function, MARK, None)
    if not isinstance(declared, Criterion):
        raise UserError(f"criterion {entry!r}: {target} is not declared as a criterion",
                        "decorate it with @criterion(reads=...) from nnprune.pruning.criteria")
    return dataclasses.replace(declared, name=name, origin=target, file=module.__file__)


def check_scores(criterion: Criterion, layer: str, scores, channels: int) -> Tensor:
    """`scores` if they are one finite score per channel, else one clear UserError naming the
    criterion and the layer."""
    where = f"criterion {criterion.name!r} on layer {layer!r}"
    fix = "return one finite score per output channel (higher = keep), a tensor of shape [C]"
    if not isinstance(scores, Tensor):
        raise UserError(f"{where} returned a {type(scores).__name__}, not a tensor", fix)
    if tuple(scores.shape) != (channels,):
        raise UserError(f"{where} returned scores of shape {list(scores.shape)}; the layer has {channels} "
                        "output channels", fix)
    if not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).sum())
        raise UserError(f"{where} returned {bad} NaN or infinite score(s) of {channels}", fix)
    return scores


__all__ = ["CRITERIA", "Criterion", "LayerInputs", "check_scores", "criterion", "resolve", "nuclear_norm",
           "feature_rank", "channel_independence", "weight_norm", "geometric_median_distance", "seeded_uniform"]
