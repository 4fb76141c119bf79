"""Performance-related behaviour that could silently regress: latency reaches the tables, and
the steps' imports stay light (every short job of a study pays for them at start-up)."""
import subprocess
import sys

import numpy as np
import pandas as pd

from nnprune.analysis.aggregate import COLUMNS
from nnprune.analysis.tables import build_tables


def _runs(latency: bool) -> pd.DataFrame:
    rows = []
    for seed in range(2):
        row = {column: np.nan for column in COLUMNS}
        row.update(dataset="fashion-mnist", arch="resnet20", width=0.5, train_size=100,
                   label_noise=0.0, noise_kind="symmetric", seed=seed, criterion="l1",
                   score_images=0, pruning="macs:0.3", acc_base=90.0, acc_pruned=50.0 + seed,
                   acc_finetuned=80.0, macs_reduction=30.0, params_reduction=20.0)
        if latency:
            row.update(latency_base_ms=10.0 + seed, latency_pruned_ms=6.0)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def test_by_pruning_has_latency_columns_only_when_measured():
    with_latency = build_tables(_runs(True), pd.DataFrame(), "macs:0.3", 0)["by_pruning"]
    assert with_latency.metrics[-2:] == ["latency_base_ms", "latency_pruned_ms"]
    table = with_latency.frame
    assert table.latency_base_ms_mean.iloc[0] == 10.5 and table.latency_pruned_ms_n.iloc[0] == 2
    without = build_tables(_runs(False), pd.DataFrame(), "macs:0.3", 0)["by_pruning"]
    assert not any(metric.startswith("latency") for metric in without.metrics)


def test_steps_do_not_import_torchvision():
    # torchvision brings torch._dynamo along: 1-2 s of start-up in each of 100+ short jobs.
    code = ("import sys, nnprune.pipeline.cli, nnprune.pipeline.steps, nnprune.models, nnprune.pruning, "
            "nnprune.pruning.scoring; print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _with_bn_statistics(model, seed=0):
    """Give every BatchNorm non-trivial running statistics and affine weights (a fresh model's
    are 0/1, which would make folding look right even if it ignored them)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) * 2 - 1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return model.eval()


def test_inference_model_folds_bn_and_keeps_logits():
    import torch

    from nnprune.engine.metrics import inference_model
    from nnprune.models import build

    torch.manual_seed(0)
    for arch, shape, batchnorms_left in (("resnet20", (1, 28, 28), 0), ("densenet40", (3, 32, 32), 39)):
        model = _with_bn_statistics(build(arch, in_channels=shape[0], width=0.5 if arch == "resnet20" else 1.0))
        inputs = torch.randn(16, *shape)
        fast = inference_model(model)
        with torch.no_grad():
            reference = model(inputs)
            logits = fast(inputs.contiguous(memory_format=torch.channels_last))
        assert float((logits - reference).abs().max() / reference.abs().max()) < 1e-5, arch
        norms = [m for m in fast.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(norms) == batchnorms_left, arch    # DenseNet's BN-before-conv cannot fold
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original intact


def test_fast_accuracy_equals_module_accuracy():
    import torch

    from nnprune.engine.metrics import accuracy
    from nnprune.models import build

    torch.manual_seed(1)
    model = _with_bn_statistics(build("resnet20", in_channels=1, width=0.25), seed=1)
    inputs = torch.randn(300, 1, 28, 28)
    with torch.no_grad():
        # labels that agree with the model on about half the images, so accuracy is not trivial
        predicted = model(inputs).argmax(dim=1)
    labels = torch.where(torch.arange(300) % 2 == 0, predicted, (predicted + 1) % 10)
    batches = [(inputs[i:i + 128], labels[i:i + 128]) for i in range(0, 300, 128)]
    model.train()
    fast, plain = accuracy(model, batches), accuracy(model, batches, fast=False)
    assert fast == plain == 100.0 * 150 / 300
    assert model.training    # the caller's mode is restored


def test_accuracy_of_an_untraceable_model_runs_it_in_eval_mode():
    """torch.fx cannot trace data-dependent control flow: accuracy then runs the module itself,
    which must be in eval mode (batch statistics would change the answer and the running stats)."""
    import torch

    from nnprune.engine.metrics import accuracy

    class Untraceable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.norm = torch.nn.BatchNorm2d(4)
            self.head = torch.nn.Linear(4, 3)

        def forward(self, inputs):
            features = self.norm(self.conv(inputs))
            if features.sum() > 0:        # data-dependent branch: not symbolically traceable
                features = features.relu()
            return self.head(features.mean(dim=(2, 3)))

    torch.manual_seed(2)
    model = _with_bn_statistics(Untraceable(), seed=2)
    inputs = torch.randn(64, 1, 8, 8)
    with torch.no_grad():
        labels = model(inputs).argmax(dim=1)          # eval-mode predictions: accuracy 100%
    running_mean = model.norm.running_mean.clone()
    model.train()
    assert accuracy(model, [(inputs, labels)]) == 100.0
    assert torch.equal(model.norm.running_mean, running_mean) and model.training
