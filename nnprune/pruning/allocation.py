"""How many channels go, and which: a pruning scheme applied to a layout's group scores.

A group's channels are scored by combining its members' scores: each member's score vector is
divided by its own sum (L1 normalisation), then the members are summed. Groups of one member
keep their layer's ranking unchanged (the groups: `nnprune.pruning.layout`).

Schemes (config key `pruning`):
  uniform:<rate>     remove int(rate * n) channels of every group
  rates:<string>     one rate per prunable layer in module order, HRank syntax "[0.1]+[0.6]*35";
                     a group takes the rate of its first member in module order. For an
                     architecture in `models.RATE_UNITS` (GoogLeNet) the string may instead give
                     one rate per unit, as HRank's does (see `layer_rates`)
  preset:hrank       the HRank string of the architecture (docs/background.md §3); docs/presets.md
                     lists what each preset removes
  macs:<fraction>    global: remove the channels with the lowest mean-normalised scores until
                     `fraction` of the conv+linear MACs is gone (see `allocate_macs`)
  uniform-macs:<f>   uniform at the MACs cut of macs:<f>: the smallest one rate for every group
                     that removes at least `f` of the MACs (`uniform_rate_for_macs`), so every
                     criterion removes the same number of channels from every layer
  ...:round_to=<n>   every group keeps a multiple of n channels (or all of them)
  macs:...:max_share=<s>  no group loses more than a share s of its channels (a per-group cap)
"""
from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch_pruning as tp
from torch import nn

from nnprune.errors import UserError
from nnprune.models import RATE_UNITS
from nnprune.plan.schemes import Scheme, check_rates_count
from nnprune.pruning.layout import Layout, dependency_graph

MIN_KEEP = 1  # a group never loses all its channels


