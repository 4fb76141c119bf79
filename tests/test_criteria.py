import torch

from nnprune.criteria import CRITERIA, feature_rank, nuclear_norm, weight_norm
from nnprune.scoring import score_random


def naive_nuclear(maps):
    n, c = maps.shape[:2]
    out = torch.zeros(c, dtype=torch.float64)
    for channel in range(c):
        for image in range(n):
            out[channel] += torch.linalg.svdvals(maps[image, channel].double()).sum()
    return out / n


def test_nuclear_equals_naive_svdvals_mean():
    maps = torch.randn(5, 4, 7, 6, generator=torch.Generator().manual_seed(0))
    expected = naive_nuclear(maps)
    got = nuclear_norm(maps)
    assert got.shape == (4,)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    # A rank-one map u v^T has nuclear norm |u| |v|: a hand-made case.
    u, v = torch.tensor([3.0, 4.0]), torch.tensor([1.0, 0.0, 0.0])
    single = torch.outer(u, v)[None, None]
    assert abs(nuclear_norm(single).item() - 5.0) < 1e-6


def test_nuclear_streams_over_batches():
    maps = torch.randn(10, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    crit = CRITERIA["nuclear"]
    total = crit.batch_stat(maps[:4]) + crit.batch_stat(maps[4:])
    torch.testing.assert_close(crit.finalize(total, 10), nuclear_norm(maps))


def test_feature_rank_hand_made():
    maps = torch.zeros(2, 2, 4, 4)
    maps[0, 0] = torch.eye(4)           # rank 4
    maps[1, 0, 0, 0] = 1.0              # rank 1
    maps[:, 1] = torch.ones(4, 4)       # rank 1 both
    torch.testing.assert_close(feature_rank(maps), torch.tensor([2.5, 1.0]))


def test_l1_and_l2_equal_filter_norms():
    weight = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    expected_l1 = torch.stack([weight[i].abs().sum() for i in range(6)])
    expected_l2 = torch.stack([weight[i].pow(2).sum().sqrt() for i in range(6)])
    torch.testing.assert_close(CRITERIA["l1"].from_weight(weight), expected_l1)
    torch.testing.assert_close(weight_norm(weight, 2), expected_l2)


def test_random_reproducible_by_seed():
    first = score_random(["a", "b"], {"a": 8, "b": 5}, seed=3)
    again = score_random(["a", "b"], {"a": 8, "b": 5}, seed=3)
    other = score_random(["a", "b"], {"a": 8, "b": 5}, seed=4)
    assert torch.equal(first["a"], again["a"]) and torch.equal(first["b"], again["b"])
    assert not torch.equal(first["a"], other["a"])
    assert first["b"].shape == (5,)
