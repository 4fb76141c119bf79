"""Streaming computation of per-channel scores for every prunable layer, by the criterion
protocol of `criteria` (each criterion gets a `LayerInputs` per layer, and per batch when it
reads data; its scores are checked for shape and finiteness).

For data-driven criteria, forward hooks read each prunable layer's *feature point*: the output of
the BatchNorm that directly follows the layer (`bn`), or ReLU of it (`relu`); for a layer with no
BatchNorm right after it (an MLP's Linear), the layer's own output. Each batch's statistic is
added to a running sum, so memory does not depend on the number of scoring images.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nnprune.errors import UserError
from nnprune.models.mode import in_mode
from nnprune.pruning.criteria import Criterion, LayerInputs, as_maps, check_scores, layer_seed, resolve


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


def batchnorms(model: nn.Module, layers: list[str], readers: dict[str, str]) -> dict[str, nn.Module | None]:
    """Each layer's BatchNorm (the module `feature_modules` found reading its output), or None."""
    modules = dict(model.named_modules())
    return {name: modules[readers[name]] if readers[name] != name else None for name in layers}


def score_free(model: nn.Module, layers: list[str], criterion: Criterion, seed: int = 0,
               bns: dict[str, nn.Module | None] | None = None) -> dict[str, torch.Tensor]:
    """Scores of a data-free criterion (reads weights or seed): one call per layer, checked.
    `bns`: each layer's BatchNorm (None: not looked up, every `bn` is None)."""
    modules = dict(model.named_modules())
    scores = {}
    for name in layers:
        weight = modules[name].weight.detach()
        inputs = LayerInputs(name, weight, (bns or {}).get(name), layer_seed(seed, name))
        with torch.no_grad():
            found = criterion(inputs)
        scores[name] = check_scores(criterion, name, found, inputs.channels).float()
    return scores


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
    bns = batchnorms(model, layers, readers)
    weights = {name: modules[name].weight.detach() for name in layers}
    totals: dict[tuple[str, str], torch.Tensor] = {}
    captured: dict[str, torch.Tensor] = {}
    needs_grad = any(c.reads == "gradients" for c in criteria)
    points = {c.name: feature_point or c.feature_point for c in criteria}

    def accumulate(layer: str, output: torch.Tensor, grad: torch.Tensor | None) -> None:
        """Forward pass (grad None): feature criteria. Backward: gradient criteria only."""
        output = as_maps(output)
        grad = as_maps(grad) if grad is not None else None
        relu = torch.relu(output) if "relu" in points.values() else None
        for criterion in criteria:
            if (criterion.reads == "gradients") != (grad is not None):
                continue
            features = relu if points[criterion.name] == "relu" else output
            # relu(x) * dL/dx equals relu(x) * dL/d relu(x): where x <= 0 both are zero.
            stat = criterion(LayerInputs(layer, weights[layer], bns[layer], features=features, grads=grad))
            if not isinstance(stat, torch.Tensor) or stat.dim() < 1 or stat.shape[0] != weights[layer].shape[0]:
                shape = list(stat.shape) if isinstance(stat, torch.Tensor) else type(stat).__name__
                raise UserError(f"criterion {criterion.name!r} on layer {layer!r} returned a batch statistic of "
                                f"shape {shape}; the layer has {weights[layer].shape[0]} output channels",
                                "return this batch's statistic summed over its images, first dimension C")
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
                                layer: check_scores(criterion, layer,
                                                    criterion.finalize(totals[(criterion.name, layer)], used),
                                                    weights[layer].shape[0]).float().cpu()
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


def score_model(model: nn.Module, layers: list[str], criterion: str | Criterion, *, batches=None,
                limit: int = 0, seed: int = 0, feature_point: str | None = None, example: torch.Tensor | None = None,
                progress=None) -> tuple[dict[str, torch.Tensor], int]:
    """Scores per prunable layer (Tensor[C] each) and the number of images used (0 if none).
    `criterion`: a Criterion or the name `criteria.resolve` takes. A data-free criterion finds
    each layer's BatchNorm from one pass of `example` (else of the first batch; neither: bn None)."""
    criterion = resolve(criterion) if isinstance(criterion, str) else criterion
    if not criterion.data_driven:
        if example is None and batches is not None:
            example = next(iter(batches))[0][:1]
        bns = batchnorms(model, layers, feature_modules(model, layers, example)) if example is not None else None
        return score_free(model, layers, criterion, seed, bns), 0
    results = score_features(model, layers, [criterion], batches, [limit], feature_point, progress)
    return results[(criterion.name, limit)], limit
