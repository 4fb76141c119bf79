from pathlib import Path

import pytest
import torch
from torch import nn

from nnprune.pruning.criteria import CRITERIA, LayerInputs, feature_rank, nuclear_norm, weight_norm
from nnprune.pruning.scoring import score_free


def batch(name, maps, grads=None):
    """A data-driven criterion's statistic of one batch, through the protocol."""
    return CRITERIA[name](LayerInputs("layer", torch.zeros(maps.shape[1], 1), features=maps, grads=grads))


def of_weight(name, weight):
    return CRITERIA[name](LayerInputs("layer", weight))


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
    total = batch("nuclear", maps[:4]) + batch("nuclear", maps[4:])
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
    torch.testing.assert_close(of_weight("l1", weight), expected_l1)
    torch.testing.assert_close(weight_norm(weight, 2), expected_l2)


def test_random_reproducible_by_seed():
    model = nn.ModuleDict({"a": nn.Conv2d(2, 8, 1), "b": nn.Conv2d(8, 5, 1)})
    first = score_free(model, ["a", "b"], CRITERIA["random"], seed=3)
    again = score_free(model, ["a", "b"], CRITERIA["random"], seed=3)
    other = score_free(model, ["a", "b"], CRITERIA["random"], seed=4)
    assert torch.equal(first["a"], again["a"]) and torch.equal(first["b"], again["b"])
    assert not torch.equal(first["a"], other["a"])
    assert first["b"].shape == (5,)


def _stream(name, maps, grads=None, split=3):
    """Feed a criterion its batch statistics in two chunks, as scoring does."""
    crit = CRITERIA[name]
    parts = [(maps[:split], None if grads is None else grads[:split]),
             (maps[split:], None if grads is None else grads[split:])]
    total = sum(batch(name, m, g) for m, g in parts)
    return crit.finalize(total, maps.shape[0])


def test_nuclear_stacked_equals_svd_of_stacked_maps():
    maps = torch.randn(7, 3, 4, 5, generator=torch.Generator().manual_seed(3))
    expected = torch.stack([torch.linalg.svdvals(maps[:, c].reshape(7, -1).double()).sum() / 7
                            for c in range(3)])
    torch.testing.assert_close(_stream("nuclear-stacked", maps).double(), expected, rtol=1e-5, atol=1e-6)


def test_apoz_is_one_minus_zero_fraction():
    maps = torch.relu(torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(4)))
    maps[:, 2] = 0.0                                   # a dead channel: least important
    zeros = torch.tensor([[(maps[n, c] == 0).float().mean() for c in range(4)] for n in range(6)])
    expected = 1 - zeros.mean(0)
    got = _stream("apoz", maps)
    torch.testing.assert_close(got, expected)
    assert got[2] == 0.0 and got.argmin() == 2


def test_taylor_equals_naive_abs_sum_of_activation_times_gradient():
    g = torch.Generator().manual_seed(5)
    maps, grads = torch.randn(5, 3, 4, 4, generator=g), torch.randn(5, 3, 4, 4, generator=g)
    expected = torch.zeros(3, dtype=torch.float64)
    for n in range(5):
        for c in range(3):
            expected[c] += abs(sum(float(maps[n, c, i, j] * grads[n, c, i, j])
                                   for i in range(4) for j in range(4)))
    torch.testing.assert_close(_stream("taylor", maps, grads).double(), expected / 5, rtol=1e-5, atol=1e-6)


def test_taylor_reads_gradients_of_the_labels():
    """Scoring a model with taylor uses the labels: flipping them changes the scores."""
    from nnprune.models import build
    from nnprune.pruning.layout import model_layout
    from nnprune.pruning.scoring import score_model

    torch.manual_seed(0)
    model = build("resnet20", width=0.25, in_channels=1).eval()
    layers = model_layout(model, (1, 28, 28)).layers
    x = torch.randn(16, 1, 28, 28)
    labels = torch.arange(16) % 10
    first, _ = score_model(model, layers, "taylor", batches=[(x, labels)], limit=16)
    other, _ = score_model(model, layers, "taylor", batches=[(x, (labels + 3) % 10)], limit=16)
    assert not torch.allclose(first["layer3.0.conv1"], other["layer3.0.conv1"])


