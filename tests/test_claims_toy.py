import numpy as np
import pandas as pd
import pytest
import torch

from nnprune.claims import bootstrap_ci, compare
from nnprune.models import build
from nnprune.pruning import apply_removal, model_layout
from nnprune.scoring import score_model
from nnprune.toy import TOY_DATASETS, global_keep, pruned_forward


def _frame(nuclear, other, other_name="l1"):
    rows = [{"criterion": "nuclear", "seed": i, "m": v} for i, v in enumerate(nuclear)]
    rows += [{"criterion": other_name, "seed": i, "m": v} for i, v in enumerate(other)]
    return pd.DataFrame(rows)


def test_verdict_rule_three_outcomes():
    rng = np.random.default_rng(0)
    base = rng.normal(50, 1, 12)
    assert compare(_frame(base + 2, base), ["seed"], "m").verdict == "supported"
    assert compare(_frame(base - 2, base), ["seed"], "m").verdict == "not supported"
    noisy = base + rng.normal(0, 1, 12)
    assert compare(_frame(noisy, base), ["seed"], "m").verdict == "inconclusive"
    assert compare(_frame(base[:3] + 5, base[:3]), ["seed"], "m").verdict == "inconclusive"  # < 5 pairs


def test_comparator_is_best_other_and_difference_is_paired():
    frame = pd.concat([_frame([1, 2, 3, 4, 5], [0, 0, 0, 0, 0], "weak"),
                       _frame([1, 2, 3, 4, 5], [1, 1, 3, 3, 5], "strong").query("criterion == 'strong'")])
    result = compare(frame, ["seed"], "m")
    assert result.comparator == "strong"
    assert result.pairs == 5
    assert result.mean_difference == pytest.approx(np.mean([0, 1, 0, 1, 0]))


def test_bootstrap_ci_brackets_the_mean():
    values = np.arange(20, dtype=float)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high
    assert high - low < 10


@pytest.mark.parametrize("name", list(TOY_DATASETS))
def test_toy_datasets_shapes_and_balance(name):
    make, classes = TOY_DATASETS[name]
    points, labels = make(400, torch.Generator().manual_seed(0))
    assert points.shape == (400, 2)
    assert torch.bincount(labels).tolist() == [400 // classes] * classes
    again, _ = make(400, torch.Generator().manual_seed(0))
    assert torch.equal(points, again)


def test_global_keep_removes_exact_fraction_and_selection_equals_physical_removal():
    torch.manual_seed(0)
    model = build("mlp", num_classes=3, in_channels=2, hidden=(20, 30, 10)).eval()
    layout = model_layout(model, (2,))
    assert layout.layers == ["features.0", "features.2", "features.4"]
    x = torch.randn(64, 2)
    scores, _ = score_model(model, layout.layers, "nuclear", batches=[(x, torch.zeros(64).long())],
                            limit=64, feature_point="relu")
    # nuclear of a 1x1 map is |activation|: the mean ReLU output over the samples.
    activation = torch.relu(model.features[0](x))
    torch.testing.assert_close(scores["features.0"], activation.abs().mean(0))
    keep = global_keep(layout, scores, 0.5)
    assert sum(len(k) for k in keep.values()) == 60 - 30
    expected = pruned_forward(model, keep)(x)
    removed = {layer: sorted(set(range(len(scores[layer]))) - set(keep[layer].tolist()))
               for layer in layout.layers}
    apply_removal(model, (2,), removed)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
