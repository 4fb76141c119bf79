"""`nnprune compare A B`: which verdicts of study folder A replicate in study folder B.

Both folders hold a `claims.json` (written by `nnprune claims`). Every claim's overall verdict and every
operating point of it (main family and secondary families) is matched across the two studies by
(claim, section, comparison, stratum, label); the comparator is not part of the key, since each study
picks it from its own data, and both are shown. Importable without torch: stdlib and pandas only.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from nnprune.analysis.table_text import DASH, is_missing, markdown_table, number
from nnprune.errors import UserError
from nnprune.files import read_json, write_text

MAIN = "main"
CLAIM_ROW = "claim"
POINT_ROW = "point"
COLUMNS = ["kind", "claim", "section", "comparison", "point", "comparator_a", "comparator_b",
           "verdict_a", "verdict_b", "mean_a", "ci_low_a", "ci_high_a", "mean_b", "ci_low_b", "ci_high_b",
           "agree", "overlap", "seed_check_a", "seed_check_b", "margin", "same_metric"]

NUMBER_COLUMNS = ["mean_a", "ci_low_a", "ci_high_a", "mean_b", "ci_low_b", "ci_high_b", "margin"]

PointKey = tuple[str, str | None, str | None]      # (comparison, stratum, label) within a section


def load_claims(folder: str | os.PathLike) -> dict:
    """The parsed `folder/claims.json`; a UserError naming the folder when it is missing or malformed."""
    folder = Path(folder)
    path = folder / "claims.json"
    fix = (f"run the study there (`snakemake --cores all --configfile <its config>`), "
           f"or `nnprune claims --study-dir {folder}` on its runs.csv")
    if not folder.is_dir():
        raise UserError(f"study folder '{folder}' does not exist (so it has no claims.json)", fix)
    if not path.is_file():
        raise UserError(f"study folder '{folder}' has no claims.json", fix)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise UserError(f"{path} has no list of claims under \"claims\"",
                        f"regenerate it with `nnprune claims --study-dir {folder}`")
    return data


def _seed_check(claim: dict) -> str:
    """The claim's seed-check status (new format `seed_check`, else old `seed_split`), or a dash."""
    for key in ("seed_check", "seed_split"):
        check = claim.get(key)
        if isinstance(check, dict) and check.get("status") is not None:
            return str(check["status"])
    return DASH


def _sections(claim: dict, study: str) -> dict[str, dict[PointKey, dict]]:
    """The claim's points by section ("main", then each secondary family's name), each keyed by
    (comparison, stratum, label) in file order."""
    families = [(MAIN, claim.get("points") or [])]
    families += [(family["name"], family.get("points") or []) for family in claim.get("secondary") or []]
    sections: dict[str, dict[PointKey, dict]] = {}
    for section, points in families:
        keyed = sections.setdefault(section, {})
        for point in points:
            key = (point.get("comparison"), point.get("stratum"), point.get("label"))
            if key in keyed:
                raise UserError(f"{study}: claim {claim.get('name')!r}, {section}: two points {key} in claims.json",
                                f"regenerate it with `nnprune claims --study-dir {study}`")
            keyed[key] = point
    return sections


def _union(first: list, second: list) -> list:
    """The items of `first`, then those of `second` that `first` lacks, each in its own order."""
    return list(first) + [item for item in second if item not in first]


