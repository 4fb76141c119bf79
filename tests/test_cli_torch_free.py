"""`nnprune report --help`, `nnprune claims --help` and a real `nnprune claims` run with torch made
unimportable: the command line imports torch-using code only for the commands that need it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.resources import as_file
from pathlib import Path

import yaml

from conftest import REPO

BLOCKED = ("torch", "torchvision")
# Runs the `nnprune` console script's entry point with ARGS, with torch and torchvision raising
# ImportError on import; its last stderr line lists the torch modules loaded (none, or it failed).
RUN_WITHOUT_TORCH = f"""
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError(f'{{name}} is blocked by the torch-free test')
sys.meta_path.insert(0, BlockTorch())
from nnprune.pipeline.entry import main
sys.argv = ['nnprune', *sys.argv[1:]]
try:
    code = main()
except SystemExit as stop:      # --help
    code = stop.code
print('loaded:', sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r}), file=sys.stderr)
sys.exit(code)
"""


def nnprune_without_torch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NNPRUNE_WARM"}    # run here, not in a warm server
    return subprocess.run([sys.executable, "-c", RUN_WITHOUT_TORCH, *args], capture_output=True, text=True,
                          cwd=cwd, env={**env, "NNPRUNE_NO_WARM": "1"}, timeout=300)


def test_the_blocker_stops_torch(tmp_path):
    """The score command's help lists the criteria, which need torch: blocked, it fails."""
    result = nnprune_without_torch("score", "--help", cwd=tmp_path)
    assert result.returncode != 0
    assert "ImportError: torch is blocked by the torch-free test" in result.stderr


def test_report_and_claims_help_without_torch(tmp_path):
    for command, flag in (("report", "--main-pruning"), ("claims", "--settings")):
        result = nnprune_without_torch(command, "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.startswith(f"usage: nnprune {command} ") and flag in result.stdout
        assert result.stderr.splitlines()[-1] == "loaded: []"


def claims_arguments(config_name: str) -> tuple[str, str]:
    """`--settings` and `--scale` of the workflow's claims job for config/<config_name>.yaml, as
    tools/regen_check.sh makes them: the claims section and scale of the validated config."""
    from snakemake.utils import validate

    from nnprune.plan import jobspecs
    from nnprune.plan.studyconfig import SCHEMA

    config = yaml.safe_load((REPO / "config" / f"{config_name}.yaml").read_text(encoding="utf-8"))
    with as_file(SCHEMA) as schema:
        validate(config, str(schema))       # fills in the defaults
    return json.dumps(config["claims"], separators=(",", ":")), jobspecs.claims_scale(config)


def test_claims_of_the_default_study_without_torch(tmp_path):
    """The committed default study's claims, regenerated from its tables (runs.csv, stability.csv,
    toy/toy.csv) in a process that cannot import torch: the same claims.json."""
    committed = REPO / "results" / "default"
    study = tmp_path / "results" / "default"
    (study / "toy").mkdir(parents=True)
    for name in ("runs.csv", "stability.csv", "toy/toy.csv"):
        shutil.copyfile(committed / name, study / name)
    settings, scale = claims_arguments("config")
    result = nnprune_without_torch("claims", "--study-dir", "results/default", "--main-pruning", "macs:0.404",
                                   "--main-score-images", "2048", "--settings", settings, "--scale", scale,
                                   cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == "loaded: []"
    written = json.loads((study / "claims.json").read_text(encoding="utf-8"))
    assert written == json.loads((committed / "claims.json").read_text(encoding="utf-8"))
    assert len(written["claims"]) == 4 and all(claim["points"] for claim in written["claims"])
    assert (study / "claims.md").stat().st_size > 1000
