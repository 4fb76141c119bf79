"""Every paper architecture: size and cost against docs/background.md §5, HRank presets, and
physical removal through concatenations (DenseNet-40, GoogLeNet)."""
import copy

import pytest
import torch
from torch import nn

from nnprune.engine.metrics import count_macs, count_params
from nnprune.errors import UserError
from nnprune.models import build
from nnprune.plan.names import ARCHITECTURES
from nnprune.plan.schemes import HRANK_PRESETS, check_rates_count, parse_rates, parse_scheme
from nnprune.pruning.allocation import allocate, layer_rates
from nnprune.pruning.layout import model_layout
from nnprune.pruning.model_file import load_model, save_model
from nnprune.pruning.removal import apply_removal
from nnprune.pruning.scoring import score_model

CIFAR = (3, 32, 32)
IMAGENET = (3, 224, 224)

# arch: (num_classes, input shape, params, MACs), docs/background.md §5
PUBLISHED = {
    "resnet56": (10, CIFAR, 0.85e6, 125.49e6),
    "resnet110": (10, CIFAR, 1.72e6, 252.89e6),
    "vgg16": (10, CIFAR, 14.98e6, 313.73e6),
    "densenet40": (10, CIFAR, 1.04e6, 282.00e6),
    "googlenet": (10, CIFAR, 6.15e6, 1.52e9),
    "resnet50": (1000, IMAGENET, 25.55e6, 4.11e9),
}

# arch: (prunable layers, MACs removed %, params removed %) by preset:hrank, as docs/presets.md
# lists them (physical removal, conv+linear MACs).
PRESET_RESULTS = {
    "vgg16": (13, 86.8, 94.9),
    "resnet56": (55, 70.7, 72.7),
    "resnet110": (109, 54.8, 61.3),
    "densenet40": (39, 44.3, 38.0),
    "googlenet": (64, 66.0, 61.7),
    "resnet50": (53, 83.2, 72.7),
}


@pytest.mark.parametrize("arch", PUBLISHED)
def test_counts_match_published_baseline(arch):
    num_classes, shape, params, macs = PUBLISHED[arch]
    model = build(arch, num_classes=num_classes)
    measured_macs, measured_params = count_macs(model, shape), count_params(model)
    assert abs(measured_macs - macs) / macs < 0.015, measured_macs
    assert abs(measured_params - params) / params < 0.025, measured_params


@pytest.mark.parametrize("arch", PRESET_RESULTS)
def test_hrank_preset_prunes_physically(arch):
    num_classes, shape = PUBLISHED[arch][:2]
    model = build(arch, num_classes=num_classes).eval()
    layout = model_layout(model, shape)
    layers, macs_cut, params_cut = PRESET_RESULTS[arch]
    assert len(layout.layers) == layers
    assert all(isinstance(dict(model.named_modules())[n], nn.Conv2d) for n in layout.layers)
    scores, _ = score_model(model, layout.layers, "l1")
    removed = allocate(layout, scores, parse_scheme("preset:hrank", arch))
    base_macs, base_params = count_macs(model, shape), count_params(model)
    apply_removal(model, shape, removed)
    with torch.no_grad():
        assert model(torch.randn(2, *shape)).shape == (2, num_classes)
    macs, params = count_macs(model, shape), count_params(model)
    assert macs < base_macs and params < base_params
    assert 100 * (1 - macs / base_macs) == pytest.approx(macs_cut, abs=0.1)
    assert 100 * (1 - params / base_params) == pytest.approx(params_cut, abs=0.1)


