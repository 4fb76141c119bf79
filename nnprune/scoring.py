"""Streaming computation of per-channel scores for every prunable layer.

For data-driven criteria, forward hooks read each prunable layer's *feature point*: the output of
the BatchNorm that directly follows the layer (`bn`), or ReLU of it (`relu`); for a layer with no
BatchNorm right after it (an MLP's Linear), the layer's own output. Each batch's statistic is
added to a running sum, so memory does not depend on the number of scoring images.
"""
from __future__ import annotations

import zlib
from typing import Iterable

import torch
from torch import nn

from .criteria import CRITERIA, Criterion, seeded_uniform


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
        with torch.no_grad():
            model.eval()(example)
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


def score_features(model: nn.Module, layers: list[str], criterion: Criterion,
                   batches: Iterable[tuple[torch.Tensor, torch.Tensor]], limit: int,
                   feature_point: str | None = None, progress=None) -> tuple[dict[str, torch.Tensor], int]:
    """Run up to `limit` images through `model` and return (scores per layer, images used)."""
    point = feature_point or criterion.feature_point
    modules = dict(model.named_modules())
    first_inputs = next(iter(batches))[0][:1]
    readers = feature_modules(model, layers, first_inputs)
    totals: dict[str, torch.Tensor] = {}
    captured: dict[str, torch.Tensor] = {}
    needs_grad = criterion.source == "gradients"

    def transform(output: torch.Tensor) -> torch.Tensor:
        return torch.relu(output) if point == "relu" else output

    def hook(layer):
        def fn(module, inputs, output):
            features = transform(output)
            if needs_grad:
                features.retain_grad()
                captured[layer] = features
            else:
                stat = criterion.batch_stat(features)
                totals[layer] = totals[layer] + stat if layer in totals else stat
        return fn

    handles = [modules[readers[layer]].register_forward_hook(hook(layer)) for layer in layers]
    model.eval()
    used = 0
    try:
        for inputs, labels in batches:
            if used >= limit:
                break
            inputs, labels = inputs[: limit - used], labels[: limit - used]
            if needs_grad:
                model.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    loss = nn.functional.cross_entropy(model(inputs), labels, reduction="sum")
                    loss.backward()
                for layer, features in captured.items():
                    stat = criterion.batch_stat(features, features.grad)
                    totals[layer] = totals[layer] + stat if layer in totals else stat
                captured.clear()
            else:
                with torch.no_grad():
                    model(inputs)
            used += labels.numel()
            if progress is not None:
                progress(used, limit)
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
    return {layer: criterion.finalize(totals[layer], used).cpu() for layer in layers}, used


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
    return score_features(model, layers, criterion, batches, limit, feature_point, progress)
