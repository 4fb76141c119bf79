"""The report's tables as a paper uses them: every .tex compiles in pdflatex (booktabs), no table or
claims.md prints `nan`, missing values are an en dash, and each column keeps its decimals. Checked on
a synthetic table, on the smoke study (the session's `smoke_local` run) and on the committed
results/default."""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, require
from nnprune.analysis.table_text import latex_escape, mean_sd, number
from nnprune.analysis.tables import PAPER_COLUMNS, Table, build_tables, paper_rows, summarise, write_table

DOCUMENT = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{%s}\n\\end{document}\n"
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


@pytest.fixture(scope="session")
def pdflatex() -> str:
    path = shutil.which("pdflatex")
    require(path is not None, "pdflatex is not installed (Debian: texlive-latex-base texlive-latex-recommended)")
    return path


def compile_table(pdflatex: str, table: Path, workdir: Path) -> None:
    """Compile `table` wrapped in a minimal booktabs document; fail with pdflatex's first error."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "doc.tex").write_text(DOCUMENT % table.resolve().as_posix())
    result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=workdir,
                            capture_output=True, text=True, timeout=120)
    errors = [line for line in result.stdout.splitlines() if line.startswith("!")]
    assert result.returncode == 0 and (workdir / "doc.pdf").is_file(), f"{table.name}: {errors[:3]}"


def check_tables(pdflatex: str, study: Path, workdir: Path) -> list[str]:
    """Compile every tables/*.tex of `study`; assert no `nan` and ASCII-only LaTeX; return the names."""
    names = sorted(path.stem for path in (study / "tables").glob("*.tex"))
    assert names, f"no tables under {study}"
    for name in names:
        tex = (study / "tables" / f"{name}.tex").read_text()
        assert tex.isascii(), f"{name}.tex: raw Unicode {sorted({c for c in tex if not c.isascii()})}"
        assert r"\toprule" in tex and r"\bottomrule" in tex
        compile_table(pdflatex, study / "tables" / f"{name}.tex", workdir / name)
        for ext in ("md", "tex", "csv"):
            text = (study / "tables" / f"{name}.{ext}").read_text()
            assert not NAN.search(text), f"{name}.{ext}: {NAN.search(text).group()} at {NAN.search(text).start()}"
    claims = study / "claims.md"
    if claims.exists():
        found = NAN.search(claims.read_text())
        assert not found, f"claims.md: {claims.read_text()[max(0, found.start() - 80):found.end()]}"
    return names


def _summary() -> pd.DataFrame:
    """Two criteria x two noise levels of one metric; taylor at 0.4 has one seed, l1 at 0.4 none."""
    rows = [{"criterion": c, "label_noise": noise, "seed": s, "acc_base": 90.0 + s, "acc_finetuned": value + s}
            for c, noise, value, seeds in (("nuclear", 0.0, 80.123, 3), ("l1", 0.0, 70.0, 3),
                                           ("taylor_2", 0.4, 60.5, 1), ("l1", 0.4, np.nan, 2))
            for s in range(seeds)]
    return summarise(pd.DataFrame(rows), ["criterion", "label_noise"], ["acc_base", "acc_finetuned"])


def test_cells_escape_latex_and_print_missing_values_as_a_dash():
    assert latex_escape("100% of a_b & c#d $e {f} ~g ^h \\i") == (
        r"100\% of a\_b \& c\#d \$e \{f\} \textasciitilde{}g \textasciicircum{}h \textbackslash{}i")
    assert latex_escape("mean ± std, §1 – x") == r"mean $\pm$ std, \S{}1 -- x"
    assert mean_sd(91.404, 0.2249, 5, 2, latex=True) == r"$91.40 \pm 0.22$"
    assert mean_sd(91.404, 0.2249, 5, 2, latex=False) == "91.40 ± 0.22"
    assert mean_sd(91.404, float("nan"), 1, 2, latex=False) == "91.40 (n=1)"
    assert mean_sd(float("nan"), float("nan"), 0, 2, latex=True) == "--"
    assert [number(v, 1) for v in (float("nan"), None, 2.25)] == ["–", "–", "2.2"]


def test_written_table_keeps_decimals_dashes_and_compiles(tmp_path, pdflatex):
    table = _summary()
    write_table(tmp_path / "tables", "by_noise", Table(
        table, ["criterion", "label_noise"], ["acc_base", "acc_finetuned"],
        "Accuracy (%) of score_images & noise; mean ± std over seeds (docs/background.md §1)."))
    md = (tmp_path / "tables" / "by_noise.md").read_text()
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]): re.sub(r" +", " ", line)
            for line in md.splitlines()[4:]}
    assert rows["nuclear", "0.0"] == "| nuclear | 0.0 | 91.00 ± 1.00 | 81.12 ± 1.00 | 3 |"   # 80.123 + 0, 1, 2
    assert "60.50 (n=1)" in rows["taylor_2", "0.4"] and "| –" in rows["l1", "0.4"]
    header = re.sub(r" +", " ", md.splitlines()[2])
    assert header == "| criterion | label noise | unpruned acc. (%) | fine-tuned acc. (%) | n |"
    tex = (tmp_path / "tables" / "by_noise.tex").read_text()
    assert (r"\caption{Accuracy (\%) of score\_images \& noise; mean $\pm$ std over seeds "
            r"(docs/background.md \S{}1).}") in tex
    assert r"taylor\_2 & 0.4 & $90.00$ (n=1) & $60.50$ (n=1) & 1 \\" in tex
    assert r"l1 & 0.4 & $90.50 \pm 0.71$ & -- & 2 \\" in tex
    assert r"\begin{tabular}{lrrrr}" in tex
    check_tables(pdflatex, tmp_path, tmp_path / "latex")


def test_paper_comparison_formats_like_the_other_tables(tmp_path):
    rows = [{"dataset": "fashion-mnist", "arch": "resnet20", "train_size": 1000, "label_noise": 0.0,
             "seed": seed, "criterion": criterion, "score_images": 0, "pruning": "macs:0.3", "budget": "1e",
             "acc_base": 82.92, "acc_pruned": 40.0 + seed, "acc_pruned_bn": np.nan, "acc_finetuned": 80.0 + seed / 3,
             "macs_reduction": 30.04, "params_reduction": 25.0} for seed in range(2) for criterion in ("l1", "nuclear")]
    name = "paper_comparison"
    write_table(tmp_path, name, build_tables(pd.DataFrame(rows), pd.DataFrame(), "macs:0.3", 0)[name])
    md, csv, tex = ((tmp_path / f"{name}.{ext}").read_text() for ext in ("md", "csv", "tex"))
    assert "| nnprune, measured | resnet20 / fashion-mnist | l1 | 82.92 | 40.50 | 80.17 | 30.0 | 25.0 | 2 |" in (
        re.sub(r" +", " ", md))
    assert '"nnprune, measured",resnet20 / fashion-mnist,l1,82.92,40.50,80.17,30.0,25.0,2' in csv
    assert "CHIP (Sui et al. 2021), reported\",ResNet-56 / CIFAR-10,chip,93.26,,94.16,47.4,," in csv  # built in
    assert (r"FPGM (He et al. 2019), reported & ResNet-56 / CIFAR-10 & fpgm & 93.59 & -- & 93.49 & 52.6 & -- & -- "
            "\\\\") in tex
    assert "82.920000" not in tex and not NAN.search(md + csv + tex)
    from nnprune.plan.names import CRITERION_SOURCES

    listed = {line.split("|")[3].strip() for line in md.splitlines()[4:]}
    assert {c for c in listed if not c.endswith("(reported only)")} <= set(CRITERION_SOURCES)


def test_paper_rows_are_package_data_that_name_their_source():
    """data/paper_rows.csv (read through importlib.resources): every column of the comparison table
    but n_seeds, and each row's paper and where docs/background.md quotes it; the paper's own rows
    are its criterion's, at the figures the headline claim tests."""
    from nnprune.plan.names import PAPER_CRITERION

    rows = paper_rows()
    assert len(rows) == 6 and all(set(PAPER_COLUMNS[:-1]) | {"paper", "quoted_in"} == set(row) for row in rows)
    assert all(row["paper"] and row["quoted_in"].startswith("§") for row in rows)
    assert all(row["acc_pruned"] is None and isinstance(row["acc_finetuned"], float) for row in rows)
    yeom = [row for row in rows if row["paper"].startswith("Yeom2021")]
    assert [(r["setting"], r["acc_base"], r["acc_finetuned"], r["macs_reduction"], r["params_reduction"])
            for r in yeom] == [("ResNet-56 / CIFAR-10", 93.26, 94.13, 40.4, 45.9),
                               ("ResNet-110 / CIFAR-10", 93.50, 94.61, 49.8, 52.9)]
    assert {row["criterion"] for row in yeom} == {PAPER_CRITERION}


@pytest.mark.integration
def test_smoke_study_tables_compile_and_print_no_nan(smoke_local, pdflatex, tmp_path):
    names = check_tables(pdflatex, smoke_local[0] / "results" / "smoke", tmp_path)
    assert {"by_pruning", "by_label_noise", "paper_comparison", "by_budget"} <= set(names)


def test_committed_default_tables_compile_and_print_no_nan(pdflatex, tmp_path):
    names = check_tables(pdflatex, REPO / "results" / "default", tmp_path)
    assert {"by_pruning", "by_label_noise", "paper_comparison", "score_stability", "by_budget"} <= set(names)
