import pytest
import torch
from torch import nn

from nnprune.engine.metrics import count_macs, count_params
from nnprune.errors import UserError
from nnprune.models import build
from nnprune.plan.schemes import parse_rates, parse_scheme
from nnprune.pruning.allocation import allocate, build_macs_model
from nnprune.pruning.layout import model_layout
from nnprune.pruning.removal import apply_removal
from nnprune.pruning.scoring import score_model


def test_resnet56_counts_match_published_baseline():
    model = build("resnet56")
    macs, params = count_macs(model, (3, 32, 32)), count_params(model)
    assert abs(macs - 125.49e6) / 125.49e6 < 0.001, macs
    assert abs(params - 0.85e6) / 0.85e6 < 0.01, params
    assert params == 853_018


def test_resnet20_layout_groups_residual_streams():
    layout = model_layout(build("resnet20", width=1.0), (3, 32, 32))
    assert len(layout.layers) == 19            # stem + 9 blocks x 2 convs
    assert len(layout.groups) == 12            # 3 residual streams + 9 inner convs
    stream = layout.groups[0]
    assert stream.members == ["conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"]


def test_pruned_resnet20_channel_counts_and_forward():
    model = build("resnet20", width=1.0, in_channels=1).eval()
    layout = model_layout(model, (1, 28, 28))
    scores, _ = score_model(model, layout.layers, "l1")
    removed = allocate(layout, scores, parse_scheme("uniform:0.5"))
    apply_removal(model, (1, 28, 28), removed)
    assert model.conv1.out_channels == 8
    assert model.layer1[0].conv1.out_channels == 8 and model.layer1[0].conv2.in_channels == 8
    assert model.layer2[0].conv1.in_channels == 8 and model.layer2[0].conv2.out_channels == 16
    assert model.layer3[2].conv2.out_channels == 32 and model.fc.in_features == 32
    assert model.layer3[0].shortcut.in_channels == 16
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    # The l1-lowest half of an inner conv was removed, the highest half kept.
    assert removed["layer1.1.conv1"] == sorted(torch.argsort(scores["layer1.1.conv1"])[:8].tolist())


def test_removing_inner_channels_equals_zeroing_them():
    """Physically removing an inner conv's channels computes what zeroing its BN output does."""
    torch.manual_seed(0)
    model = build("resnet20", width=0.5, in_channels=1).eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    x = torch.randn(4, 1, 28, 28)
    removed = {"layer2.1.conv1": [0, 3, 5, 9], "layer1.0.conv1": [1, 2]}
    with torch.no_grad():
        for key, idx in removed.items():
            bn = dict(model.named_modules())[key.replace("conv1", "bn1")]
            bn.weight[idx] = 0
            bn.bias[idx] = 0
        expected = model(x)
    apply_removal(model, (1, 28, 28), removed)
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_macs_scheme_reaches_target_and_model_agrees_with_fvcore():
    model = build("resnet20", width=0.5).eval()
    layout = model_layout(model, (3, 32, 32))
    scores, _ = score_model(model, layout.layers, "random", seed=0)
    macs_model = build_macs_model(model, (3, 32, 32), layout)
    removed = allocate(layout, scores, parse_scheme("macs:0.4"), macs_model)
    base = count_macs(model, (3, 32, 32))
    predicted = macs_model.macs({k: len(v) for k, v in removed.items()},
                                {g.key: g.channels for g in layout.groups})
    apply_removal(model, (3, 32, 32), removed)
    measured = count_macs(model, (3, 32, 32))
    assert abs(predicted - measured) <= 1
    assert 0.40 <= 1 - measured / base < 0.43


def test_global_allocations_share_one_ranking():
    """`macs:` pruning and the toy study's global allocation remove prefixes of one order: the
    channels a macs: target removes are exactly the same number of channels by count."""
    from nnprune.pruning.allocation import allocate_channels
    from nnprune.toy import global_keep

    model = build("resnet20", width=0.5).eval()
    layout = model_layout(model, (3, 32, 32))
    scores, _ = score_model(model, layout.layers, "l1")
    macs_model = build_macs_model(model, (3, 32, 32), layout)
    by_macs = allocate(layout, scores, parse_scheme("macs:0.4"), macs_model)
    removed = sum(len(v) for v in by_macs.values())
    total = sum(g.channels for g in layout.groups)
    assert 0 < removed < total
    assert allocate_channels(layout, scores, removed / total) == by_macs
    keep = global_keep(layout, scores, removed / total)
    for group in layout.groups:
        for member in group.members:
            assert sorted(set(range(group.channels)) - set(keep[member].tolist())) == by_macs[group.key]