def test_hrank_strings_have_one_rate_per_prunable_conv_or_unit():
    lengths = {arch: len(parse_rates(text)) for arch, text in HRANK_PRESETS.items()}
    assert lengths == {"vgg16": 13, "resnet56": 55, "resnet110": 109, "densenet40": 39,
                       "googlenet": 10, "resnet50": 53}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_torch_free_layer_table_matches_every_model(arch):
    """Config parsing checks rate strings against schemes.PRUNABLE_LAYERS / RATE_UNIT_COUNTS
    without building a model: the tables must be what model_layout finds, at any width."""
    from nnprune.models import RATE_UNITS
    from nnprune.plan.schemes import PRUNABLE_LAYERS, RATE_UNIT_COUNTS

    assert set(PRUNABLE_LAYERS) == set(ARCHITECTURES) and set(RATE_UNIT_COUNTS) == set(RATE_UNITS)
    if arch == "mlp":
        forms = [(1.0, 2, (2,)), (0.5, 784, (784,))]
    elif arch == "resnet50":
        forms = [(1.0, 3, (3, 64, 64))]
    else:
        forms = [(0.25, 1, (1, 28, 28)), (0.5, 3, (3, 32, 32))]
    for width, in_channels, shape in forms:
        layers = model_layout(build(arch, in_channels=in_channels, width=width), shape).layers
        assert len(layers) == PRUNABLE_LAYERS[arch], (arch, width, shape)
        if arch in RATE_UNITS:
            assert len(RATE_UNITS[arch](layers)) == RATE_UNIT_COUNTS[arch]
    if arch in HRANK_PRESETS:     # every preset passes the parse-time length check
        check_rates_count(len(parse_rates(HRANK_PRESETS[arch])), PRUNABLE_LAYERS[arch], arch,
                          RATE_UNIT_COUNTS.get(arch))


def test_googlenet_unit_rates_go_to_branch_internal_convs():
    layout = model_layout(build("googlenet", width=0.25), CIFAR)
    rates = layer_rates(layout, parse_rates(HRANK_PRESETS["googlenet"]), "googlenet")
    assert rates["pre_layers.conv"] == 0.1
    assert [rates[f"a3.{c}"] for c in ("branch2.0.conv", "branch3.0.conv", "branch3.1.conv")] == [0.8] * 3
    assert rates["d4.branch3.0.conv"] == 0.85 and rates["b5.branch2.0.conv"] == 0.8
    # The convs that feed the concatenation keep the module's output width.
    outputs = [n for n in layout.layers if n.endswith(("branch1.0.conv", "branch2.1.conv",
                                                       "branch3.2.conv", "branch4.1.conv"))]
    assert len(outputs) == 36 and all(rates[n] == 0.0 for n in outputs)
    assert sum(rate > 0 for rate in rates.values()) == 1 + 9 * 3
    # A per-conv string of 64 rates is the other accepted form; any other count names both forms.
    per_conv = layer_rates(layout, [0.5] * 64, "googlenet")
    assert set(per_conv.values()) == {0.5}
    with pytest.raises(UserError, match=r"has 5 rates but the model has 64 prunable layers \(or 10"):
        layer_rates(layout, [0.5] * 5, "googlenet")


def test_resnet50_layout_is_module_order_with_coupled_streams():
    model = build("resnet50", in_channels=1)
    assert model.conv1.in_channels == 1 and model.conv1.out_channels == 64
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    layout = model_layout(model, (1, 64, 64))
    assert layout.layers[:5] == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3",
                                 "layer1.0.downsample.0"]
    streams = [g.members for g in layout.groups if len(g.members) > 1]
    assert [len(members) for members in streams] == [4, 5, 7, 4]
    assert streams[0] == ["layer1.0.conv3", "layer1.0.downsample.0", "layer1.1.conv3", "layer1.2.conv3"]
    assert len(layout.groups) == 1 + 16 * 2 + 4
    with pytest.raises(UserError, match="fixed channel widths"):
        build("resnet50", width=0.5)


def test_vgg16_hidden_linear_is_not_prunable_and_width_scales():
    model = build("vgg16", width=0.5)
    layout = model_layout(model, CIFAR)
    assert len(layout.layers) == 13 and "classifier.0" not in layout.layers
    assert model.features[0].conv.out_channels == 32 and model.classifier[0].in_features == 256


def test_mlp_hidden_units_prune_and_classifier_stays():
    model = build("mlp", num_classes=4, in_channels=2, width=0.1).eval()
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [100, 100, 100, 4]
    layout = model_layout(model, (2,))
    assert layout.layers == ["features.0", "features.2", "features.4"]
    scores, _ = score_model(model, layout.layers, "l2")
    apply_removal(model, (2,), allocate(layout, scores, parse_scheme("uniform:0.3")))
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [70, 70, 70, 4]
    assert model(torch.randn(5, 2)).shape == (5, 4)
    custom = build("mlp", num_classes=3, in_channels=2, hidden=(8, 6))
    assert [m.out_features for m in custom.modules() if isinstance(m, nn.Linear)] == [8, 6, 3]