def _intervals_overlap(a: dict | None, b: dict | None) -> bool:
    """True when both points have a complete interval and the two intersect."""
    if a is None or b is None:
        return False
    bounds = [a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high")]
    if any(is_missing(value) for value in bounds):
        return False
    return max(bounds[0], bounds[2]) <= min(bounds[1], bounds[3])


def _agree(verdict_a: Any, verdict_b: Any) -> bool:
    return verdict_a is not None and verdict_b is not None and verdict_a == verdict_b


def _point_label(key: PointKey, a: dict | None, b: dict | None) -> str:
    _, stratum, label = key
    text = f"{stratum}, {label}" if stratum else str(label)
    primary = any(point is not None and point.get("primary") for point in (a, b))
    return text + " (primary)" if primary else text


def _point_row(claim: str, section: str, key: PointKey, a: dict | None, b: dict | None) -> dict:
    def side(point: dict | None, field: str) -> Any:
        return None if point is None else point.get(field)

    margin = side(a, "margin")
    return {"kind": POINT_ROW, "claim": claim, "section": section, "comparison": key[0],
            "point": _point_label(key, a, b),
            "comparator_a": side(a, "comparator"), "comparator_b": side(b, "comparator"),
            "verdict_a": side(a, "verdict"), "verdict_b": side(b, "verdict"),
            "mean_a": side(a, "mean_difference"), "ci_low_a": side(a, "ci_low"), "ci_high_a": side(a, "ci_high"),
            "mean_b": side(b, "mean_difference"), "ci_low_b": side(b, "ci_low"), "ci_high_b": side(b, "ci_high"),
            "agree": _agree(side(a, "verdict"), side(b, "verdict")), "overlap": _intervals_overlap(a, b),
            "seed_check_a": DASH, "seed_check_b": DASH,
            "margin": side(b, "margin") if margin is None else margin}


def same_metric(a: dict | None, b: dict | None) -> bool:
    """Whether two claims (or two families) read the same metric: the metric text of both studies
    equal. A verdict on another metric (e.g. fine-tuned against BN-recalibrated accuracy) is no
    replication, whatever the two verdicts say."""
    return a is not None and b is not None and a.get("metric") == b.get("metric")


def _claim_row(name: str, a: dict | None, b: dict | None) -> dict:
    row: dict[str, Any] = {column: None for column in COLUMNS}
    verdict_a = None if a is None else a.get("verdict")
    verdict_b = None if b is None else b.get("verdict")
    row.update(kind=CLAIM_ROW, claim=name, point="claim verdict", verdict_a=verdict_a, verdict_b=verdict_b,
               same_metric=same_metric(a, b),
               agree=_agree(verdict_a, verdict_b), overlap=False,
               seed_check_a=None if a is None else _seed_check(a),
               seed_check_b=None if b is None else _seed_check(b))
    return row


def compare_studies(a: dict, b: dict, name_a: str, name_b: str) -> pd.DataFrame:
    """One row per claim (kind "claim": its overall verdict), then one per point of it in either study
    (kind "point": main family, then secondary families), with both sides' verdicts, mean differences
    and intervals, and whether the verdicts agree and the intervals overlap. Columns: COLUMNS; a side a
    study lacks is None (text) or NaN (numbers)."""
    claims_a = {claim["name"]: claim for claim in a.get("claims", [])}
    claims_b = {claim["name"]: claim for claim in b.get("claims", [])}
    rows = []
    for name in _union(list(claims_a), list(claims_b)):
        claim_a, claim_b = claims_a.get(name), claims_b.get(name)
        rows.append(_claim_row(name, claim_a, claim_b))
        sections_a = _sections(claim_a, name_a) if claim_a is not None else {}
        sections_b = _sections(claim_b, name_b) if claim_b is not None else {}
        families_a = _families(claim_a)
        families_b = _families(claim_b)
        for section in _union(list(sections_a), list(sections_b)):
            points_a, points_b = sections_a.get(section, {}), sections_b.get(section, {})
            metric = same_metric(families_a.get(section), families_b.get(section))
            for key in _union(list(points_a), list(points_b)):
                rows.append({**_point_row(name, section, key, points_a.get(key), points_b.get(key)),
                             "same_metric": metric})
    frame = pd.DataFrame(rows, columns=COLUMNS, dtype=object)      # text cells keep None for "absent"
    return frame.astype({**dict.fromkeys(NUMBER_COLUMNS, float), "agree": bool, "overlap": bool,
                         "same_metric": bool})


def _families(claim: dict | None) -> dict[str, dict]:
    """A claim's families by section name: the main one (the claim itself) and each secondary."""
    if claim is None:
        return {}
    return {MAIN: claim, **{family["name"]: family for family in claim.get("secondary") or []}}


def summary_line(frame: pd.DataFrame) -> str:
    """"N of M verdicts agree (claims: k of K)": rows whose two verdicts are equal, over all rows."""
    claims = frame[frame["kind"] == CLAIM_ROW]
    line = (f"{int(frame['agree'].sum())} of {len(frame)} verdicts agree "
            f"(claims: {int(claims['agree'].sum())} of {len(claims)})")
    other = claims[~claims["same_metric"]]
    if len(other):
        line += (f"; {', '.join(map(str, other['claim']))} read{'s' if len(other) == 1 else ''} another metric in "
                 "each study: no replication either way")
    return line


def _text(value: Any) -> str:
    return DASH if is_missing(value) else str(value)


def _estimate(mean: Any, low: Any, high: Any, digits: int) -> str:
    """"+m [+l, +h]", "+m" without an interval, a dash without a mean."""
    if is_missing(mean):
        return DASH
    shown = number(mean, digits, sign=True)
    if is_missing(low) and is_missing(high):
        return shown
    return f"{shown} [{number(low, digits, sign=True)}, {number(high, digits, sign=True)}]"


def _comparators(a: Any, b: Any) -> str:
    if is_missing(a) and is_missing(b):
        return DASH
    return _text(a) if a == b else f"{_text(a)} / {_text(b)}"


def render_markdown(frame: pd.DataFrame, name_a: str, name_b: str) -> str:
    """The comparison as Markdown: the summary line, then a pipe table (verdict, mean difference
    [interval] of each study; 2 decimals where the margin is >= 0.5, else 3)."""
    header = ["claim", "section", "point", "comparison", "comparator", f"verdict: {name_a}",
              f"verdict: {name_b}", f"mean [CI]: {name_a}", f"mean [CI]: {name_b}", "agree", "overlap",
              f"seed check: {name_a}", f"seed check: {name_b}"]
    rows = []
    for row in frame.itertuples(index=False):
        digits = 2 if not is_missing(row.margin) and row.margin >= 0.5 else 3
        is_claim = row.kind == CLAIM_ROW
        has_intervals = not any(is_missing(v) for v in (row.ci_low_a, row.ci_high_a, row.ci_low_b, row.ci_high_b))
        rows.append([f"**{row.claim}**" if is_claim else str(row.claim), _text(row.section),
                     (f"**{row.point}**" if is_claim else str(row.point))
                     + ("" if row.same_metric else " (another metric in each study)"), _text(row.comparison),
                     _comparators(row.comparator_a, row.comparator_b),
                     _text(row.verdict_a), _text(row.verdict_b),
                     _estimate(row.mean_a, row.ci_low_a, row.ci_high_a, digits),
                     _estimate(row.mean_b, row.ci_low_b, row.ci_high_b, digits),
                     "yes" if row.agree else "**no**",
                     ("yes" if row.overlap else "**no**") if has_intervals else DASH,
                     _text(row.seed_check_a), _text(row.seed_check_b)])
    right = [False] * 7 + [True, True] + [False] * 4
    return f"{summary_line(frame)}\n\n{markdown_table(header, rows, right)}\n"


def write_compare(frame: pd.DataFrame, out_dir: str | os.PathLike, name_a: str, name_b: str) -> list[Path]:
    """Write out_dir/compare.csv and out_dir/compare.md atomically; returns their paths."""
    out_dir = Path(out_dir)
    return [write_text(out_dir / "compare.csv", frame.to_csv(index=False)),
            write_text(out_dir / "compare.md", render_markdown(frame, name_a, name_b))]
