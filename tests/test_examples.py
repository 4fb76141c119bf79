"""The examples a researcher copies, run end to end with real Snakemake in fresh processes: an
outside criterion (network slimming's |gamma|, examples/slimming.py) made the focus of the claims,
run by the README's command as written, and an outside model (examples/tiny_cnn.py)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_snakemake, shell_env

pytestmark = pytest.mark.integration

SECTION = "## Benchmark your own criterion"


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def fenced(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def pdf_text(path: Path) -> str:
    """The text matplotlib drew into a PDF: the strings of its (Flate-compressed) TJ operators."""
    data = path.read_bytes()
    runs = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        for array in re.findall(rb"\[(.*?)\] TJ", content, re.S):
            pieces = re.findall(rb"\(((?:[^()\\]|\\.)*)\)", array)
            runs.append(re.sub(rb"\\(.)", rb"\1", b"".join(pieces)).decode("latin-1"))
    return "\n".join(runs)


def test_readme_section_is_short_and_its_code_is_the_example():
    section = readme_section()
    body = [line for line in section.splitlines()[1:] if line.strip()]
    assert len(body) <= 15, len(body)
    (code,) = fenced(section, "python")
    module = (REPO / "examples" / "slimming.py").read_text(encoding="utf-8")
    for line in code.splitlines():
        assert line.split("#")[0].rstrip() in module, line       # the README shows the module's code
    (command,) = fenced(section, "bash")
    assert "examples/slimming.yaml" in command


@pytest.fixture(scope="module")
def slimming_run(tmp_path_factory, snakemake_bin, fashion_root):
    """The README's command, as written, in a fresh folder laid out like the repository (its own
    copy of examples/, so that the test can change the criterion's module)."""
    workdir = tmp_path_factory.mktemp("slimming")
    for name in ("Snakefile", "workflow", ".venv"):
        (workdir / name).symlink_to(REPO / name)
    (workdir / "data").symlink_to(fashion_root)
    shutil.copytree(REPO / "examples", workdir / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (command,) = fenced(readme_section(), "bash")
    # a fresh shell's environment: no PYTHONPATH, and .venv/bin not on PATH (nothing asks the reader
    # to activate the venv), so the jobs must find the `nnprune` command by themselves
    env = shell_env()
    assert shutil.which("nnprune", path=env["PATH"]) is None, env["PATH"]
    result = subprocess.run(["bash", "-c", command.strip()], cwd=workdir, capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, command.strip(), env


def test_outside_criterion_is_in_runs_claims_and_forest_plots(slimming_run):
    workdir, _, _ = slimming_run
    study = workdir / "results" / "slimming-example"
    runs = pd.read_csv(study / "runs.csv")
    assert set(runs.criterion) == {"nuclear", "l1", "random", "bn_scale"}
    ours = runs[runs.criterion == "bn_scale"]
    assert len(ours) == 2 and (ours.score_images == 0).all()          # data-free: 2 seeds, one run each
    assert ours.macs_reduction.between(25, 40).all(), ours.macs_reduction.tolist()
    assert ours.acc_finetuned.between(10, 100).all()
    claims = json.loads((study / "claims.json").read_text())
    assert claims["focus"] == "bn_scale"
    cnn = next(claim for claim in claims["claims"] if claim["name"] == "cnn")
    assert cnn["points"] and {point["focus"] for point in cnn["points"]} == {"bn_scale"}
    text = (study / "claims.md").read_text()
    assert "asked of criterion `bn_scale`" in text and "d = metric(bn_scale)" in text
    assert "pruning by `bn_scale` leaves a more accurate network" in text      # the paper's claim, asked of it
    assert "pruning by nuclear norm" not in text
    assert "bn_scale - comparator" in pdf_text(study / "claims_forest_cnn.pdf")
    # provenance: the module's file and hash, as the score job read them
    metrics = json.loads(next((study / "scores").glob("*/bn_scale_si0/metrics.json")).read_text())
    source = metrics["provenance"]["sources"]["bn_scale"]
    assert source["target"] == "slimming:bn_scale" and Path(source["file"]).name == "slimming.py"
    assert len(source["sha256"]) == 64


def test_a_changed_criterion_reruns_its_jobs(slimming_run):
    workdir, command, env = slimming_run
    dry = subprocess.run(["bash", "-c", command + " --dry-run"], cwd=workdir, capture_output=True, text=True,
                         timeout=300, env=env)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
    module = workdir / "examples" / "slimming.py"
    module.write_text(module.read_text() + "\n# changed\n")
    dry = subprocess.run(["bash", "-c", command + " --dry-run"], cwd=workdir, capture_output=True, text=True,
                         timeout=300, env=env)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-2000:]
    assert re.search(r"score_free\s+2\b", out), out[-3000:]          # both baselines' data-free scores
    assert not re.search(r"\btrain\s+\d", out), out[-3000:]           # the baselines stay


def test_outside_model_runs_end_to_end(tmp_path, snakemake_bin, fashion_root):
    result = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--cores", "2",
                           configfile=REPO / "examples" / "tiny-cnn.yaml",
                           env={"PYTHONPATH": str(REPO / "examples")})
    assert result.returncode == 0, result.stderr[-4000:]
    study = tmp_path / "results" / "tiny-cnn-example"
    runs = pd.read_csv(study / "runs.csv")
    assert set(runs.arch) == {"tiny"} and set(runs.pruning) == {"macs:0.3", "uniform:0.2"}
    macs = runs[runs.pruning == "macs:0.3"]
    assert macs.macs_reduction.between(25, 40).all(), macs.macs_reduction.tolist()
    assert (runs.params_pruned < runs.params_base).all()
    base = json.loads(next((study / "baselines").glob("*__tiny__*/metrics.json")).read_text())
    assert base["provenance"]["sources"]["tiny"]["target"] == "tiny_cnn:small_cnn"
    # the same fvcore count as for a built-in model: three 3x3 convs and the classifier
    assert base["results"]["macs"] == expected_tiny_macs(width=0.5)
    claims = json.loads((study / "claims.json").read_text())
    assert claims["focus"] == "nuclear"
    cnn = next(claim for claim in claims["claims"] if claim["name"] == "cnn")
    assert {point["comparator"] for point in cnn["points"]} <= {"l1", "random"} and cnn["points"]


def expected_tiny_macs(width: float) -> int:
    """MACs of examples/tiny_cnn.py on 28x28 one-channel images, counted by hand as nnprune counts
    with fvcore (a conv: out x in x k x k per output position; BatchNorm, pools and ReLUs: none,
    as for the built-in models; the linear layer: in x out)."""
    c1, c2, c3 = (max(2, round(n * width)) for n in (16, 32, 64))
    convs = c1 * 1 * 9 * 28 * 28 + c2 * c1 * 9 * 14 * 14 + c3 * c2 * 9 * 7 * 7
    return convs + c3 * 10