def group_scores(layout: Layout, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Combine member scores per group: each member L1-normalised, then summed."""
    combined = {}
    for group in layout.groups:
        total = torch.zeros(group.channels, dtype=torch.float64)
        for member in group.members:
            member_scores = scores[member].double()
            norm = member_scores.abs().sum()
            total += member_scores / norm if norm > 0 else member_scores
        combined[group.key] = total
    return combined


def _lowest(score: torch.Tensor, count: int) -> list[int]:
    """Indices of the `count` lowest scores; ties broken by channel index (stable)."""
    order = torch.sort(score, stable=True).indices
    return sorted(order[:count].tolist())


def rounded_keep(channels: int, keep: int, round_to: int) -> int:
    """`keep` rounded up to a multiple of `round_to`, at most `channels` (all of a group that
    has fewer than `round_to`)."""
    return min(channels, -(-keep // round_to) * round_to)


def allocate_rates(layout: Layout, scores: dict[str, torch.Tensor],
                   layer_rates: dict[str, float], round_to: int = 1) -> dict[str, list[int]]:
    """Removed channel indices per group: the int(rate * n) lowest-scored ones, fewer where the
    kept count is rounded up to a multiple of `round_to`."""
    combined = group_scores(layout, scores)
    removed = {}
    for group in layout.groups:
        keep = group.channels - int(layer_rates[group.key] * group.channels)
        count = min(group.channels - rounded_keep(group.channels, keep, round_to),
                    group.channels - MIN_KEEP)
        removed[group.key] = _lowest(combined[group.key], count)
    return removed


def layer_rates(layout: Layout, rates: list[float], arch: str | None = None) -> dict[str, float]:
    """Compress rate of every prunable layer, from a rate string's rates.

    The rates are one per prunable layer in module order. For an architecture in
    `models.RATE_UNITS` (GoogLeNet: the pre-layer, then each inception module) they may instead
    be one per unit, as in HRank's string: each unit's rate goes to the layers its expansion
    names, every other layer gets 0. The count tells the two forms apart. Any other count raises
    a UserError that states both numbers."""
    layers = layout.layers
    expand = RATE_UNITS.get(arch) if arch else None
    units = expand(layers) if expand else None
    if units is not None and len(rates) == len(units) != len(layers):
        per_layer = {name: 0.0 for name in layers}
        for rate, members in zip(rates, units):
            per_layer.update({name: rate for name in members})
        return per_layer
    check_rates_count(len(rates), len(layers), arch, len(units) if units is not None else None)
    return dict(zip(layers, rates))


def allocate(layout: Layout, scores: dict[str, torch.Tensor], scheme: Scheme,
             macs_model: MacsModel | None = None) -> dict[str, list[int]]:
    """Removed channel indices per group key for `scheme`."""
    if scheme.kind == "uniform":
        return allocate_rates(layout, scores, {g.key: scheme.value for g in layout.groups},
                              scheme.round_to)
    if scheme.kind == "rates":
        per_layer = layer_rates(layout, scheme.value, scheme.arch)
        return allocate_rates(layout, scores, {g.key: per_layer[g.key] for g in layout.groups},
                              scheme.round_to)
    if scheme.kind in ("macs", "uniform-macs") and macs_model is None:
        raise ValueError(f"{scheme.kind}: allocation needs a MacsModel")
    if scheme.kind == "macs":
        return allocate_macs(layout, scores, scheme.value, macs_model, scheme.round_to, scheme.max_share)
    if scheme.kind == "uniform-macs":
        rate = uniform_rate_for_macs(layout, scheme.value, macs_model, scheme.round_to)
        return allocate_rates(layout, scores, {g.key: rate for g in layout.groups}, scheme.round_to)
    raise ValueError(scheme.kind)


def uniform_removed_counts(layout: Layout, rate: float, round_to: int = 1) -> dict[str, int]:
    """Channels each group loses under `uniform:<rate>` (`allocate_rates`), without scores."""
    counts = {}
    for group in layout.groups:
        keep = group.channels - int(rate * group.channels)
        counts[group.key] = min(group.channels - rounded_keep(group.channels, keep, round_to),
                                group.channels - MIN_KEEP)
    return counts


def uniform_rate_for_macs(layout: Layout, fraction: float, macs_model: MacsModel,
                          round_to: int = 1) -> float:
    """The uniform rate whose allocation removes the share of the MACs closest to `fraction`
    (the smaller cut on a tie). The removed counts only change where rate * channels crosses a
    whole number, so the candidates are k / channels for every group; the cut never falls as the
    rate grows, so the closest is the first rate that reaches `fraction` or the one before it.
    Cuts are coarse in narrow networks (ResNet-20 at width 0.5: 31.5% or 43.6% around 40.4%),
    which is why the closest is taken rather than the first at or above the target."""
    channels = {g.key: g.channels for g in layout.groups}
    base = macs_model.macs({}, channels)

    def cut(rate: float) -> float:
        return 1.0 - macs_model.macs(uniform_removed_counts(layout, rate, round_to), channels) / base

    # a hair above k / n, so that int(rate * n) reaches k despite rounding
    candidates = sorted({min(k / g.channels * (1 + 1e-9) + 1e-12, 1 - 1e-12)
                         for g in layout.groups for k in range(g.channels)})
    if cut(candidates[-1]) < fraction:
        raise UserError(f"uniform-macs:{fraction} cannot be reached: the same share removed from every "
                        f"group removes at most {cut(candidates[-1]):.1%} of the MACs",
                        f"choose uniform-macs:{math.floor(cut(candidates[-1]) * 1000) / 1000:g} or less")
    # the first candidate whose cut reaches `fraction` (the last one does, checked above)
    low = bisect_left(candidates, fraction, hi=len(candidates) - 1, key=cut)
    if low > 0 and fraction - cut(candidates[low - 1]) <= cut(candidates[low]) - fraction:
        low -= 1
    return candidates[low]


# ---------------------------------------------------------------- MACs model for global allocation
@dataclass
class MacsModel:
    """Conv/linear MACs as a function of how many channels each group keeps.

    For each prunable-or-affected layer: base MACs, its output group (or None) and, per group,
    how many of its input channels that group's channels feed (`inputs[layer][group]`)."""
    base: dict[str, float]
    out_group: dict[str, str | None]
    in_channels: dict[str, int]
    out_channels: dict[str, int]
    inputs: dict[str, dict[str, int]]

    def macs(self, removed_count: dict[str, int], channels: dict[str, int]) -> float:
        total = 0.0
        for layer, base in self.base.items():
            group = self.out_group[layer]
            out_keep = 1.0 - (removed_count.get(group, 0) / channels[group] if group else 0.0)
            in_removed = sum(removed_count.get(g, 0) / channels[g] * share
                             for g, share in self.inputs[layer].items())
            total += base * out_keep * (1.0 - in_removed / self.in_channels[layer])
        return total


def build_macs_model(model: nn.Module, input_shape: tuple[int, ...], layout: Layout,
                     per_layer: dict[str, float] | None = None,
                     graph: tp.DependencyGraph | None = None) -> MacsModel:
    """The `MacsModel` of an unpruned `model`. `per_layer` (`metrics.layer_macs`, e.g. as stored
    by `train`) and `graph` (from `layout_and_graph`) are computed here when not given."""
    from nnprune.engine.metrics import layer_macs

    if per_layer is None:
        per_layer = layer_macs(model, input_shape)
    modules = dict(model.named_modules())
    if graph is None:
        graph = dependency_graph(model, input_shape)
    names = {module: name for name, module in model.named_modules()}
    out_group = {name: None for name in per_layer}
    inputs: dict[str, dict[str, int]] = {name: {} for name in per_layer}
    for group in layout.groups:
        root = modules[group.key]
        fn = tp.prune_conv_out_channels if isinstance(root, nn.Conv2d) else tp.prune_linear_out_channels
        full = graph.get_pruning_group(root, fn, list(range(group.channels)))
        for dep, idxs in full:
            name = names.get(dep.target.module)
            if name not in per_layer:
                continue
            if graph.is_out_channel_pruning_fn(dep.handler):
                out_group[name] = group.key
            else:
                inputs[name][group.key] = inputs[name].get(group.key, 0) + len(idxs)
    def channels(name: str, attr_conv: str, attr_linear: str) -> int:
        module = modules[name]
        return getattr(module, attr_conv if isinstance(module, nn.Conv2d) else attr_linear)
    return MacsModel(per_layer, out_group,
                     {n: channels(n, "in_channels", "in_features") for n in per_layer},
                     {n: channels(n, "out_channels", "out_features") for n in per_layer}, inputs)


class RemovalStep(NamedTuple):
    """Channels of one group that go together in a global allocation (`global_removal_order`)."""
    score: float            # the highest normalised score among `channels`: the step's place in the order
    group: str              # the group's key
    tie: int                # breaks ties of `score` within a group: first channel index, or rank
    channels: list[int]     # the channel indices removed


def _removal_steps(key: str, normalised: torch.Tensor, round_to: int, max_share: float = 1.0) -> list[RemovalStep]:
    """One group's removal steps, cheapest first.

    A step removes the next lowest-scored channels down to the next multiple of `round_to`
    below the current count (one channel per step with round_to 1), never below
    max(MIN_KEEP, round_to) kept, nor below ceil((1 - max_share) * channels) kept (the cap).
    A step's score is its highest normalised score, so scores never decrease along a group's
    steps; ties break by channel index (round_to 1) or rank."""
    channels = normalised.numel()
    order = torch.sort(normalised, stable=True)
    values, indices = order.values.tolist(), order.indices.tolist()
    steps, removed = [], 0
    capped = math.ceil(round((1.0 - max_share) * channels, 9))
    floor = max(MIN_KEEP, min(round_to, channels), capped)
    keep = (channels - 1) // round_to * round_to     # the next multiple below the current count
    while keep >= floor:
        chunk = indices[removed:channels - keep]
        tie = chunk[0] if round_to == 1 else removed
        steps.append(RemovalStep(values[channels - keep - 1], key, tie, chunk))
        removed, keep = channels - keep, keep - round_to
    return steps


def global_removal_order(layout: Layout, scores: dict[str, torch.Tensor],
                         round_to: int = 1, max_share: float = 1.0) -> list[RemovalStep]:
    """Every group's removal steps (`_removal_steps`) in one list, cheapest first: channels are
    ranked by score / (mean score of their group) across the whole model. Both global allocations
    remove a prefix of it: `allocate_macs` until a share of the MACs is gone, `allocate_channels`
    a share of the channels."""
    combined = group_scores(layout, scores)
    steps = []
    for group in layout.groups:
        normalised = combined[group.key] / combined[group.key].abs().mean().clamp(min=1e-12)
        steps.extend(_removal_steps(group.key, normalised, round_to, max_share))
    steps.sort(key=lambda step: (step.score, step.group, step.tie))
    return steps


def _removed_by(layout: Layout, steps: list[RemovalStep]) -> dict[str, list[int]]:
    """Removed channel indices per group key (sorted) after taking `steps`."""
    removed: dict[str, list[int]] = {g.key: [] for g in layout.groups}
    for step in steps:
        removed[step.group].extend(step.channels)
    return {key: sorted(value) for key, value in removed.items()}


def allocate_channels(layout: Layout, scores: dict[str, torch.Tensor],
                      fraction: float) -> dict[str, list[int]]:
    """Global allocation by channel count: removed channel indices per group key, the
    round(fraction * all channels) lowest in `global_removal_order` (each group keeps at least
    one channel, so fewer go when that many cannot)."""
    total = sum(g.channels for g in layout.groups)
    return _removed_by(layout, global_removal_order(layout, scores)[: int(round(fraction * total))])


def allocate_macs(layout: Layout, scores: dict[str, torch.Tensor], fraction: float,
                  macs_model: MacsModel, round_to: int = 1, max_share: float = 1.0) -> dict[str, list[int]]:
    """Global allocation: channels are removed lowest first in `global_removal_order` (each group
    keeps at least one channel) until at least `fraction` of the base MACs is removed. With
    `round_to`, channels go in steps that leave each group a multiple of `round_to` (see
    `_removal_steps`); with `max_share` < 1, no group loses more than that share of its channels.
    The number of steps taken is the first whose cut reaches `fraction` (`bisect` over the step
    counts: the cut never falls as steps are taken)."""
    steps = global_removal_order(layout, scores, round_to, max_share)
    channels = {g.key: g.channels for g in layout.groups}
    base = macs_model.macs({}, channels)

    def counts(taken: int) -> dict[str, int]:
        """Channels removed per group key by the first `taken` steps."""
        removed: dict[str, int] = {}
        for step in steps[:taken]:
            removed[step.group] = removed.get(step.group, 0) + len(step.channels)
        return removed

    def cut(taken: int) -> float:
        """The share of the base MACs that the first `taken` steps remove."""
        return 1.0 - macs_model.macs(counts(taken), channels) / base

    largest = cut(len(steps))
    if largest < fraction:
        keeps = (f"every group keeps at least {max(MIN_KEEP, round_to)} channel(s)" if max_share >= 1.0
                 else f"no group loses more than a share {max_share:g} of its channels")
        raise UserError(f"macs:{fraction} cannot be reached: the largest MACs cut this model allows is "
                        f"{largest:.1%} ({keeps})",
                        f"choose macs:{math.floor(largest * 1000) / 1000:g} or less "
                        "(or a smaller round_to, or a larger max_share)")
    taken = bisect_left(range(len(steps)), fraction, key=cut)
    chosen = steps[:taken]
    if round_to > 1 and taken > 0:
        chosen = chosen[:-1] + [_closest_last_step(steps[taken - 1:], counts(taken - 1), fraction,
                                                   macs_model, channels, base)]
    return _removed_by(layout, chosen)


def _closest_last_step(candidates: list[RemovalStep], before: dict[str, int], fraction: float,
                       macs_model: MacsModel, channels: dict[str, int], base: float) -> RemovalStep:
    """The step that completes a round_to allocation. Steps are coarse (a 16-channel residual
    stream going to 8 takes a third of its stage's MACs), so the step that first crosses the
    target can overshoot it by ten points. Of each group's next step among `candidates` (the
    steps from the crossing one on; `before`: the channels the steps before it remove), take the
    one that reaches `fraction` with the smallest cut (the lowest-scored on a tie); the crossing
    step itself is a candidate, so one always exists."""
    best, best_cut, seen = None, float("inf"), set()
    for step in candidates:
        if step.group in seen:
            continue
        seen.add(step.group)
        trial = dict(before)
        trial[step.group] = trial.get(step.group, 0) + len(step.channels)
        cut = 1.0 - macs_model.macs(trial, channels) / base
        if fraction <= cut < best_cut:
            best, best_cut = step, cut
    return best
