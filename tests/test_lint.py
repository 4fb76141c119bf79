"""`make lint`'s three commands pass, and scripts/lint_workflow.py accepts only justified lints."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, require

SPEC = importlib.util.spec_from_file_location("lint_workflow", REPO / "scripts" / "lint_workflow.py")
lint_workflow = sys.modules["lint_workflow"] = importlib.util.module_from_spec(SPEC)  # dataclasses look it up
SPEC.loader.exec_module(lint_workflow)


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.is_file() else shutil.which(name)
    require(path is not None, f"{name} is not installed; run `make setup` (requirements.lock pins it)")
    return path


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.integration
def test_ruff_check_is_clean():
    _run([_tool("ruff"), "check", "."])


@pytest.mark.integration
def test_workflow_is_snakefmt_formatted():
    _run([_tool("snakefmt"), "--check", "Snakefile", "workflow"])


@pytest.mark.integration
def test_snakemake_lint_leaves_no_lint_unjustified(snakemake_bin):
    _run([sys.executable, "scripts/lint_workflow.py", "--configfile", "config/config.yaml"])


OUTPUT = """\
Lints for snakefile /w/workflow/rules/common.smk:
    * Path composition with '+' in line 14:
      This becomes quickly unreadable.

Lints for rule a (line 4, /w/rules.smk):
    * Specify a conda environment or container for each rule.:
      This way, the used software for each specific step is documented, and the
      workflow can be executed on any machine without prerequisites.
    * Shell command directly uses variable OUT from outside of the rule:
      It is recommended to pass all files as input and output.

Lints for rule b (line 11, /w/rules.smk):
    * Shell command directly uses variable OUT from outside of the rule:
      It is recommended to pass all files as input and output.
"""

RULES = """\
# rules for the test
# lint-ok "Specify a conda environment or container for each rule.": one environment
# for the whole workflow.

rule a:
    output:
        "x",
    # lint-ok "Shell command directly uses variable OUT from outside of the rule": OUT starts the outputs
    shell:
        "touch {OUT}/x"

# lint-ok "Shell command directly uses variable OUT from outside of the rule":
rule b:
    shell:
        "touch {OUT}/y"
"""


def test_lint_output_is_parsed_per_rule_and_snakefile():
    lints = lint_workflow.parse(OUTPUT)
    conda = "Specify a conda environment or container for each rule."
    out = "Shell command directly uses variable OUT from outside of the rule"
    assert [(lint.rule, lint.line, lint.file, lint.title) for lint in lints] == [
        (None, None, "/w/workflow/rules/common.smk", "Path composition with '+' in line 14"),
        ("a", 4, "/w/rules.smk", conda),
        ("a", 4, "/w/rules.smk", out),
        ("b", 11, "/w/rules.smk", out),
    ]


def test_waivers_cover_their_rule_and_the_file_header_only():
    lines = RULES.splitlines()
    a = lint_workflow.waivers_for(lines, 5)
    assert a["Specify a conda environment or container for each rule."] == "one environment for the whole workflow."
    assert a["Shell command directly uses variable OUT from outside of the rule"] == "OUT starts the outputs"
    b = lint_workflow.waivers_for(lines, 13)
    # rule a's OUT waiver does not reach rule b, and b's own has no reason
    assert "Shell command directly uses variable OUT from outside of the rule" not in b
    assert "Specify a conda environment or container for each rule." in b


def test_only_justified_rule_lints_pass(tmp_path):
    rules = tmp_path / "rules.smk"
    rules.write_text(RULES)
    lints = lint_workflow.parse(OUTPUT.replace("/w/rules.smk", str(rules)).replace("line 11", "line 13")
                                .replace("line 4,", "line 5,"))
    accepted, failed = lint_workflow.check(lints)
    assert [(lint.rule, reason[:10]) for lint, reason in accepted] == [("a", "one enviro"), ("a", "OUT starts")]
    # a whole-snakefile lint is never waived; rule b's waiver gives no reason
    assert [(lint.rule, lint.title[:5]) for lint in failed] == [(None, "Path "), ("b", "Shell")]
