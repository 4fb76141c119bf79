"""What a workflow user expects to find beside the code: license, citation metadata, the config
reference, the workflow-catalog file, and citations that lead somewhere. Fast, no torch."""
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_license_is_mit():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the nnprune authors" in text
    assert 'license = { text = "MIT" }' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def _pyproject_version() -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "([^"]+)"', text, re.MULTILINE).group(1)


def test_citation_cff():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    for key in ("cff-version", "message", "title", "authors"):   # required by CFF 1.2.0
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["title"] == "nnprune" and cff["type"] == "software" and cff["license"] == "MIT"
    assert str(cff["version"]) == _pyproject_version()
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    paper = cff["references"][0]
    assert paper["type"] == "article"
    assert paper["title"] == "Toward Compact Deep Neural Networks via Energy-Aware Pruning"
    assert [a["family-names"] for a in paper["authors"]] == ["Yeom", "Shim", "Hwang"]
    assert {"type": "doi", "value": "10.48550/arXiv.2103.10858"}.items() <= paper["identifiers"][0].items()
    assert "2103.10858" in paper["url"]


def test_readme_says_how_to_cite():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Citing\n", 1)[1]
    assert "CITATION.cff" in section and "10.48550/arXiv.2103.10858" in section
    assert "Toward Compact Deep Neural Networks via Energy-Aware Pruning" in section


# ---------------------------------------------------------------- citations a reader can follow
BACKGROUND = REPO / "docs" / "background.md"
# Plain ("docs/background.md §3", "background.md §1, §5") and Markdown links to a heading's anchor.
CITATION = re.compile(r"background\.md[`\])]*\s*((?:§\s*\d+(?:\s*(?:,|and|&)\s*)?)+)")
ANCHOR = re.compile(r"background\.md#([A-Za-z0-9_-]+)")


def _repo_text_files() -> dict[str, str]:
    """Tracked (and new, not ignored) text files outside results/, by repo-relative path."""
    import subprocess

    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        import pytest
        pytest.skip("not a git checkout: cannot list the tracked files")
    files = {}
    for name in filter(None, listed):
        path = REPO / name
        if name.startswith("results/") or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue   # binary
        files[name] = data.decode("utf-8", errors="replace")
    return files


def _section_numbers() -> list[int]:
    """Numbers of the "## N. Title" headings of docs/background.md, in order."""
    text = BACKGROUND.read_text(encoding="utf-8")
    return [int(n) for n in re.findall(r"^## (\d+)\. ", text, re.MULTILINE)]


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_background_sections_are_numbered_in_order():
    numbers = _section_numbers()
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 6


def test_background_citations_name_existing_sections():
    sections = set(_section_numbers())
    headings = re.findall(r"^#+ (.+)$", BACKGROUND.read_text(encoding="utf-8"), re.MULTILINE)
    anchors = {_github_slug(h) for h in headings}
    cited, bad = 0, []
    for name, text in _repo_text_files().items():
        for match in CITATION.finditer(text):
            for number in re.findall(r"\d+", match.group(1)):
                cited += 1
                if int(number) not in sections:
                    bad.append(f"{name}: cites §{number}")
        for anchor in ANCHOR.findall(text):
            if anchor not in anchors:
                bad.append(f"{name}: links to background.md#{anchor}")
    assert not bad, "citations of docs/background.md that lead nowhere:\n" + "\n".join(bad)
    assert cited > 0


def test_no_citations_of_the_internal_reference_document():
    """Every source is cited as a paper, a package or docs/background.md, never as the project's
    unpublished notes (written in capitals as a document name; results/ is generated, left alone)."""
    internal = re.compile(r"(?<![\w-])" + "REFER" + r"ENCE(?:\.md)?(?![\w-])")   # split: this file stays clean
    found = [f"{name}:{number}: {line.strip()}"
             for name, text in _repo_text_files().items()
             for number, line in enumerate(text.splitlines(), 1) if internal.search(line)]
    assert not found, "cite docs/background.md §N or the source itself instead:\n" + "\n".join(found)


