"""The Python API: the README's example runs as written, importing it is light, and the prune step
reuses what `train` measured of the baseline."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from conftest import REPO

pytestmark = pytest.mark.integration


def readme_api_example() -> str:
    """The first python code block of the README's "Python API" section."""
    section = (REPO / "README.md").read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_import_api_does_not_import_torch():
    code = "import sys; from nnprune import api; api.TrainSpec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_readme_api_example_trains_scores_prunes_and_evaluates(fashion_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(fashion_root.resolve())     # the example's data_root is "data"
    threads = torch.get_num_threads()
    namespace: dict = {}
    try:
        exec(compile(readme_api_example(), "README.md", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    base, scored, pruned, evaluated = (namespace[k] for k in ("base", "scored", "pruned", "evaluated"))
    assert base.metrics["step"] == "train" and base.results["train_images"] == 1000
    assert 20.0 < base.results["acc_test"] <= 100.0     # one epoch on 1,000 images: well above chance (10%)
    assert sum(p.numel() for p in base.model.parameters()) == base.results["params"]
    assert set(scored.outputs["scores"]) == {("nuclear", 64), ("l1", 0)}
    expected = (tmp_path / "api-example/scores/nuclear_si64/scores.pt").resolve()
    assert scored.outputs["files"][("nuclear", 64)].resolve() == expected
    assert pruned.results["base"]["macs"] == base.results["macs"]
    assert 0.3 <= 1 - pruned.results["pruned"]["macs"] / base.results["macs"] < 0.4
    assert evaluated.results["macs"] == pruned.results["pruned"]["macs"]
    assert evaluated.results["acc_test"] == pytest.approx(pruned.results["pruned"]["acc"], abs=1e-9)
    assert sum(p.numel() for p in pruned.model.parameters()) == pruned.results["pruned"]["params"]
    assert re.search(r"test accuracy [0-9.]+% -> [0-9.]+% with [0-9,]+ of [0-9,]+ MACs", capsys.readouterr().out)


def test_prune_reuses_the_baselines_cost_and_latency(fashion_root, tmp_path, monkeypatch):
    from nnprune import api
    from nnprune.engine import metrics
    from nnprune.pipeline import steps

    threads = torch.get_num_threads()
    common = {"device": "cpu", "threads": 1}
    try:
        base = api.train(api.TrainSpec(arch="resnet20", width=0.25, data_root=str(fashion_root), train_size=200,
                                       val_size=100, test_size=300, epochs=1, latency=True,
                                       out=str(tmp_path / "base"), **common))
        model = str(tmp_path / "base" / "model.pt")
        scores = api.score(api.ScoreSpec(model=model, criteria=["l1"], out=str(tmp_path / "scores"), **common))
        stored = torch.load(model, weights_only=True)
        assert stored["cost"]["macs"] == base.results["macs"] and stored["latency"]["ms"] == base.results["latency_ms"]
        assert stored["cost"]["layer_macs"]["conv1"] > 0
        scores_file = str(scores.outputs["files"][("l1", 0)])

        # A baseline written before train stored its cost: prune measures it, with the same result.
        from nnprune.pruning.model_file import save_model
        old = tmp_path / "old-format.pt"
        meta = {k: v for k, v in stored.items() if k not in ("format", "arch", "build_args", "input_shape",
                                                           "removed", "state_dict", "cost", "latency")}
        save_model(old, base.model, stored["arch"], stored["build_args"], tuple(stored["input_shape"]), **meta)
        measured = api.prune(api.PruneSpec(model=str(old), scores=scores_file, pruning="macs:0.3", latency=True,
                                           out=str(tmp_path / "pruned-old"), **common)).results
        assert {k: measured["base"][k] for k in ("macs", "params", "acc")} == \
            {"macs": base.results["macs"], "params": base.results["params"], "acc": base.results["acc_test"]}
        assert measured["base"]["latency_ms"] > 0

        def counted(*args, **kwargs):
            raise AssertionError("the baseline was measured again")

        monkeypatch.setattr(steps, "model_cost", counted)
        latencies = []
        monkeypatch.setattr(steps, "latency_ms", lambda *a, **k: latencies.append(1) or 1.5)
        result = api.prune(api.PruneSpec(model=model, scores=scores_file, pruning="macs:0.3", latency=True,
                                         out=str(tmp_path / "pruned"), **common))
        pruned = result.results
        assert pruned["base"] == {"macs": base.results["macs"], "params": base.results["params"],
                                  "acc": base.results["acc_test"], "latency_ms": base.results["latency_ms"]}
        assert latencies == [1] and pruned["pruned"]["latency_ms"] == 1.5       # only the pruned model timed
        assert pruned["pruned"] == {**measured["pruned"], "latency_ms": 1.5}    # the same pruning either way
        assert pruned["pruned"]["macs"] == metrics.count_macs(result.model, (1, 28, 28))
    finally:
        torch.set_num_threads(threads)
