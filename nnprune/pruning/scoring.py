"""Streaming computation of per-channel scores for every prunable layer.

For data-driven criteria, forward hooks read each prunable layer's *feature point*: the output of
the BatchNorm that directly follows the layer (`bn`), or ReLU of it (`relu`); for a layer with no
BatchNorm right after it (an MLP's Linear), the layer's own output. Each batch's statistic is
added to a running sum, so memory does not depend on the number of scoring images.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable

import torch
from torch import nn

from nnprune.models.mode import in_mode
from nnprune.pruning.criteria import CRITERIA, Criterion, seeded_uniform


def feature_modules(model: nn.Module, layers: list[str], example: torch.Tensor) -> dict[str, str]:
    """For each layer, the module whose output is its feature point: the BatchNorm fed directly
    by the layer's output, else the layer itself. Found by one traced forward pass."""
    modules = dict(model.named_modules())
    outputs: dict[int, str] = {}
    follower: dict[str, str] = {}
    handles = []

    def record(name):
        def hook(module, inputs, output):
            outputs[id(output)] = name
        return hook

    def claim(name):
        def hook(module, inputs):
            source = outputs.get(id(inputs[0]))
            if source is not None and source not in follower:
                follower[source] = name
        return hook

    for name in layers:
        handles.append(modules[name].register_forward_hook(record(name)))
    for name, module in modules.items():
        if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            handles.append(module.register_forward_pre_hook(claim(name)))
    try:
        with torch.no_grad(), in_mode(model):
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return {name: follower.get(name, name) for name in layers}


def score_weights(model: nn.Module, layers: list[str], criterion: Criterion) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    return {name: criterion.from_weight(modules[name].weight) for name in layers}


def score_random(layers: list[str], channels: dict[str, int], seed: int) -> dict[str, torch.Tensor]:
    # Each layer's stream depends on the seed and the layer name only.
    return {name: seeded_uniform(channels[name], seed * 1_000_003 + zlib.crc32(name.encode()))
            for name in layers}


def score_features(model: nn.Module, layers: list[str], criteria: list[Criterion],
                   batches: Iterable[tuple[torch.Tensor, torch.Tensor]], sizes: list[int],
                   feature_point: str | None = None,
                   progress=None) -> dict[tuple[str, int], dict[str, torch.Tensor]]:
    """Scores of every criterion after each number of images in `sizes`, from one pass.

    The images are taken in the order `batches` yields them, so the first 32 images are also
    the first 32 of 2,048: smaller score sets are prefixes of larger ones. Returns
    {(criterion name, size): {layer: Tensor[C]}}.
    """
    sizes = sorted(set(sizes))
    modules = dict(model.named_modules())
    first_inputs = next(iter(batches))[0][:1]
    readers = feature_modules(model, layers, first_inputs)
    totals: dict[tuple[str, str], torch.Tensor] = {}
    captured: dict[str, torch.Tensor] = {}
    needs_grad = any(c.source == "gradients" for c in criteria)
    points = {c.name: feature_point or c.feature_point for c in criteria}

    def accumulate(layer: str, output: torch.Tensor, grad: torch.Tensor | None) -> None:
        """Forward pass (grad None): feature criteria. Backward: gradient criteria only."""
        relu = torch.relu(output) if "relu" in points.values() else None
        for criterion in criteria:
            if (criterion.source == "gradients") != (grad is not None):
                continue
            features = relu if points[criterion.name] == "relu" else output
            # relu(x) * dL/dx equals relu(x) * dL/d relu(x): where x <= 0 both are zero.
            stat = criterion.batch_stat(features, grad) if grad is not None else criterion.batch_stat(features)
            key = (criterion.name, layer)
            totals[key] = totals[key] + stat if key in totals else stat

    def hook(layer):
        def fn(module, inputs, output):
            if needs_grad:
                output.retain_grad()
                captured[layer] = output
            accumulate(layer, output.detach(), None)
        return fn

    handles = [modules[readers[layer]].register_forward_hook(hook(layer)) for layer in layers]
    results: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    used, target = 0, sizes[-1]
    try:
        with in_mode(model):
            for inputs, labels in batches:
                while inputs.shape[0] and used < target:
                    next_size = next(size for size in sizes if size > used)
                    take = min(inputs.shape[0], next_size - used)
                    chunk, chunk_labels = inputs[:take], labels[:take]
                    inputs, labels = inputs[take:], labels[take:]
                    if needs_grad:
                        model.zero_grad(set_to_none=True)
                        with torch.enable_grad():
                            loss = nn.functional.cross_entropy(model(chunk), chunk_labels, reduction="sum")
                            loss.backward()
                        for layer, output in captured.items():
                            accumulate(layer, output.detach(), output.grad)
                        captured.clear()
                    else:
                        with torch.no_grad():
                            model(chunk)
                    used += take
                    if used in sizes:
                        for criterion in criteria:
                            results[(criterion.name, used)] = {
                                layer: criterion.finalize(totals[(criterion.name, layer)], used).cpu()
                                for layer in layers}
                    if progress is not None:
                        progress(used, target)
                if used >= target:
                    break
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
    if used < target:
        raise ValueError(f"only {used} scoring images available, {target} requested")
    return results


def score_model(model: nn.Module, layers: list[str], criterion_name: str, *, batches=None,
                limit: int = 0, seed: int = 0, feature_point: str | None = None,
                progress=None) -> tuple[dict[str, torch.Tensor], int]:
    """Scores per prunable layer (Tensor[C] each) and the number of images used (0 if none)."""
    criterion = CRITERIA[criterion_name]
    modules = dict(model.named_modules())
    if criterion.source == "weights":
        return score_weights(model, layers, criterion), 0
    if criterion.source == "seed":
        channels = {n: modules[n].weight.shape[0] for n in layers}
        return score_random(layers, channels, seed), 0
    results = score_features(model, layers, [criterion], batches, [limit], feature_point, progress)
    return results[(criterion_name, limit)], limit
