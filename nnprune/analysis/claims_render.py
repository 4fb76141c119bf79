"""claims.md and the forest plots (claims_forest_{claim}.png/.pdf), from the Claim records
(nnprune/analysis/claim_records.py) that nnprune/analysis/verdicts.py fills. Nothing here computes a
statistic."""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt

from nnprune.analysis.claim_records import Claim, ClaimSettings
from nnprune.analysis.figures import save_figure  # also sets matplotlib's backend
from nnprune.analysis.table_text import number
from nnprune.analysis.verdicts import FLOOR, INSIDE, OUTSIDE, not_rivals, point_label
from nnprune.plan.names import DEFAULT_FOCUS

RULE = (
    "Fixed before the run (nnprune/analysis/stats.py, nnprune/analysis/verdicts.py). At each operating point of a "
    "claim, "
    "d = metric({focus}) - metric(comparator), with the metric oriented so that higher is better, is averaged "
    "within each seed (over its layers, datasets, ...): the seed is the replicate, and `pairs` counts seeds. "
    "Over the seeds: a (1 - alpha) Student-t interval of the mean of d and a two-sided paired t-test, its "
    "p-values Holm-adjusted across the claim's points (one family per comparison); claims.json adds the exact "
    "sign-flip permutation p over seeds (`p_sign_flip`) as an assumption-free check. Verdict: **equivalent** if "
    "the whole interval lies within +-margin (this wins when the interval also excludes 0); **supported** / "
    "**not supported** if the Holm-adjusted p < alpha, by the sign of the mean; **inconclusive** otherwise or "
    "with fewer than 2 seeds. MDD: the true mean difference that the test at alpha/m (m points) detects with "
    "the configured power, for this number of seeds and the observed spread (noncentral t). Comparators: the "
    "best other criterion at the point (by mean{not_rivals}) and random. Primary point: named in the config "
    "before the run; when it was not tested, the nearest "
    "tested point stands in, flagged. Seed check of the primary point (it tells disagreement from low power): "
    "(a) leave one seed out, each subset tested again by the same rule: a subset **disagrees** when its verdict "
    "is the opposite direction or when its verdict differs and its interval excludes the all-seeds mean; an "
    "inconclusive subset whose interval contains that mean only has less power; (b) the seeds dealt alternately "
    "into two halves, whose mean differences are compared by Welch's t-test: they disagree when p < alpha and "
    "they differ by more than the margin. The "
    "claim's verdict is the one from all seeds, or **unstable** when (a) or (b) finds disagreement; **not "
    "checkable** below 3 seeds.")


def rule_text(focus: str) -> str:
    """The decision rule of claims.md, for the criterion the claims test."""
    excluded = sorted(not_rivals(focus))
    words = (f"; {', '.join(excluded)}, the same energy in another form, is not a rival" if excluded else "")
    return RULE.format(focus=focus, not_rivals=words)


def _digits(margin: float | None) -> int:
    return 3 if margin is not None and margin < 0.5 else 2


def _number(value, digits: int, sign: bool = True) -> str:
    """A signed (by default) number of claims.md; "–" when it is missing (None or NaN)."""
    return number(value, digits, sign=sign)


def _p(value) -> str:
    return "–" if value is None or value != value else "<0.001" if value < 0.001 else f"{value:.3g}"


def _point_name(point: dict) -> str:
    name = point_label(point.get("stratum"), point["label"])
    return f"**{name}** (primary)" if point.get("primary") else name


def regime_words(values: dict, inside: bool, gap: str) -> str:
    """A point's regime check (`verdicts.regime_table` values) in words: inside or **outside**, the
    best criterion's mean, `gap` (its distance from the baselines) and the baselines' mean."""
    return (f"{'inside' if inside else '**outside**'} (best {values['best_criterion']} {values['best_mean']:.2f}%, "
            f"{gap} {values['baseline_mean']:.2f}%)")


def regime_cell(point: dict) -> str:
    """A point's regime check in a points table; "–" for a point without one."""
    if "regime" not in point:
        return "–"
    return regime_words(point, point["regime"] == INSIDE, f"{_above_below(point['gap_pp'])} baselines")


