"""The CUDA path: `pytest -m gpu` on a machine with a GPU (benchmarks/gpu_check.sh runs it).

`make test` and CI deselect these tests (CI has no GPU). On a CPU-only machine,
`pytest -m gpu --gpu-device cpu` runs the same code on the CPU as a dry run: every call that
would run on CUDA runs on the CPU, and the CPU-versus-CUDA comparisons compare the CPU with
itself.
"""
from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch

from nnprune.data import prepare
from nnprune.engine.metrics import accuracy, measure_speed
from nnprune.engine.training import TrainConfig, fit
from nnprune.models import build
from nnprune.plan.schemes import parse_scheme
from nnprune.pruning.allocation import allocate, build_macs_model
from nnprune.pruning.criteria import CRITERIA
from nnprune.pruning.layout import model_layout
from nnprune.pruning.removal import apply_removal
from nnprune.pruning.scoring import score_features, score_model

pytestmark = pytest.mark.gpu
SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def device(request) -> torch.device:
    name = request.config.getoption("--gpu-device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.fail("the gpu tests need CUDA: run them on a GPU machine, or pass "
                    "--gpu-device cpu for a dry run on the CPU")
    return torch.device(name)


@pytest.fixture(scope="module")
def bundle(fashion_root):
    return prepare("fashion-mnist", fashion_root, train_size=4096, val_size=1024, test_size=2048)


def _config(**changes) -> TrainConfig:
    base = dict(epochs=2, batch_size=128, lr=0.05, augment="flip", amp=True, channels_last=True)
    return TrainConfig(**{**base, **changes})


def _train(bundle, device, config, tmp_path, name="last.pt", width=0.5):
    torch.manual_seed(0)
    model = build("resnet20", num_classes=10, in_channels=1, width=width)
    batches = bundle.batches("train", config.batch_size, train=True, seed=0, device=device,
                             channels_last=config.channels_last, augment=config.augment,
                             drop_last=config.compile != "none")
    summary = fit(model, batches, bundle.batches("val", 512, device=device), config,
                  tmp_path / name, device, log=lambda message: None)
    return model, summary


@pytest.fixture(scope="module")
def trained(bundle, device, tmp_path_factory):
    """resnet20 (width 0.5) after two AMP + channels_last epochs on `device`, and its summary."""
    return _train(bundle, device, _config(), tmp_path_factory.mktemp("gpu-train"))


def test_amp_channels_last_epochs_train_on_the_device(trained, device):
    model, summary = trained
    losses = [epoch["loss"] for epoch in summary["history"]]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert losses[1] < losses[0]
    assert summary["best_val_acc"] > 50.0           # 10 classes: chance is 10%
    assert summary["images_per_second"] > 0
    weight = model.conv1.weight
    assert weight.device.type == device.type
    assert weight.is_contiguous(memory_format=torch.channels_last)


def test_compiled_step_trains_like_the_eager_step(bundle, device, tmp_path):
    """torch.compile'd training (fp32, so the two can be compared closely) follows the eager
    loss curve: same data, same initial weights, same batches."""
    config = _config(epochs=1, batches_per_epoch=12, amp=False, channels_last=False)
    _, eager = _train(bundle, device, config, tmp_path, "eager.pt", width=0.25)
    compiled_config = dataclasses.replace(config, compile="default")
    _, compiled = _train(bundle, device, compiled_config, tmp_path, "compiled.pt", width=0.25)
    eager_loss, compiled_loss = eager["history"][0]["loss"], compiled["history"][0]["loss"]
    assert math.isfinite(compiled_loss)
    assert abs(compiled_loss - eager_loss) < 0.02 * eager_loss


def test_scores_on_device_agree_with_the_cpu(trained, bundle, device):
    """Every criterion: per-layer Spearman correlation of device and CPU scores >= 0.99."""
    from scipy.stats import spearmanr

    model, _ = trained
    layers = model_layout(copy.deepcopy(model).cpu(), SHAPE).layers
    scores = {}
    for where in (device, torch.device("cpu")):
        copy_on = copy.deepcopy(model).to(where).float()
        batches = bundle.batches("train", 64, device=where)
        data_driven = [c for c in CRITERIA.values() if c.data_driven]
        found = score_features(copy_on, layers, data_driven, batches, [128])
        for name, criterion in CRITERIA.items():
            if not criterion.data_driven:
                found[(name, 128)] = score_model(copy_on, layers, name, seed=0)[0]
        scores[where.type] = found
    lowest = {}
    for key, by_layer in scores[device.type].items():
        correlations = []
        for layer, values in by_layer.items():
            reference = scores["cpu"][key][layer]
            if torch.equal(values.cpu(), reference.cpu()):
                correlations.append(1.0)
                continue
            correlations.append(float(spearmanr(values.cpu().double(), reference.double())[0]))
        lowest[key[0]] = min(correlations)
    assert set(lowest) == set(CRITERIA)
    assert min(lowest.values()) >= 0.99, lowest


def test_prune_finetune_and_time_on_the_device(trained, bundle, device, tmp_path):
    """macs:0.5 with round_to=4 on the device: every group keeps a multiple of 4 channels (or all),
    fine-tuning recovers accuracy, and the pruned model is timed (CUDA graph on CUDA) at batch 1
    and at a large batch, with throughput = batch / latency."""
    model, _ = trained
    model = copy.deepcopy(model).cpu().float().eval()
    layout = model_layout(model, SHAPE)
    scores, _ = score_model(model, layout.layers, "l1")
    scheme = parse_scheme("macs:0.5:round_to=4")
    removed = allocate(layout, scores, scheme, build_macs_model(model, SHAPE, layout))
    for group in layout.groups:
        kept = group.channels - len(removed[group.key])
        assert kept == group.channels or kept % 4 == 0, (group.key, kept)
    apply_removal(model, SHAPE, removed)
    test = bundle.batches("test", 512, device=device)
    pruned_acc = accuracy(model.to(device), test, amp=True)
    config = _config(epochs=1, batches_per_epoch=16, lr=0.01)
    batches = bundle.batches("train", 128, train=True, seed=1, device=device, channels_last=True,
                             augment="flip")
    fit(model, batches, bundle.batches("val", 512, device=device), config, tmp_path / "ft.pt",
        device, log=lambda message: None)
    assert accuracy(model, test, amp=True) > max(pruned_acc, 30.0)
    for batch in (1, 256):
        speed = measure_speed(model.eval(), SHAPE, batch, repeats=5, warmup=2)
        assert speed["latency_ms"] > 0
        assert speed["images_per_second"] == pytest.approx(batch * 1000.0 / speed["latency_ms"])
        if device.type == "cuda":
            assert "cuda graph" in speed["method"]   # capturable: no host sync in the forward
