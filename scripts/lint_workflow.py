"""`snakemake --lint` that passes only when every lint is fixed or justified beside its rule.

    python scripts/lint_workflow.py [snakemake arguments, default: --configfile config/config.yaml]

A rule's lint is accepted when the rule file holds a comment naming the lint's exact title and
giving a reason:

    # lint-ok "Specify a conda environment or container for each rule.": <why>

in the rule's body, in the comment lines directly above `rule NAME:`, or in the file's header
comment (then it covers every rule of that file). Lints of a whole snakefile (path composition,
absolute paths, ...) cannot be waived: fix them. Exits 1 on any other lint or when Snakemake
fails; prints what it accepted and why.

(`snakemake --lint json` would be easier to read, but Snakemake 9.27's command line ignores the
format argument and always prints text.)
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARGS = ["--configfile", "config/config.yaml"]
HEADER = re.compile(r"^Lints for (?:rule (?P<rule>\S+) \(line (?P<line>\d+), (?P<file>.+)\)"
                    r"|snakefile (?P<snakefile>.+)):$")
TITLE = re.compile(r"^    \* (?P<title>.+):$")
WAIVER = re.compile(r'#\s*lint-ok\s+"(?P<title>[^"]+)"\s*:\s*(?P<reason>\S.*)$')


@dataclass
class Lint:
    title: str
    file: str
    rule: str | None = None  # None: a lint of the whole snakefile
    line: int | None = None  # the `rule NAME:` line, 1-based

    def where(self) -> str:
        return f"rule {self.rule} ({self.file}:{self.line})" if self.rule else f"snakefile {self.file}"


def parse(text: str) -> list[Lint]:
    """The lints in `snakemake --lint` text output."""
    lints, current = [], None
    for line in text.splitlines():
        if header := HEADER.match(line):
            if header["rule"]:
                current = Lint("", header["file"], header["rule"], int(header["line"]))
            else:
                current = Lint("", header["snakefile"])
        elif current is not None and (title := TITLE.match(line)):
            lints.append(Lint(title["title"], current.file, current.rule, current.line))
    return lints


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def waivers_for(lines: list[str], rule_line: int) -> dict[str, str]:
    """Title -> reason of the waivers that cover the rule starting at `rule_line` (1-based)."""
    scope = []
    for line in lines:  # the file's header comment
        if line.strip() and not line.lstrip().startswith("#"):
            break
        scope.append(line)
    start = rule_line - 1
    above = start
    while above > 0 and lines[above - 1].lstrip().startswith("#"):  # comments directly above
        above -= 1
    scope += lines[above:start + 1]
    for line in lines[start + 1:]:  # the rule's body
        if line.strip() and _indent(line) <= _indent(lines[start]):
            break
        scope.append(line)
    waivers, title = {}, None
    for line in scope:  # a reason goes on in the comment lines below its waiver
        text = line.strip()
        if m := WAIVER.search(text):
            title = m["title"]
            waivers[title] = m["reason"]
        elif title and text.startswith("#") and text.lstrip("# "):
            waivers[title] += " " + text.lstrip("# ")
        else:
            title = None
    return waivers


def check(lints: list[Lint]) -> tuple[list[tuple[Lint, str]], list[Lint]]:
    """(accepted lints with their reasons, lints that fail)."""
    accepted, failed, files = [], [], {}
    for lint in lints:
        if lint.rule is None:
            failed.append(lint)
            continue
        if lint.file not in files:
            files[lint.file] = Path(lint.file).read_text().splitlines()
        reason = waivers_for(files[lint.file], lint.line).get(lint.title)
        if reason:
            accepted.append((lint, reason))
        else:
            failed.append(lint)
    return accepted, failed


def main(argv: list[str]) -> int:
    beside = Path(sys.executable).parent / "snakemake"  # this interpreter's environment first
    snakemake = str(beside) if beside.is_file() else shutil.which("snakemake")
    if snakemake is None:
        print("lint_workflow: snakemake is not on PATH (run `make setup`)", file=sys.stderr)
        return 1
    result = subprocess.run([snakemake, "--lint", *(argv or DEFAULT_ARGS)], cwd=REPO,
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    lints = parse(output)
    if result.returncode != 0 and not lints:
        print(output, file=sys.stderr)
        print(f"lint_workflow: snakemake --lint failed (exit {result.returncode}) without lints", file=sys.stderr)
        return 1
    accepted, failed = check(lints)
    grouped: dict[tuple[str, str], list[str]] = {}
    for lint, reason in accepted:
        grouped.setdefault((lint.title, reason), []).append(lint.rule)
    for (title, reason), rules in grouped.items():
        print(f"accepted for rules {', '.join(rules)}: {title}\n    justified: {reason}")
    if failed:
        print(output, file=sys.stderr)
        for lint in failed:
            print(f"NOT FIXED: {lint.where()}: {lint.title}", file=sys.stderr)
        print(f"lint_workflow: {len(failed)} lint(s) neither fixed nor justified with "
              '# lint-ok "<title>": <reason> beside the rule', file=sys.stderr)
        return 1
    print(f"lint_workflow: no lint left unjustified ({len(accepted)} lint(s) justified beside their rules)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