def test_rate_strings_parse_without_eval_and_check_length():
    assert parse_rates("[0.1]+[0.60]*3+[0.0]*2") == [0.1, 0.6, 0.6, 0.6, 0.0, 0.0]
    with pytest.raises(UserError, match="outside"):
        parse_rates("[1.5]")
    with pytest.raises(UserError, match="parse"):
        parse_rates("__import__('os')")
    model = build("resnet20", width=0.25)
    layout = model_layout(model, (3, 32, 32))
    scores, _ = score_model(model, layout.layers, "l1")
    with pytest.raises(UserError, match="has 3 rates but the model has 19"):
        allocate(layout, scores, parse_scheme("rates:[0.5]*3"))


@pytest.mark.parametrize("text", ["uniform:0.3:round_to=8", "preset:hrank:round_to=8",
                                  "macs:0.404:round_to=8", "macs:0.5:round_to=16"])
def test_round_to_keeps_multiples_and_lands_near_the_macs_target(text):
    """Every group keeps a multiple of round_to channels (or all of them); a macs: target is
    reached without the overshoot of a coarse last step (within 2.5 points), and the pruned
    model's fvcore MACs agree with the allocation."""
    torch.manual_seed(0)
    model = build("resnet56").eval()
    shape = (3, 32, 32)
    layout = model_layout(model, shape)
    scores, _ = score_model(model, layout.layers, "l1")
    scheme = parse_scheme(text, "resnet56")
    macs_model = build_macs_model(model, shape, layout) if scheme.kind == "macs" else None
    removed = allocate(layout, scores, scheme, macs_model)
    for group in layout.groups:
        kept = group.channels - len(removed[group.key])
        assert kept == group.channels or kept % scheme.round_to == 0, (group.key, kept)
    assert sum(len(v) for v in removed.values()) > 0
    base = count_macs(model, shape)
    cut = 1 - count_macs(apply_removal(model, shape, removed), shape) / base
    if scheme.kind == "macs":
        assert scheme.value <= cut + 1e-3 <= scheme.value + 0.025, cut


def test_round_to_one_is_the_plain_scheme_and_bad_values_fail():
    from nnprune.plan.schemes import scheme_slug

    assert parse_scheme("macs:0.5:round_to=1").round_to == 1
    assert parse_scheme("macs:0.5").round_to == 1
    assert scheme_slug("macs:0.5:round_to=8") == "macs-0.5-r8"
    assert scheme_slug("preset:hrank:round_to=8") == "preset-hrank-r8"
    for bad in ("macs:0.5:round_to=0", "macs:0.5:round_to=x", "uniform:0.3:round_to="):
        with pytest.raises(UserError, match="round_to"):
            parse_scheme(bad)


def _l1_setup(arch="resnet20", width=0.5):
    model = build(arch, width=width).eval()
    shape = (3, 32, 32)
    layout = model_layout(model, shape)
    return model, shape, layout, build_macs_model(model, shape, layout)


def test_uniform_macs_removes_the_same_share_everywhere_at_the_closest_macs_cut():
    """uniform-macs:0.404 on ResNet-20 (width 0.5): every group loses int(r * n) channels for one
    rate r whatever the scores, and that r gives the MACs cut closest to 40.4% among all uniform
    rates. At this width they step from about 31% (r = 7/32) to about 44% (r = 1/4), so r = 1/4."""
    from nnprune.pruning.allocation import uniform_rate_for_macs, uniform_removed_counts

    model, shape, layout, macs_model = _l1_setup()
    channels = {g.key: g.channels for g in layout.groups}
    base = macs_model.macs({}, channels)
    rate = uniform_rate_for_macs(layout, 0.404, macs_model)
    assert rate == pytest.approx(0.25, abs=1e-6)
    cuts = {k / 32: 1 - macs_model.macs(uniform_removed_counts(layout, k / 32 + 1e-9), channels) / base
            for k in range(32)}
    closest = min(cuts, key=lambda r: (abs(cuts[r] - 0.404), cuts[r]))
    assert cuts[closest] == pytest.approx(1 - macs_model.macs(uniform_removed_counts(layout, rate), channels) / base)
    assert cuts[7 / 32] < 0.35 < 0.42 < cuts[8 / 32] < 0.45, cuts   # the step across the target
    counts = []
    for criterion in ("l1", "random"):
        scores, _ = score_model(model, layout.layers, criterion, seed=1)
        removed = allocate(layout, scores, parse_scheme("uniform-macs:0.404"), macs_model)
        counts.append({key: len(v) for key, v in removed.items()})
        assert all(len(removed[g.key]) == int(0.25 * g.channels) for g in layout.groups)
    assert counts[0] == counts[1]
    cut = 1 - count_macs(apply_removal(model, shape, removed), shape) / count_macs(build("resnet20", width=0.5), shape)
    assert cut == pytest.approx(cuts[8 / 32], abs=1e-6)