# ---------------------------------------------------------------- config/README.md
def _property_names(node) -> set[str]:
    """Every property name in a JSON schema, however deeply nested ($defs, allOf, items, ...)."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names |= set(value)
            names |= _property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _property_names(value)
    return names


def test_config_readme_documents_every_schema_key():
    schema = yaml.safe_load((REPO / "nnprune" / "plan" / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    names = _property_names(schema)
    assert {"study", "width", "mode", "epochs", "batches_per_epoch", "score_per_class"} <= names
    readme = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"config/README.md does not describe these config keys: {missing}"


def test_config_readme_lists_every_config():
    readme = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    for path in sorted((REPO / "config").glob("*.yaml")):
        study = yaml.safe_load(path.read_text(encoding="utf-8"))["study"]
        assert f"| `{path.name}` | `{study}` |" in readme, f"config/README.md does not list {path.name}"


# ---------------------------------------------------------------- Snakemake workflow catalog
def test_workflow_catalog_file():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text(encoding="utf-8"))["usage"]
    flags = usage["mandatory-flags"]
    assert isinstance(flags["desc"], str) and "environment.yml" in flags["desc"]
    flag_list = flags["flags"].split() if isinstance(flags["flags"], str) else flags["flags"]
    assert all(isinstance(flag, str) for flag in flag_list)
    if "--configfile" in flag_list:
        assert (REPO / flag_list[flag_list.index("--configfile") + 1]).is_file()
    deployment = usage["software-stack-deployment"]
    assert set(deployment) <= {"conda", "apptainer", "apptainer+conda", "singularity", "singularity+conda"}
    assert deployment and all(isinstance(value, bool) for value in deployment.values())
    assert isinstance(usage["report"], bool)
    # what the catalog's standardized usage also looks for
    assert (REPO / "config" / "README.md").is_file() and (REPO / "config" / "config.yaml").is_file()
    assert (REPO / "Snakefile").is_file() or (REPO / "workflow" / "Snakefile").is_file()


README_CLAIM_ROWS = {"toy": "toy:", "data_size": "data size:", "label_noise": "label noise:", "cnn": "CNN:"}


def test_readme_verdict_table_follows_the_committed_claims():
    """The README's verdict table states each claim's primary verdict as results/default/claims.json
    has it, and for the CNN claim the primary budget and the regime status with its gap."""
    import json

    claims = {c["name"]: c for c in json.loads((REPO / "results/default/claims.json").read_text())["claims"]}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = {name: next((line.split(" | ") for line in readme.splitlines() if line.startswith(f"| {start}")), None)
            for name, start in README_CLAIM_ROWS.items()}
    for name, cells in rows.items():
        assert cells, f"README's verdict table has no row for {name}"
        assert cells[2].startswith(f"**{claims[name]['verdict']}**"), (name, cells[2], claims[name]["verdict"])
    cnn = claims["cnn"]
    budget = cnn["primary"]["axis_value"][1]
    count, unit = int(budget[:-1]), {"e": ("epoch", "epochs"), "b": ("batch", "batches")}[budget[-1]]
    assert f"**{count} {unit[count > 1]}**" in rows["cnn"][1], (rows["cnn"][1], budget)
    status = "inside" if cnn["regime"]["primary"].startswith("inside") else "outside"
    assert rows["cnn"][3].startswith(f"**{status}** (best criterion {cnn['regime']['primary_gap_pp']:.2f} pp below"), \
        (rows["cnn"][3], cnn["regime"])


LEADERBOARD = REPO / "results" / "leaderboard"


def _readme_section_table(title: str) -> list[dict[str, str]]:
    """The first markdown table under the README heading `title`, as one dict per row."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


def test_readme_leaderboard_follows_the_committed_leaderboard():
    """The README's leaderboard table states, per cut, each criterion's mean accuracy, who shares the
    first place, the regime and the focus-vs-scratch verdict as results/leaderboard has them."""
    import csv
    import json

    with open(LEADERBOARD / "tables" / "leaderboard.csv", newline="") as handle:
        board = list(csv.DictReader(handle))
    claims = json.loads((LEADERBOARD / "claims.json").read_text())
    cnn = next(c for c in claims["claims"] if c["name"] == "cnn")
    scratch = {p["pruning"]: p for p in next(f for f in cnn["secondary"] if f["name"] == "focus vs scratch")["points"]}
    rows = _readme_section_table("Where criteria part ways (leaderboard study)")
    cuts = sorted({row["pruning"] for row in board}, key=lambda cut: float(cut.split(":")[1]))
    assert [row["cut"].strip("`") for row in rows] == cuts
    for row in rows:
        cut = row["cut"].strip("`")
        here = {line["criterion"]: line for line in board if line["pruning"] == cut}
        for criterion, line in here.items():
            column = {"scratch": "nuclear's architecture from scratch"}.get(criterion, criterion)
            assert row[column].startswith(f"{float(line['acc_mean']):.2f}"), (cut, criterion, row[column])
        first = {c for c, line in here.items() if line["rank"] and float(line["rank"]) == 1}
        assert set(row["first place (shared)"].split(", ")) == first, (cut, row["first place (shared)"], first)
        assert row["regime"] == here["nuclear"]["regime"], cut
        verdict = scratch[cut]["verdict"]
        assert row["nuclear minus scratch"].endswith(f"**{verdict}**"), (cut, row["nuclear minus scratch"], verdict)
        assert row["nuclear minus scratch"].startswith(f"{scratch[cut]['mean_difference']:+.2f}"), cut