def test_fpgm_hand_made_median_filter_scores_lowest():
    # Filters at -1, 0, 0.1, 0.3 and 5 on a line: 0.1 is the geometric median, then 0, then 0.3.
    points = (-1.0, 0.0, 0.1, 0.3, 5.0)
    weight = torch.tensor(points).view(5, 1, 1, 1)
    expected = torch.tensor([sum(abs(a - b) for b in points) for a in points])
    got = of_weight("fpgm", weight)
    torch.testing.assert_close(got, expected.float())
    assert got.argsort().tolist()[:3] == [2, 1, 3]


def test_score_help_lists_every_criterion():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "nnprune.pipeline.cli", "score", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for name, criterion in CRITERIA.items():
        line = next(text for text in out.splitlines() if text.strip().startswith(name + " "))
        assert criterion.summary.split()[0] in line, line


def _hard_maps(seed: int) -> torch.Tensor:
    """Maps that stress the Gram-eigenvalue fast path: a large offset over a small signal (as BN
    outputs can be), exact low rank, ReLU zeros, and singular values spanning 1e6."""
    generator = torch.Generator().manual_seed(seed)
    maps = torch.randn(9, 5, 8, 8, generator=generator)
    maps[:, 0] = 50.0 + 0.01 * maps[:, 0]
    maps[:, 1] = torch.einsum("bi,bj->bij", maps[:, 1, :, 0], maps[:, 1, 0, :])   # rank one
    maps[:, 2] = torch.relu(maps[:, 2])
    scales = torch.logspace(0, -6, 8)
    maps[:, 3] = torch.linalg.qr(maps[:, 3]).Q * scales @ torch.linalg.qr(maps[:, 4]).Q
    maps[:, 4] = 0.0                                                               # dead channel
    return maps


def test_nuclear_fast_path_equals_per_channel_svdvals_reference():
    # The reference is the authors' way: svdvals of each channel's stack of maps, in float64.
    for maps in (_hard_maps(5), torch.randn(6, 3, 7, 5), torch.randn(6, 3, 5, 7)):
        expected = torch.stack([torch.linalg.svdvals(maps[:, c].double()).sum() / maps.shape[0]
                                for c in range(maps.shape[1])])
        got = nuclear_norm(maps).double()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)


def test_feature_rank_fast_path_equals_per_map_matrix_rank():
    maps = torch.relu(_hard_maps(6))
    expected = torch.tensor([[torch.linalg.matrix_rank(maps[n, c]).item() for c in range(5)]
                             for n in range(9)], dtype=torch.float64).mean(0)
    torch.testing.assert_close(feature_rank(maps).double(), expected)
    assert expected[4] == 0 and expected[2] == 8        # dead channel; ReLU of full rank noise


def test_split_over_threads_is_bit_identical():
    from nnprune.pruning.criteria import nuclear_norm_sum

    maps = _hard_maps(7)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = nuclear_norm_sum(maps), batch("hrank", torch.relu(maps))
        torch.set_num_threads(3)                      # 9 images in chunks of 3
        three = nuclear_norm_sum(maps), batch("hrank", torch.relu(maps))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], three[0]) and torch.equal(one[1], three[1])


def test_torch_free_names_match_registries_and_schema():
    """The workflow validates configs from nnprune.plan.names (no torch at DAG time): the names must
    be exactly the registries' and the config schema's."""
    from nnprune.models import MODELS
    from nnprune.plan import names
    from nnprune.plan.studyconfig import load_schema
    from nnprune.pruning.criteria import CRITERIA

    assert {n: c.reads for n, c in CRITERIA.items()} == names.CRITERION_SOURCES
    assert {n for n in CRITERIA if names.data_driven(n)} == {
        "nuclear", "nuclear-stacked", "hrank", "apoz", "taylor", "chip"}
    assert set(MODELS) == set(names.ARCHITECTURES)
    props = load_schema()["properties"]
    # the built-in names are each list's first form; the others admit outside ones
    assert set(props["criteria"]["items"]["anyOf"][0]["enum"]) == set(names.CRITERION_SOURCES)
    assert set(props["toy"]["properties"]["criteria"]["items"]["anyOf"][0]["enum"]) == set(names.CRITERION_SOURCES)
    assert set(props["archs"]["propertyNames"]["anyOf"][0]["enum"]) == set(names.ARCHITECTURES)
    with pytest.raises(RuntimeError, match="update nnprune/plan/names.py"):
        names.check_registered("criteria", {"nuclear": "features"}, names.CRITERION_SOURCES)