def test_max_share_caps_every_group_and_still_reaches_the_target():
    """macs:0.5:max_share=0.4: no group loses more than 40% of its channels (uncapped, the
    global allocation takes more from some group), and the MACs cut still reaches 50%."""
    torch.manual_seed(0)
    model, shape, layout, macs_model = _l1_setup()
    scores, _ = score_model(model, layout.layers, "l1")
    share = {}
    for text in ("macs:0.5", "macs:0.5:max_share=0.4"):
        removed = allocate(layout, scores, parse_scheme(text), macs_model)
        share[text] = max(len(removed[g.key]) / g.channels for g in layout.groups)
        cut = 1 - macs_model.macs({k: len(v) for k, v in removed.items()},
                                  {g.key: g.channels for g in layout.groups}) / macs_model.macs({}, {
                                      g.key: g.channels for g in layout.groups})
        assert 0.5 <= cut < 0.53, (text, cut)
    assert share["macs:0.5"] > 0.4
    assert share["macs:0.5:max_share=0.4"] <= 0.4
    with pytest.raises(UserError, match="cannot be reached"):
        allocate(layout, scores, parse_scheme("macs:0.5:max_share=0.1"), macs_model)


def test_scheme_options_parse_in_any_order_and_name_allocations():
    from nnprune.plan.schemes import scheme_slug

    both = parse_scheme("macs:0.5:max_share=0.5:round_to=8")
    assert (both.kind, both.value, both.round_to, both.max_share) == ("macs", 0.5, 8, 0.5)
    assert parse_scheme("macs:0.5:round_to=8:max_share=0.5") == parse_scheme(
        "macs:0.5:round_to=8:max_share=0.5")
    assert scheme_slug("macs:0.404:max_share=0.5") == "macs-0.404-c0.5"
    assert scheme_slug("uniform-macs:0.404") == "uniform-macs-0.404"
    assert [parse_scheme(t, "resnet56").allocation for t in (
        "macs:0.4", "macs:0.4:max_share=0.5", "uniform-macs:0.4", "uniform:0.3", "preset:hrank")] == [
        "global", "global, cap 0.5", "uniform", "uniform", "per-layer rates"]
    for bad, message in (("uniform:0.3:max_share=0.5", "macs: \\(global\\) allocation only"),
                         ("macs:0.5:max_share=0", "max_share needs"), ("macs:0.5:max_share=1.5", "max_share needs"),
                         ("macs:0.5:round_to=2:round_to=4", "given twice"), ("uniform-macs:1.2", "below 1, got 1.2")):
        with pytest.raises(UserError, match=message):
            parse_scheme(bad)


def test_zero_pad_shortcut_forward_has_no_host_sync():
    """No data-dependent op (torch.nonzero) in the shortcut: a GPU pass never waits for the host,
    and CUDA graphs can capture it. The output still places each source channel and pads zeros."""
    from nnprune.models import ZeroPadShortcut

    shortcut = ZeroPadShortcut(4, 8, 2)
    shortcut.source_index = torch.tensor([-1, 2, 0, -1, 1, 3, -1, -1])
    graph = torch.fx.symbolic_trace(shortcut).graph
    assert not any("nonzero" in str(node.target) for node in graph.nodes)
    x = torch.randn(2, 4, 6, 6)
    out = shortcut(x)
    assert out.shape == (2, 8, 3, 3)
    assert torch.equal(out[:, 1], x[:, 2, ::2, ::2]) and torch.equal(out[:, 4], x[:, 1, ::2, ::2])
    assert not out[:, [0, 3, 6, 7]].any()


def test_in_mode_restores_every_module_mode_even_after_an_exception():
    from nnprune.engine.metrics import accuracy
    from nnprune.models.mode import in_mode

    model = build("resnet20", width=0.25).train()
    model.bn1.eval()                       # a caller's mixed setting: one frozen BatchNorm
    with pytest.raises(RuntimeError, match="boom"):
        with in_mode(model) as inside:
            assert inside is model and not any(m.training for m in model.modules())
            raise RuntimeError("boom")
    assert model.training and model.layer1[0].bn1.training and not model.bn1.training
    model.eval()
    with in_mode(model, training=True):
        assert all(m.training for m in model.modules())
    assert not any(m.training for m in model.modules())

    def failing_batches():
        yield torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.long)
        raise RuntimeError("data loader failed")

    model.train()
    for fast in (True, False):
        with pytest.raises(RuntimeError, match="data loader failed"):
            accuracy(model, failing_batches(), fast=fast)
        assert all(m.training for m in model.modules())