def points_table(points: list[dict]) -> list[str]:
    regime = any("regime" in point for point in points)
    focus = points[0]["focus"] if points else DEFAULT_FOCUS
    lines = [f"| point | {focus} vs | pairs (seeds) | mean difference | 95% CI | margin | Holm p | verdict | MDD |"
             + (" paper's regime |" if regime else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if regime else "")]
    for point in points:
        digits = _digits(point["margin"])
        interval = ("–" if point["ci_low"] is None else
                    f"[{_number(point['ci_low'], digits)}, {_number(point['ci_high'], digits)}]")
        lines.append(f"| {_point_name(point)} | {point['comparator']} | {point['pairs']} | "
                     f"{_number(point['mean_difference'], digits)} | {interval} | {point['margin']:g} | "
                     f"{_p(point['p_holm'])} | {point['verdict']} | {_number(point['mdd'], digits, sign=False)} |"
                     + (f" {regime_cell(point)} |" if regime else ""))
    return lines


def _grid(rows: dict[str, dict[str, str]], columns: list[str], corner: str) -> list[str]:
    lines = [f"| {corner} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(cells.get(c, "–") for c in columns) + " |" for name, cells in rows.items()]
    return lines


def across_strata_line(check: dict) -> str:
    """Whether the verdict against the best other criterion survives a change of stratum."""
    if not check["values"]:
        return f"*Across {check['name']}s:* no level was tested in more than one {check['name']}."
    parts = ["at " + entry["label"] + ": " + ", ".join(
        f"{stratum} {verdict} (vs {entry['comparators'][stratum]})" for stratum, verdict in entry["verdicts"].items())
        for entry in check["values"]]
    outcome = ("the verdict survives a change of " if check["survives"] else "the verdict does **not** survive a "
               "change of ") + check["name"]
    return f"*Across {check['name']}s:* " + "; ".join(parts) + f": {outcome}."


def render_claim(claim: Claim) -> list[str]:
    lines = [f"## {claim.name}: **{claim.verdict}**", "", f"*Claim.* {claim.claim}", ""]
    if not claim.points:
        return lines + [f"*Test.* {claim.metric}", ""] + [f"- {note}" for note in claim.notes] + [""]
    primary = claim.primary
    where = next((_point_name(p) for p in claim.points if p["primary"]), str(primary.get("axis_value")))
    fallback = (f". **Fallback:** {primary['reason']}." if primary.get("fallback")
                else f" ({primary['reason']})." if primary.get("reason") else ".")
    lines += [f"*Metric.* {claim.metric}. *Axis.* {claim.axis}. *Replicate.* {claim.replicate}.", "",
              f"*Primary point.* {where.replace('**', '').replace(' (primary)', '')}{fallback}", "",
              f"*Holds where* ({claim.focus} vs the best other criterion): {claim.holds_where}.", "",
              *seed_check_lines(claim.seed_check, _digits(claim.points[0]["margin"]))]
    if claim.regime:
        regime = claim.regime
        primary_text = ("–" if regime["primary"] is None else
                        f"{regime['primary']} ({gap_words(regime['primary_gap_pp'])})")
        lines += [f"*Regime check*: {regime['rule']}. The primary point is {primary_text}. "
                  f"Inside: {', '.join(regime['inside']) or 'none'}. "
                  f"Outside: {', '.join(regime['outside']) or 'none'}.", ""]
    if claim.across_strata:
        lines += [across_strata_line(claim.across_strata), ""]
    if claim.along_cuts:
        lines += along_cuts_lines(claim.along_cuts, claim.focus)
    for comparison, title in (("best other", f"{claim.focus} against the best other criterion at each point"),
                              ("random", f"{claim.focus} against `{FLOOR}`")):
        mine = [p for p in claim.points if p["comparison"] == comparison]
        if mine:
            tested = sum(p["p_holm"] is not None for p in mine)
            lines += [f"*{title}* (Holm over {tested} point{'s' if tested != 1 else ''}):", "",
                      *points_table(mine), ""]
    columns = list(dict.fromkeys(_point_name(p).replace("**", "").replace(" (primary)", "") for p in claim.points))
    if claim.ranking:
        rows = {entry["criterion"]: {_point_name(p).replace("**", "").replace(" (primary)", ""):
                                     f"{_number(p['mean_difference'], _digits(p['margin']))} ({p['verdict']})"
                                     for p in entry["points"]} for entry in claim.ranking}
        lines += [f"*Ranking against `{FLOOR}`* (mean difference from {FLOOR}, verdict by the same rule, Holm over "
                  "each criterion's points; ordered by the primary point):", "", *_grid(rows, columns, "criterion"), ""]
    rows: dict[str, dict[str, str]] = {}
    for entry in claim.per_criterion:
        name = point_label(entry.get("stratum"), entry["label"])
        rows.setdefault(entry["criterion"], {})[name] = f"{entry['mean']:.3f} (n={entry['replicates']})"
    lines += ["*Per criterion* (the metric, mean over seeds of each seed's mean; n = seeds):", "",
              *_grid(rows, columns, "criterion"), ""]
    for extra in claim.secondary:
        lines += [f"### {claim.name}, secondary: {extra['name']}", "",
                  f"*Metric.* {extra['metric']}. *Holds where:* {extra['holds_where']}.", ""]
        if extra.get("in_words"):
            lines += [f"*In plain words.* {extra['in_words']}"
                      + (f" {extra['baselines_words']}" if extra.get("baselines_words") else ""), "",
                      *scratch_means_table(extra["points"], claim.focus), ""]
        if extra["points"]:
            lines += [*points_table(extra["points"]), ""]
        if extra.get("regime", {}).get("per_point"):
            threshold = extra["regime"]["threshold_pp"]
            lines += ["*Regime check:* " + "; ".join(
                f"{entry['label']}: " + regime_words(entry, entry["gap_pp"] <= threshold, gap_words(entry["gap_pp"]))
                for entry in extra["regime"]["per_point"]) + ".", ""]
        if extra.get("consistency"):
            lines += consistency_table(extra["consistency"], _digits(extra["margin"]))
        lines += [f"- {note}" for note in extra.get("notes", [])] + ([""] if extra.get("notes") else [])
    return lines + [f"- {note}" for note in claim.notes] + [""]


def along_cuts_lines(cuts: dict, focus: str) -> list[str]:
    """The CNN claim along the cut axis: its "holds where" over cuts, the regime of each, and the
    points (one per cut at the largest budget)."""
    return [f"*Along the cut axis* ({focus} vs the best other criterion after {cuts['budget_label']}, one point per "
            f"cut; the claim's own points, Holm over all of them): {cuts['holds_where']}. Inside the paper's regime: "
            f"{', '.join(cuts['inside']) or 'none'}. Outside it, still judged: {', '.join(cuts['outside']) or 'none'}.",
            "", *points_table(cuts["points"]), "", *parting_lines(cuts.get("parting") or {})]


def parting_lines(parting: dict) -> list[str]:
    """Where the criteria part ways: the answer in words, then per cut who shares the first place."""
    if not parting:
        return []
    lines = [f"*Where the criteria part ways* ({parting['rule']}): {parting['in_words']}", "",
             "| cut | criteria | first place (shared) | ranked below | better than random | MDD vs random (pp) | "
             "paper's regime |", "|---|---|---|---|---|---|---|"]
    for cut in parting["cuts"]:
        below = ", ".join(f"{c} ({k})" for c, k in cut["below"].items()) or "none"
        versus = cut["versus_random"]
        better = ", ".join(c for c, v in versus.items() if v["verdict"] == "supported") or "none"
        mdds = [v["mdd"] for v in versus.values() if v["mdd"] is not None]
        mdd = f"{min(mdds):.2f} to {max(mdds):.2f}" if mdds else "–"
        lines.append(f"| {cut['label']} | {cut['criteria']} | {', '.join(cut['first'])} | {below} | {better} | "
                     f"{mdd} | {cut['regime']} |")
    others = sorted({c for cut in parting["cuts"] for c in cut.get("focus_versus", {})})
    if not others:
        return lines + [""]
    lines += ["", f"*{parting['focus']} against each criterion at each cut* (mean difference in pp, paired by seed, "
                  "95% CI, verdict by the claims' rule; Holm over the whole table):", "",
              "| cut | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
    for cut in parting["cuts"]:
        cells = []
        for other in others:
            found = cut.get("focus_versus", {}).get(other)
            cells.append("–" if not found or found["ci_low"] is None else
                         f"{_number(found['mean_difference'], 2)} [{_number(found['ci_low'], 2)}, "
                         f"{_number(found['ci_high'], 2)}] {found['verdict']}")
        lines.append(f"| {cut['label']} | " + " | ".join(cells) + " |")
    return lines + [""]


def scratch_means_table(points: list[dict], focus: str) -> list[str]:
    """Per cut, the means over the paired seeds: the focus pruned and fine-tuned, its architecture
    from scratch, and their baselines."""
    lines = [f"| cut | {focus}, pruned and fine-tuned (%) | its architecture from scratch (%) | baselines (%) | "
             "scratch − baselines (pp) | seeds |", "|---|---|---|---|---|---|"]
    lines += [f"| {p['label']} | {p['pruned_mean']:.2f} | {p['scratch_mean']:.2f} | {p['baseline_mean']:.2f} | "
              f"{_number(p['scratch_minus_baselines'], 2)} | {p['pairs']} |" for p in points]
    return lines


def seed_check_lines(check: dict, digits: int) -> list[str]:
    """The seed check of the primary verdict in words, then what each subset found."""
    if not check:
        return []
    status = check.get("status")
    if status == "not checkable":
        return [f"*Seed check* of the primary verdict: **not checkable** ({check.get('reason')}).", ""]
    lines = [f"*Seed check* of the primary verdict ({check.get('rule')}): **{status}**: {check.get('reason')}.", "",
             "| subset | seeds | verdict | mean difference | 95% CI | finding |", "|---|---|---|---|---|---|",
             f"| all seeds | {len(check['replicates'])} | {check['verdict']} | "
             f"{_number(check['mean_difference'], digits)} | – | – |"]
    for entry in check["leave_one_out"]:
        interval = f"[{_number(entry['ci_low'], digits)}, {_number(entry['ci_high'], digits)}]"
        lines.append(f"| without seed {entry['left_out']} | {entry['pairs']} | {entry['verdict']} | "
                     f"{_number(entry['mean_difference'], digits)} | {interval} | {entry['finding']} |")
    halves = check.get("halves")
    if halves:
        interval = f"[{_number(halves['ci_low'], digits)}, {_number(halves['ci_high'], digits)}]"
        lines.append(f"| halves {halves['seeds'][0]} − {halves['seeds'][1]} | "
                     f"{len(halves['seeds'][0])} + {len(halves['seeds'][1])} | Welch p {_p(halves['p_value'])} | "
                     f"{_number(halves['mean_differences'][0], digits)} − "
                     f"{_number(halves['mean_differences'][1], digits)} = {_number(halves['difference'], digits)} | "
                     f"{interval} | halves {halves['finding']} |")
    return lines + [""]


def consistency_table(records: list[dict], digits: int) -> list[str]:
    """Each criterion's own difference against 0: consistent where equivalent within the margin."""
    lines = ["*Consistency per criterion* (its own difference against 0 by the same rule; consistent = "
             "equivalent within the margin):", "",
             "| criterion | point | pairs (seeds) | mean difference | 95% CI | verdict | reading | MDD |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in records:
        interval = ("–" if entry["ci_low"] is None else
                    f"[{_number(entry['ci_low'], digits)}, {_number(entry['ci_high'], digits)}]")
        lines.append(f"| {entry['criterion']} | {entry['label']} | {entry['pairs']} | "
                     f"{_number(entry['mean_difference'], digits)} | {interval} | {entry['verdict']} | "
                     f"**{entry['reading']}** | {_number(entry['mdd'], digits, sign=False)} |")
    return lines + [""]


def regime_summary(claim: Claim) -> str:
    """The primary point's regime status, for the summary tables ("–" for claims without one)."""
    regime = claim.regime or {}
    if regime.get("primary") is None:
        return "–"
    word = "inside" if regime["primary"] == INSIDE else "outside"
    return f"{word} ({gap_words(regime['primary_gap_pp'])})"


def _above_below(gap: float) -> str:
    return f"{abs(gap):.2f} pp {'below' if gap >= 0 else 'above'}"


def gap_words(gap: float) -> str:
    """The best criterion's gap (pp) from the baselines, in words."""
    return f"best criterion {_above_below(gap)} the baselines"


def render_markdown(claims: list[Claim], study: str, settings: ClaimSettings, limits: list[str]) -> str:
    margins = ", ".join(f"`{k}` {v:g}" for k, v in settings.margins.items())
    asked = "" if settings.paper_focus else f", asked of criterion `{settings.focus}`"
    lines = [f"# Claims of Yeom et al. 2021 (energy-aware pruning){asked}, tested by study `{study}`", "",
             "## Decision rule (fixed before the run)", "", rule_text(settings.focus), "",
             f"Settings (config `claims:`): alpha {settings.alpha:g}, power {settings.power:g}, margins {margins}; "
             "primary points " + ", ".join(f"`{k}` {v}" for k, v in settings.primary.items()) + ".", "",
             "| claim | verdict at the primary point | paper's regime | seed check | holds where |",
             "|---|---|---|---|---|"]
    lines += [f"| {c.name} | {c.verdict} | {regime_summary(c)} | {(c.seed_check or {}).get('status', '–')} | "
              f"{c.holds_where or '–'} |" for c in claims]
    lines.append("")
    for claim in claims:
        lines += render_claim(claim)
    lines += ["## What this scale cannot show", ""] + [f"- {limit}" for limit in limits] + [""]
    return "\n".join(lines)


def forest(claim: Claim | None, name: str):
    """One claim's forest plot: each point's difference with its CI, the equivalence band, the
    primary point marked (a star, bold label). When the differences span far more than the margin,
    a second panel repeats them zoomed to +-5 margins. A claim the study did not test gets a
    figure that says so."""
    points = [p for p in claim.points if p["comparison"] in ("best other", "random")] if claim else []
    if not points:
        fig, ax = plt.subplots(figsize=(7, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{name}: not tested by this study", ha="center", va="center")
        return fig
    margin = points[0]["margin"]
    ends = [abs(v) for p in points for v in (p["ci_low"], p["ci_high"], p["mean_difference"]) if v is not None]
    zoom = bool(ends) and max(ends) > 10 * margin
    fig, axes = plt.subplots(1, 2 if zoom else 1, sharey=True, squeeze=False, layout="constrained",
                             figsize=(11 if zoom else 8.5, 1.7 + 0.42 * len(points)),
                             gridspec_kw={"width_ratios": [3, 2]} if zoom else None)
    for ax in axes[0]:
        ax.axvspan(-margin, margin, color="0.88", label=f"equivalence band ±{margin:g}")
        ax.axvline(0, color="0.3", linewidth=1)
        ax.grid(axis="x", alpha=0.3)
        for index, point in enumerate(points):
            color = "C0" if point["comparison"] == "best other" else "0.45"
            marker, size = ("*", 14) if point["primary"] else ("o", 6)
            mean = point["mean_difference"]
            if point["ci_low"] is not None:
                ax.errorbar(mean, -index, xerr=[[mean - point["ci_low"]], [point["ci_high"] - mean]], fmt=marker,
                            markersize=size, color=color, capsize=3)
            elif mean is not None:
                ax.plot(mean, -index, marker=marker, markersize=size, markerfacecolor="none", color=color)
        split = sum(p["comparison"] == "best other" for p in points)
        if 0 < split < len(points):
            ax.axhline(-split + 0.5, color="0.6", linewidth=0.8, linestyle=":")
    if zoom:
        axes[0][1].set_xlim(-5 * margin, 5 * margin)
        axes[0][1].set_title(f"zoom: ±{5 * margin:g}", fontsize=8)
    last = axes[0][-1]
    primary = "primary" + (f", stands in for {claim.primary['configured']}" if claim.primary.get("fallback") else "")
    labels = []
    for index, point in enumerate(points):
        color = "C0" if point["comparison"] == "best other" else "0.45"
        last.annotate(f"{point['verdict']} (n={point['pairs']})", xy=(1.02, -index),
                      xycoords=("axes fraction", "data"), va="center", fontsize=8, color=color)
        where = point_label(point.get("stratum"), point["label"])
        outside = "  (outside the paper's regime)" if point.get("regime") == OUTSIDE else ""
        labels.append(f"{where} vs {point['comparator']}" + (f"  [{primary}]" if point["primary"] else "") + outside)
    first = axes[0][0]
    first.set_yticks([-i for i in range(len(points))], labels, fontsize=8)
    for tick, point in zip(first.get_yticklabels(), points):
        tick.set_fontweight("bold" if point["primary"] else "normal")
        if point.get("regime") == OUTSIDE:
            tick.set_fontstyle("italic")
            tick.set_color("0.4")
    first.set_ylim(-len(points) + 0.5, 0.5)
    focus = points[0]["focus"]
    first.set_xlabel(f"{focus} - comparator (> 0: {focus} better); 95% CI over seeds; n = seeds")
    fig.suptitle("\n".join(textwrap.wrap(f"{claim.name}: {claim.holds_where}", 110)), fontsize=9)
    handles, _ = first.get_legend_handles_labels()
    regime = (f"; italic grey labels: {OUTSIDE} (best criterion more than {claim.regime['threshold_pp']:g} pp "
              "below its baselines)") if any(p.get("regime") == OUTSIDE for p in points) else ""
    excluded = f" (not {' / '.join(sorted(not_rivals(focus)))})" if not_rivals(focus) else ""
    fig.legend(handles[:1], [f"equivalence band ±{margin:g}"], loc="outside lower center", fontsize=7,
               title=f"blue: best other criterion{excluded}; grey: {FLOOR}{regime}",
               title_fontsize=7)
    return fig


def write_forests(claims: list[Claim], folder: Path, names: tuple[str, ...]) -> list[Path]:
    """claims_forest_{name}.png/.pdf in `folder` for each of `names`; returns the files written."""
    by_name = {claim.name: claim for claim in claims}
    written = []
    for name in names:
        written += save_figure(forest(by_name.get(name), name), folder, f"claims_forest_{name}")
    return written
