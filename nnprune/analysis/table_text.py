"""The text of the report's tables: fixed decimals per column, a missing value as an en dash, mean ± sd
in one cell, written as Markdown and as LaTeX (booktabs, every special character escaped, ASCII only,
mean ± sd as math) that compiles in pdflatex. Importable without torch."""
from __future__ import annotations

import math
import unicodedata

import pandas as pd

DASH = "–"                   # a missing value in Markdown and claims.md (LaTeX: "--")
LATEX_DASH = "--"
# Decimals of a metric's cells; any other float metric gets DEFAULT_DECIMALS (accuracies in %, pp).
METRIC_DECIMALS = {"spearman": 3, "jaccard": 3, "macs_reduction": 1, "params_reduction": 1}
DEFAULT_DECIMALS = 2
KEY_LABELS = {"label_noise": "label noise", "noise_kind": "noise kind", "score_images": "score images",
              "n_seeds": "seeds"}
LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
LATEX_UNICODE = {"±": r"$\pm$", "§": r"\S{}", "–": "--", "—": "---", "×": r"$\times$", "≥": r"$\geq$",
                 "≤": r"$\leq$", "−": "-", "’": "'", "‘": "`", "“": "``", "”": "''", "…": r"\ldots{}",
                 "°": r"$^{\circ}$", "→": r"$\rightarrow$", "\u00a0": "~"}


def is_missing(value) -> bool:
    """None, NaN or pandas' NA."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def number(value, digits: int, sign: bool = False, dash: str = DASH) -> str:
    """`value` with `digits` decimals (a leading + with `sign`), or `dash` when it is missing."""
    if is_missing(value):
        return dash
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def latex_escape(text: str) -> str:
    """`text` as LaTeX source: special characters escaped, non-ASCII characters spelt in ASCII."""
    out = []
    for char in str(text):
        if char in LATEX_SPECIALS:
            out.append(LATEX_SPECIALS[char])
        elif char in LATEX_UNICODE:
            out.append(LATEX_UNICODE[char])
        elif ord(char) < 128:
            out.append(char)
        else:   # an accented letter keeps its base letter; anything else has no ASCII form
            out.append(unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or "?")
    return "".join(out)


def key_decimals(values: pd.Series) -> int:
    """The fewest decimals (at most 4) that show every value of a float key column exactly (0.0, 0.4: 1)."""
    present = [float(v) for v in values if not is_missing(v)]
    for digits in range(1, 5):
        if all(abs(round(v, digits) - v) < 1e-9 for v in present):
            return digits
    return 4


def column_text(values: pd.Series, digits: int | None, dash: str) -> list[str]:
    """Cells of one plain column: integers as integers, floats with `digits` decimals (None: as few as
    show every value exactly), text as it is, a missing value as `dash`."""
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return [dash if is_missing(v) else str(v) for v in values]
    if pd.api.types.is_float_dtype(values):
        places = key_decimals(values) if digits is None else digits
        return [number(v, places, dash=dash) for v in values]
    return [dash if is_missing(v) else str(v) for v in values]


def mean_sd(mean, sd, n, digits: int, latex: bool) -> str:
    """One summary cell: "a ± b" (LaTeX "$a \\pm b$") over n > 1 values, "a (n=1)" over one, a dash
    when there is no value."""
    if is_missing(mean) or is_missing(n) or int(n) == 0:
        return LATEX_DASH if latex else DASH
    if int(n) > 1 and not is_missing(sd):
        return rf"${mean:.{digits}f} \pm {sd:.{digits}f}$" if latex else f"{mean:.{digits}f} ± {sd:.{digits}f}"
    return f"${mean:.{digits}f}$ (n={int(n)})" if latex else f"{mean:.{digits}f} (n={int(n)})"


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def markdown_table(header: list[str], rows: list[list[str]], right: list[bool]) -> str:
    """A pipe table of text cells (no number is reformatted: tabulate's number parsing is off)."""
    frame = pd.DataFrame([[cell.replace("|", r"\|") for cell in row] for row in rows], columns=header)
    return frame.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if r else "left" for r in right])


def latex_table(header: list[str], rows: list[list[str]], right: list[bool], caption: str, label: str) -> str:
    """A booktabs table; `header`, `rows` and `label` are LaTeX already, `caption` is plain text."""
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{{''.join('r' if r else 'l' for r in right)}}}", r"\toprule",
             " & ".join(header) + r" \\", r"\midrule", *(" & ".join(row) + r" \\" for row in rows),
             r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
