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
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


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
