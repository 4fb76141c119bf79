"""CHIP (Sui et al. 2021), the channel-independence criterion: against a naive per-image,
per-channel nuclear-norm reference, its defining properties, and its one clear error on 1 x 1 maps."""
import pytest
import torch

from nnprune.errors import UserError
from nnprune.plan.names import CRITERION_SOURCES, SPATIAL_CRITERIA, TOY_CRITERIA
from nnprune.pruning import criteria
from nnprune.pruning.criteria import CRITERIA, LayerInputs, channel_independence


def naive_chip(maps: torch.Tensor) -> torch.Tensor:
    """Mean over images of ||A||_* - ||A with row c zeroed||_*, one SVD per image and channel."""
    images, channels = maps.shape[:2]
    scores = torch.zeros(channels, dtype=torch.float64)
    for image in range(images):
        matrix = maps[image].reshape(channels, -1).double()
        full = torch.linalg.matrix_norm(matrix, "nuc")
        for channel in range(channels):
            without = matrix.clone()
            without[channel] = 0.0
            scores[channel] += full - torch.linalg.matrix_norm(without, "nuc")
    return scores / images


def streamed(maps: torch.Tensor, split: int = 1) -> torch.Tensor:
    """CHIP's scores through the protocol, fed in two batches as scoring feeds them."""
    chip = CRITERIA["chip"]
    total = sum(chip(LayerInputs("layer", torch.zeros(maps.shape[1], 1), features=part))
                for part in (maps[:split], maps[split:]))
    return chip.finalize(total, maps.shape[0])


@pytest.mark.parametrize("shape", [(3, 5, 4, 4),      # C - 1 <= H*W: principal submatrices of A A^T
                                   (3, 7, 2, 2)])     # C - 1 > H*W: rank-one downdates of A^T A
def test_chip_equals_naive_per_image_per_channel_reference(shape):
    maps = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = naive_chip(maps)
    got = streamed(maps)
    assert got.dtype == torch.float32 and got.shape == (shape[1],)
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=0.0)
    assert CRITERIA["chip"].reads == "features" and CRITERIA["chip"].feature_point == "relu"