def _fresh_python(code: str) -> list[str]:
    """The stdout lines of `code` run by a new interpreter in the repository root."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], check=True).stdout.splitlines()


def _workflow_imports() -> list[str]:
    """The module-level nnprune imports of the Snakefile and workflow/rules/*.smk, as source lines:
    those the parse runs. An indented one sits in an `onstart:` handler, which runs once when
    execution starts (never in a dry run or a cluster job's re-parse): there, checking a study's
    outside criteria and models imports torch."""
    import re

    root = Path(__file__).parents[1]
    text = "\n".join(path.read_text() for path in [root / "Snakefile",
                                                   *sorted((root / "workflow" / "rules").glob("*.smk"))])
    return [" ".join(match.split()) for match in
            re.findall(r"^(from nnprune[\w.]* import (?:\([^)]*\)|.*))$", text, re.M)]


@pytest.mark.parametrize("name", ["config", "smoke", "paper-cifar10", "paper-imagenet", "gpu-fmnist"])
def test_workflow_parse_does_not_import_torch(name):
    """Every SLURM job re-parses the workflow: the workflow's nnprune imports, schema validation,
    config checks (preset: and rates: lengths included) and scheme parsing stay torch-free."""
    imports = _workflow_imports()
    assert any("nnprune.plan.studyconfig" in line for line in imports), imports
    code = ("import sys, yaml\n"
            "from snakemake.utils import validate\n"
            + "\n".join(imports) + "\n"
            "from nnprune.plan.studyconfig import SCHEMA, check, check_keys, main_label_noise\n"
            "from nnprune.plan.schemes import parse_scheme, scheme_slug\n"
            "from nnprune.plan.names import data_driven\n"
            f"config = yaml.safe_load(open('config/{name}.yaml'))\n"
            "check_keys(config)\n"
            "validate(config, str(SCHEMA))\n"
            "check(config, require_data=False)\n"
            "kinds = {parse_scheme(p, a).kind for p in config['pruning'] for a in config['archs']}\n"
            "[data_driven(c) for c in config['criteria']]\n"
            "main_label_noise(config['label_noise'])\n"
            "[scheme_slug(p) for p in config['pruning']]\n"
            "print('rates' in kinds, 'torch' in sys.modules)\n")
    out = _fresh_python(code)[-1].split()
    assert out[-1] == "False", out
    # the paper configs' preset:hrank levels are rate strings, length-checked in the same pass
    assert out[-2] == str(name.startswith("paper-")), out


def test_rate_string_length_is_checked_at_parse_time_without_torch():
    """A rates: string of the wrong length fails config parsing, naming both numbers and the fix."""
    code = ("import sys\n"
            "from nnprune.errors import UserError\n"
            "from nnprune.plan.studyconfig import check_pruning\n"
            "config = {'archs': {'googlenet': {}}, 'pruning': ['preset:hrank', 'rates:[0.5]*64', "
            "'rates:[0.5]*5'], 'finetune': {}}\n"
            "try:\n"
            "    check_pruning(config)\n"
            "except UserError as error:\n"
            "    print(error.problem)\n"
            "    print(error.fix)\n"
            "print('torch' in sys.modules)\n")
    assert _fresh_python(code) == [
        "config key 'pruning', architecture googlenet: compress-rate string has 5 rates but the "
        "model has 64 prunable layers (or 10, one per unit of googlenet)",
        "give exactly 64 rates, one per prunable layer in module order (or 10, one per unit of "
        "googlenet) (see docs/presets.md)",
        "False"]


def test_main_label_noise_is_the_lowest_level():
    from nnprune.plan.studyconfig import main_label_noise

    assert main_label_noise([0.2, 0.0, 0.4]) == 0.0
    assert main_label_noise([0.4, 0.2]) == 0.2
    assert main_label_noise((0,)) == 0.0 and isinstance(main_label_noise((0,)), float)
