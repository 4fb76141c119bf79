import pytest
import torch

from nnprune.data.noise import flip_labels, pair_map
from nnprune.errors import UserError


@pytest.mark.parametrize("kind", ["symmetric", "pairwise"])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.37])
def test_flips_exactly_round_r_n(kind, rate):
    labels = torch.randint(0, 10, (1234,), generator=torch.Generator().manual_seed(0))
    noisy, flipped = flip_labels(labels, rate, 10, seed=5, kind=kind, dataset="fashion-mnist")
    changed = (noisy != labels).nonzero().flatten()
    assert changed.numel() == round(rate * 1234)
    assert torch.equal(changed, flipped)
    if kind == "pairwise" and rate > 0:
        mapping = pair_map("fashion-mnist", 10)
        assert all(mapping[int(a)] == int(b) for a, b in zip(labels[flipped], noisy[flipped]))


def test_noise_reproducible_by_seed():
    labels = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))
    a, fa = flip_labels(labels, 0.2, 10, seed=7)
    b, fb = flip_labels(labels, 0.2, 10, seed=7)
    c, fc = flip_labels(labels, 0.2, 10, seed=8)
    assert torch.equal(a, b) and torch.equal(fa, fb)
    assert not torch.equal(fa, fc)


def test_symmetric_noise_reaches_every_other_class():
    labels = torch.zeros(9000, dtype=torch.long)
    noisy, flipped = flip_labels(labels, 0.5, 10, seed=0)
    counts = torch.bincount(noisy[flipped], minlength=10)
    assert counts[0] == 0
    assert counts[1:].min() > 400  # about 500 each


def test_bad_rate_is_a_clear_error():
    with pytest.raises(UserError, match="label_noise"):
        flip_labels(torch.zeros(10, dtype=torch.long), 1.0, 10, seed=0)


def test_test_subset_is_fixed_sorted_and_checked():
    from nnprune.data import test_subset

    assert test_subset(10_000, None, 0) is None and test_subset(10_000, 10_000, 0) is None
    subset = test_subset(10_000, 2_000, 0)
    assert subset.numel() == 2_000 == subset.unique().numel()
    assert bool((subset[1:] > subset[:-1]).all()) and 0 <= int(subset[0]) and int(subset[-1]) < 10_000
    assert torch.equal(subset, test_subset(10_000, 2_000, 0))       # the same for every run
    assert not torch.equal(subset, test_subset(10_000, 2_000, 1))   # follows split_seed
    with pytest.raises(UserError, match="test_size 10001 is outside"):
        test_subset(10_000, 10_001, 0)
