"""Which channels can go: a model's prunable layers and their coupled groups, from torch-pruning.

Prunable layers are the convolutions; Linear layers are prunable only in a network without
convolutions (the MLP), so a CNN's hidden fully connected layer (VGG-16's 512-unit one) keeps all
its units. The final classifier's outputs are never pruned. Coupling comes from torch-pruning's
dependency graph: a *group* is a set of layers whose output channels must be removed together.
  CIFAR ResNets    the stem and every block's second conv of a stage share one residual stream;
                   each block's first conv is a group of its own
  ResNet-50        per stage, the stream: every block's conv3 and the first block's downsample conv
                   (the stem is its own group: stage 1 starts with a downsample conv); each
                   block's conv1 and conv2 are groups of their own
  VGG-16           every conv is its own group
  DenseNet-40      every conv is its own group: a concatenation does not couple the layers it
                   joins, it only routes each producer's channels to its consumers' inputs
  GoogLeNet        every conv is its own group, for the same reason
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from nnprune.models import ZeroPadShortcut
from nnprune.models.mode import in_mode


class ShortcutPruner(tp.pruner.function.BasePruningFunc):
    """torch-pruning handler for `ZeroPadShortcut`: edits its channel map. Input and output
    channels are independent (no intra-layer coupling), like a convolution's."""

    def prune_out_channels(self, layer: ZeroPadShortcut, idxs):
        removed = {int(i) for i in idxs}
        keep = [j for j in range(layer.out_channels) if j not in removed]
        layer.source_index = layer.source_index[keep]
        return layer

    def prune_in_channels(self, layer: ZeroPadShortcut, idxs):
        removed = {int(i) for i in idxs}
        kept = [i for i in range(layer.in_channels) if i not in removed]
        new_position = torch.full((layer.in_channels,), -1, dtype=torch.long)
        new_position[kept] = torch.arange(len(kept))
        source = layer.source_index
        layer.source_index = torch.where(source >= 0, new_position[source.clamp(min=0)], source)
        layer.in_channels = len(kept)
        return layer

    def get_out_channels(self, layer: ZeroPadShortcut) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: ZeroPadShortcut) -> int:
        return layer.in_channels


CUSTOM_PRUNERS = {ZeroPadShortcut: ShortcutPruner()}
PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


@dataclass
class Group:
    key: str                     # name of the first member in module order
    members: list[str]           # layers whose output channels are this group's channels
    channels: int


@dataclass
class Layout:
    """The prunable structure of a model: groups, and prunable layers in module order."""
    groups: list[Group]
    layers: list[str] = field(default_factory=list)


def classifier_name(model: nn.Module) -> str:
    """The output layer: the last Linear (or Conv2d, if no Linear) in module order."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    names = names or [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return names[-1]


def dependency_graph(model: nn.Module, input_shape: tuple[int, ...]) -> tp.DependencyGraph:
    """torch-pruning's dependency graph of `model`, traced in eval mode (the caller's mode is
    given back) on one zero input of shape `input_shape`."""
    example = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    with in_mode(model), torch.enable_grad():
        return tp.DependencyGraph().build_dependency(
            model, example, customized_pruners=CUSTOM_PRUNERS, verbose=False)


def root_types(model: nn.Module) -> tuple[type, ...]:
    """Layer types whose output channels are pruned: convs, or Linear in a conv-free network."""
    classifier = dict(model.named_modules())[classifier_name(model)]
    has_convs = any(isinstance(m, nn.Conv2d) and m is not classifier for m in model.modules())
    return (nn.Conv2d,) if has_convs else (nn.Linear,)


def layout_of(model: nn.Module, graph: tp.DependencyGraph) -> Layout:
    names = {module: name for name, module in model.named_modules()}
    order = {name: i for i, name in enumerate(names.values())}
    classifier = dict(model.named_modules())[classifier_name(model)]
    groups = []
    for group in graph.get_all_groups(root_module_types=root_types(model), ignored_layers=[classifier]):
        members = sorted({names[dep.target.module] for dep, _ in group
                          if isinstance(dep.target.module, PRUNABLE_TYPES)
                          and graph.is_out_channel_pruning_fn(dep.handler)}, key=order.get)
        root = dict(model.named_modules())[members[0]]
        channels = root.out_channels if isinstance(root, nn.Conv2d) else root.out_features
        groups.append(Group(members[0], members, channels))
    groups.sort(key=lambda g: order[g.key])
    layers = sorted((m for g in groups for m in g.members), key=order.get)
    return Layout(groups, layers)


def model_layout(model: nn.Module, input_shape: tuple[int, ...]) -> Layout:
    """Layout of `model` for inputs of shape [C, H, W] (or [features])."""
    return layout_and_graph(model, input_shape)[0]


def layout_and_graph(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[Layout, tp.DependencyGraph]:
    """The layout and the dependency graph it came from; a caller that goes on to build a
    `MacsModel` and remove channels passes the graph along instead of tracing the model again."""
    graph = dependency_graph(model, input_shape)
    return layout_of(model, graph), graph