def test_chip_of_a_dead_channel_is_zero():
    """Zeroing a row that is already zero leaves A as it was: CI exactly 0, pruned first."""
    maps = torch.relu(torch.randn(3, 5, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    maps[:, 3] = 0.0
    got = channel_independence(maps)
    assert abs(got[3].item()) < 1e-9
    assert got.argmin().item() == 3 and bool((got[[0, 1, 2, 4]] > 0.1).all())


def test_a_duplicated_channel_scores_below_an_independent_one_of_the_same_norm():
    """CHIP's point: a channel the others already span loses less nuclear norm when removed."""
    generator = torch.Generator().manual_seed(2)
    maps = torch.randn(3, 5, 4, 4, generator=generator, dtype=torch.float64)
    maps[:, 1] = maps[:, 0]                                              # a copy of channel 0
    norms = maps[:, 1].flatten(1).norm(dim=1)
    maps[:, 2] *= (norms / maps[:, 2].flatten(1).norm(dim=1))[:, None, None]   # same norm, independent
    got = channel_independence(maps)
    torch.testing.assert_close(got.double(), naive_chip(maps), rtol=1e-6, atol=1e-9)
    assert got[1] < got[2] and got[0] < got[2]
    assert got[1] < 0.8 * got[2], got                                    # by a margin, not by rounding


def test_chip_hand_made_orthogonal_and_duplicated_rows():
    """Rows a, a, b with a and b orthogonal and |a| = |b| = 5: the singular values are sqrt(2)|a|
    and |b|, so removing b loses |b| = 5, and removing a copy of a loses (sqrt(2) - 1)|a|."""
    maps = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    maps[0, 0, 0] = maps[0, 1, 0] = torch.tensor([3.0, 4.0])            # a, and its copy
    maps[0, 2, 1] = torch.tensor([0.0, 5.0])                            # b, on other positions
    expected = torch.tensor([(2 ** 0.5 - 1) * 5, (2 ** 0.5 - 1) * 5, 5.0], dtype=torch.float64)
    torch.testing.assert_close(criteria.channel_independence_sum(maps), expected, rtol=1e-12, atol=1e-12)


def test_chip_memory_chunks_do_not_change_the_scores(monkeypatch):
    maps = torch.randn(6, 5, 3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    whole = criteria.channel_independence_sum(maps)
    monkeypatch.setattr(criteria, "CHIP_CHUNK_ENTRIES", 1)                # one image per chunk
    torch.testing.assert_close(criteria.channel_independence_sum(maps), whole, rtol=1e-12, atol=1e-12)


def test_chip_scores_every_conv_of_a_resnet():
    """Through score_model: one score per channel of each of the 19 convs, none negative (deleting
    a row never raises a singular value, so ||A||_* never grows by it)."""
    from nnprune.models import build
    from nnprune.pruning.layout import model_layout
    from nnprune.pruning.scoring import score_model

    torch.manual_seed(0)
    model = build("resnet20", width=0.25, in_channels=1).eval()
    layers = model_layout(model, (1, 28, 28)).layers
    scores, used = score_model(model, layers, "chip", batches=[(torch.randn(6, 1, 28, 28), torch.zeros(6).long())],
                               limit=6)
    modules = dict(model.named_modules())
    assert used == 6 and len(scores) == len(layers) == 19
    assert all(scores[layer].shape == (modules[layer].out_channels,) for layer in layers)
    assert min(float(s.min()) for s in scores.values()) >= -1e-6


def _mlp_and_samples():
    from nnprune.models import build
    from nnprune.pruning.layout import model_layout

    torch.manual_seed(0)
    model = build("mlp", num_classes=2, in_channels=2, hidden=(6, 4)).eval()
    samples = torch.randn(8, 2), torch.arange(8) % 2
    return model, model_layout(model, (2,)).layers, samples


def test_chip_on_1x1_maps_stops_with_what_it_needs():
    from nnprune.pruning.scoring import score_model

    model, layers, samples = _mlp_and_samples()
    with pytest.raises(UserError) as raised:
        score_model(model, layers, "chip", batches=[samples], limit=8)
    assert raised.value.problem == ("criterion 'chip' needs feature maps of more than one position (H x W > 1); "
                                    f"layer {layers[0]!r} has 1 x 1 maps")
    assert raised.value.fix == "use chip on convolutional layers with spatial maps, or another criterion for this model"


def test_toy_criteria_are_those_that_score_mlp_units():
    """The toy study's model is an MLP: it offers every criterion but the spatial ones, and each of
    those it offers scores the units."""
    from nnprune.pruning.scoring import score_model

    assert set(TOY_CRITERIA) | set(SPATIAL_CRITERIA) == set(CRITERION_SOURCES)
    assert "chip" in SPATIAL_CRITERIA and "chip" not in TOY_CRITERIA
    model, layers, samples = _mlp_and_samples()
    for name in TOY_CRITERIA:
        scores, _ = score_model(model, layers, name, batches=[samples], limit=8)
        assert [scores[layer].shape[0] for layer in layers] == [6, 4], name


def test_toy_command_with_chip_exits_2_with_one_error(tmp_path, capsys):
    """Through the CLI: exit code 2, the problem on one line and the fix on the next, no traceback."""
    from nnprune.pipeline.cli import main

    threads = torch.get_num_threads()
    try:
        code = main(["toy", "--dataset", "moons", "--seeds", "1", "--width", "0.01", "--steps", "2",
                     "--train-points", "40", "--test-points", "20", "--score-per-class", "2", "--fractions", "0.5",
                     "--input-noise", "0.1", "--grid", "8", "--criteria", "chip", "--device", "cpu",
                     "--threads", "1", "--out", str(tmp_path / "toy")])
    finally:
        torch.set_num_threads(threads)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert lines == ["nnprune toy: error: criterion 'chip' needs feature maps of more than one position "
                     "(H x W > 1); layer 'features.0' has 1 x 1 maps",
                     "  fix: use chip on convolutional layers with spatial maps, or another criterion for this model"]
