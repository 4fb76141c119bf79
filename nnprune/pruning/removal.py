"""Physical channel removal with torch-pruning: the channels an allocation chose leave the model."""
from __future__ import annotations

import torch_pruning as tp
from torch import nn

from nnprune.pruning.layout import dependency_graph


def apply_removal(model: nn.Module, input_shape: tuple[int, ...],
                  removed: dict[str, list[int]], graph: tp.DependencyGraph | None = None) -> nn.Module:
    """Physically remove channels (in place) with torch-pruning. `removed` maps group key ->
    channel indices in the unpruned model; `graph` is the unpruned model's dependency graph
    (`layout_and_graph`; built here when not given). Returns the model."""
    modules = dict(model.named_modules())
    if graph is None:
        graph = dependency_graph(model, input_shape)
    for key, indices in removed.items():
        if not indices:
            continue
        root = modules[key]
        fn = tp.prune_conv_out_channels if isinstance(root, nn.Conv2d) else tp.prune_linear_out_channels
        graph.get_pruning_group(root, fn, list(indices)).prune()
    return model
