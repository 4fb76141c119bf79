"""The from-scratch control (`nnprune scratch`, nnprune.pipeline.scratch) on real Fashion-MNIST: the
pruned architecture, re-initialised, trained with a baseline recipe; its runs.csv row."""
import json

import torch

from nnprune.analysis.aggregate import SCRATCH_KIND, collect_runs, split_kinds


def test_scratch_trains_the_pruned_architecture_anew(fashion_root, tmp_path):
    from nnprune import api
    from nnprune.pipeline.scratch import reinitialise

    common = {"device": "cpu", "threads": 1}
    data = {"data_root": str(fashion_root), "train_size": 300, "val_size": 100, "test_size": 300}
    api.train(api.TrainSpec(arch="resnet20", width=0.25, epochs=1, out=str(tmp_path / "base"), **data, **common))
    scores = api.score(api.ScoreSpec(model=str(tmp_path / "base" / "model.pt"), criteria=["l1"],
                                     out=str(tmp_path / "scores"), **common))
    pruned_dir = tmp_path / "run" / "pruned"
    pruned = api.prune(api.PruneSpec(model=str(tmp_path / "base" / "model.pt"), pruning="macs:0.5",
                                     scores=str(scores.outputs["files"][("l1", 0)]), out=str(pruned_dir), **common))

    # re-initialised: the same shapes, other weights, BatchNorm back to 1 and 0 and fresh statistics
    original = {k: v.clone() for k, v in pruned.model.state_dict().items()}
    fresh = reinitialise(pruned.model)
    state = fresh.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in original.items()}
    assert not torch.equal(state["conv1.weight"], original["conv1.weight"])
    assert torch.equal(state["bn1.weight"], torch.ones_like(state["bn1.weight"]))
    assert torch.equal(state["bn1.running_mean"], torch.zeros_like(state["bn1.running_mean"]))

    result = api.scratch(api.ScratchSpec(model=str(pruned_dir / "model.pt"), epochs=2, lr=0.05,
                                         out=str(tmp_path / "run" / "scratch-2e"), **common))
    metrics = json.loads((tmp_path / "run" / "scratch-2e" / "metrics.json").read_text())
    assert metrics["config"]["criterion"] == "l1" and metrics["config"]["pruning"] == "macs:0.5"
    assert metrics["results"]["macs"] == pruned.results["pruned"]["macs"]      # the pruned architecture
    assert metrics["results"]["params"] == pruned.results["pruned"]["params"]
    assert metrics["results"]["train"]["epochs"] == 2
    assert 10.0 < result.results["acc_test"] <= 100.0

    runs = collect_runs([pruned_dir / "metrics.json"], study_dir=tmp_path,
                        scratch=[tmp_path / "run" / "scratch-2e" / "metrics.json"])
    pruned_rows, scratch_rows = split_kinds(runs)
    assert len(pruned_rows) == 1 and len(scratch_rows) == 1
    row = scratch_rows.iloc[0]
    assert row.kind == SCRATCH_KIND and row.criterion == "l1" and row.budget == "2e"
    assert row.acc_finetuned == result.results["acc_test"]
    assert row.pruned_metrics == "run/scratch-2e/metrics.json"          # names the run it came from