def _fed_inputs(model: nn.Module, x: torch.Tensor, producer: str, channel: int) -> dict[str, list[int]]:
    """Input channels of each conv/linear that carry `producer`'s output `channel` directly.

    Found without torch-pruning: every other layer's output is frozen at its unperturbed value,
    the producer's channel is shifted by +10, and the consumers' input channels that change are
    the ones fed by it (through concatenations, BN, ReLU and pooling only)."""
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    outputs, inputs = {}, {}

    def run(perturb: bool) -> dict[str, torch.Tensor]:
        seen, handles = {}, []
        for name, module in layers.items():
            def pre(module, args, name=name):
                seen[name] = args[0].detach().clone()

            def post(module, args, output, name=name):
                if not perturb:
                    outputs[name] = output.detach().clone()
                    return None
                if name != producer:
                    return outputs[name]
                shifted = output.clone()
                shifted[:, channel] += 10.0
                return shifted
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
        try:
            with torch.no_grad():
                model(x)
        finally:
            for handle in handles:
                handle.remove()
        return seen

    inputs = run(perturb=False)
    perturbed = run(perturb=True)
    fed = {}
    for name in layers:
        change = (perturbed[name] - inputs[name]).abs()
        change = change.amax(dim=[d for d in range(change.dim()) if d != 1])
        if (change > 1e-6).any():
            fed[name] = torch.nonzero(change > 1e-6).flatten().tolist()
    return fed


@pytest.mark.parametrize("arch, width, removed", [
    ("densenet40", 0.5, {"conv1": [0, 3], "block1.2.conv": [1], "block1.11.conv": [4, 5],
                         "trans1.conv": [0, 7], "block2.0.conv": [2], "block3.5.conv": [0, 2]}),
    ("googlenet", 0.25, {"pre_layers.conv": [0, 2], "a3.branch1.0.conv": [1],
                         "a3.branch2.0.conv": [3], "a3.branch4.1.conv": [0],
                         "b3.branch3.2.conv": [3], "e4.branch2.1.conv": [0, 9],
                         "b5.branch1.0.conv": [1]}),
])
def test_removal_through_concatenations_equals_cutting_the_channels(arch, width, removed):
    """Physical removal computes what the unpruned model computes when every consumer's input
    weights for the removed channels are zero (BN statistics randomised so that a misrouted
    channel index would show)."""
    torch.manual_seed(0)
    model = build(arch, width=width).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 16, 16)
    cut = copy.deepcopy(model)
    layers = dict(cut.named_modules())
    for producer, channels in removed.items():
        for channel in channels:
            for consumer, columns in _fed_inputs(model, x, producer, channel).items():
                with torch.no_grad():
                    layers[consumer].weight[:, columns] = 0
    with torch.no_grad():
        expected = cut(x)
    apply_removal(model, (3, 16, 16), removed)
    modules = dict(model.named_modules())
    full = dict(build(arch, width=width).named_modules())
    for producer, channels in removed.items():
        assert modules[producer].out_channels == full[producer].out_channels - len(channels)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_pruned_googlenet_round_trips_through_a_model_file(tmp_path):
    shape = (1, 16, 16)
    build_args = {"num_classes": 10, "in_channels": 1, "width": 0.25}
    model = build("googlenet", **build_args).eval()
    layout = model_layout(model, shape)
    scores, _ = score_model(model, layout.layers, "random", seed=3)
    removed = allocate(layout, scores, parse_scheme("preset:hrank", "googlenet"))
    apply_removal(model, shape, removed)
    save_model(tmp_path / "model.pt", model, "googlenet", build_args, shape, removed)
    loaded, meta = load_model(tmp_path / "model.pt")
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded.a3.branch2[0].conv.out_channels == model.a3.branch2[0].conv.out_channels == 5