# Channels each group of ResNet-20 (width 0.5: groups of 8, 16 and 32 channels) keeps, recorded
# with the allocation code before its removal steps became `RemovalStep`s and its searches `bisect`.
# Scores: every layer a fixed pattern with no randomness; "ties" repeats five values per layer.
KEPT_BEFORE_REFACTOR = {
    (False, "macs:0.2"): [8, 6, 6, 7, 13, 16, 13, 13, 25, 31, 25, 25],
    (False, "macs:0.4"): [8, 5, 5, 5, 10, 15, 10, 10, 21, 26, 21, 21],
    (False, "macs:0.6"): [6, 4, 4, 5, 9, 11, 9, 9, 18, 21, 18, 18],
    (False, "macs:0.5:round_to=4"): [8, 4, 4, 4, 12, 12, 12, 12, 16, 20, 20, 20],
    (False, "macs:0.5:max_share=0.5"): [8, 5, 5, 5, 9, 12, 9, 9, 18, 22, 18, 18],
    (False, "uniform-macs:0.4"): [6, 6, 6, 6, 12, 12, 12, 12, 24, 24, 24, 24],
    (False, "channels:0.25"): [8, 5, 6, 6, 11, 16, 11, 11, 22, 28, 22, 22],
    (True, "macs:0.2"): [8, 6, 6, 6, 13, 16, 13, 13, 26, 32, 25, 26],
    (True, "macs:0.4"): [8, 6, 5, 5, 13, 13, 10, 10, 19, 26, 24, 19],
    (True, "macs:0.6"): [6, 5, 4, 5, 9, 9, 10, 10, 19, 19, 19, 19],
    (True, "macs:0.5:round_to=4"): [4, 8, 4, 8, 12, 12, 12, 12, 20, 20, 20, 20],
    (True, "macs:0.5:max_share=0.5"): [6, 5, 5, 5, 9, 13, 10, 10, 19, 26, 19, 19],
    (True, "channels:0.25"): [8, 6, 5, 5, 13, 16, 10, 10, 19, 26, 25, 25],
    (True, "channels:0.5"): [4, 5, 4, 3, 9, 9, 7, 7, 13, 13, 19, 19],
}


@pytest.fixture(scope="module")
def resnet20_half():
    model = build("resnet20", width=0.5).eval()
    layout = model_layout(model, (3, 32, 32))
    return model, layout, build_macs_model(model, (3, 32, 32), layout)


def _pattern_scores(model, layout, ties: bool) -> dict[str, torch.Tensor]:
    modules = dict(model.named_modules())
    scores = {}
    for index, name in enumerate(layout.layers):
        channels = modules[name].out_channels
        position = torch.arange(channels, dtype=torch.float64)
        scores[name] = ((position * 7 + index * 3) % (5 if ties else channels) + 1) * (1 + index % 3)
    return scores


@pytest.mark.parametrize("ties, text", list(KEPT_BEFORE_REFACTOR))
def test_global_allocations_keep_the_channels_they_kept_before_the_refactor(ties, text, resnet20_half):
    from nnprune.pruning.allocation import allocate_channels

    model, layout, macs_model = resnet20_half
    scores = _pattern_scores(model, layout, ties)
    if text.startswith("channels:"):
        removed = allocate_channels(layout, scores, float(text.partition(":")[2]))
    else:
        removed = allocate(layout, scores, parse_scheme(text, "resnet20"), macs_model)
    assert [g.channels for g in layout.groups] == [8] * 4 + [16] * 4 + [32] * 4
    assert [g.channels - len(removed[g.key]) for g in layout.groups] == KEPT_BEFORE_REFACTOR[ties, text]


def test_removal_steps_are_named_and_ordered_by_score_group_and_tie(resnet20_half):
    from nnprune.pruning.allocation import RemovalStep, global_removal_order

    model, layout, _ = resnet20_half
    steps = global_removal_order(layout, _pattern_scores(model, layout, ties=True), round_to=4)
    assert all(isinstance(step, RemovalStep) for step in steps)
    assert steps == sorted(steps, key=lambda step: (step.score, step.group, step.tie))
    # round_to=4: a group of 8 loses one step of 4, a group of 32 seven (keeping 4)
    by_group = {g.key: [s for s in steps if s.group == g.key] for g in layout.groups}
    assert len(by_group["conv1"]) == 1 and len(by_group["layer3.0.conv1"]) == 7
    assert all(len(step.channels) == 4 for step in steps)
    # its scores repeat 10, 4, 8, 2, 6 (mean 6.0625 over 32): the first four 2s go first, then the
    # last 2 with three 4s
    first, second = by_group["layer3.0.conv1"][:2]
    assert first == RemovalStep(pytest.approx(2 / 6.0625), "layer3.0.conv1", 0, [3, 8, 13, 18])
    assert (second.score, second.tie, second.channels) == (pytest.approx(4 / 6.0625), 4, [23, 28, 1, 6])
