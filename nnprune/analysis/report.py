"""`nnprune report`: a study's tables/ (`nnprune.analysis.tables`, and the leaderboard of
`nnprune.analysis.leaderboard` where clean runs are fine-tuned at several cuts) and figures/
(`nnprune.analysis.figures`, each as .png and .pdf) from its runs.csv and stability.csv, and
figures/notes.md: which figures were drawn, and why any was not (its axis would have one value).

runs.csv's from-scratch controls (rows of kind "scratch") enter the leaderboard only. Given the
tables and figures the workflow declares (`nnprune.plan.grid.report_outputs`), the report writes
exactly those and stops with a UserError when one cannot be drawn from the data; without them it
writes what the data give."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from nnprune.analysis.aggregate import at_budget, split_kinds, study_budgets_of
from nnprune.analysis.claim_records import ClaimSettings
from nnprune.analysis.figures import (
    budget_curve,
    plot_budget_curve,
    plot_label_noise,
    plot_macs,
    plot_score_images,
    plot_score_stability,
    save_figure,
)
from nnprune.analysis.leaderboard import fine_tuned_cuts, leaderboard, plot_leaderboard, write_leaderboard
from nnprune.analysis.style import DEFAULT_STYLE, Style
from nnprune.analysis.tables import Table, accuracy_metrics, budget_table, build_tables, main_slice, write_table
from nnprune.errors import UserError
from nnprune.files import write_text
from nnprune.plan.names import DEFAULT_FOCUS
from nnprune.plan.studyconfig import main_label_noise

AXIS_FIGURES = ("acc_vs_macs", "acc_vs_score_images", "acc_vs_label_noise", "score_stability")


def write_report(study_dir: Path, main_pruning: str | None = None, main_score_images: int | None = None,
                 criteria=(), focus: str = DEFAULT_FOCUS, settings: ClaimSettings | None = None,
                 tables: list[str] | None = None, figures: list[str] | None = None) -> list[Path]:
    """Write tables/ and figures/ under `study_dir` from runs.csv and stability.csv, and
    figures/notes.md; `criteria`: the config's order of the criteria, kept by every figure;
    `focus`: the criterion the claims test, first and thicker in every figure, and the one the
    leaderboard's from-scratch control is compared with; `settings`: the claims' rule (margin
    `accuracy_pp`, alpha, power, regime_gap_pp; default ClaimSettings()) that ranks the
    leaderboard. `tables`, `figures`: the names the workflow declares, written exactly (a
    UserError names any that the data cannot give); None: every one the data give. Returns the
    files written. `main_pruning` defaults to the first run's, `main_score_images` to the largest."""
    style = Style(focus=focus, criteria=tuple(criteria))
    runs, scratch = split_kinds(pd.read_csv(study_dir / "runs.csv"))
    stability_path = study_dir / "stability.csv"
    stability = pd.read_csv(stability_path) if stability_path.exists() else pd.DataFrame()
    main_pruning = main_pruning or runs.pruning.iloc[0]
    sizes = sorted(s for s in runs.score_images.unique() if s > 0)
    main_score_images = main_score_images or (sizes[-1] if sizes else 0)
    every_budget, runs = runs, at_budget(runs)
    built = build_tables(runs, stability, main_pruning, main_score_images)
    curve = budget_curve(every_budget, main_score_images)
    if len(curve):
        built["by_budget"] = budget_table(curve, main_score_images)
    board, budget = leaderboard_of(every_budget, scratch, main_score_images, focus, settings or ClaimSettings())
    table_writers: dict[str, Callable[[Path], list[Path]]] = {
        name: partial(write_table, name=name, table=table) for name, table in built.items()}
    extra_figures = {}
    if len(curve):
        extra_figures["acc_vs_budget"] = lambda: plot_budget_curve(curve, style)
    if board is not None:
        table_writers["leaderboard"] = lambda folder: write_leaderboard(board, folder, budget)
        extra_figures["leaderboard"] = lambda: plot_leaderboard(board, style)
    absent = absent_figures(built, main_pruning)
    drawable = [name for name in (*AXIS_FIGURES, *extra_figures)
                if name not in absent and (name != "score_stability" or name in built)]
    reasons = {**missing_outputs(stability, curve, every_budget, main_score_images), **absent}
    wanted_tables, wanted_figures = declared(tables, figures, list(table_writers), drawable, reasons)
    written = []
    for name in wanted_tables:
        written += table_writers[name](study_dir / "tables")
    written += build_figures(runs, built, main_pruning, study_dir / "figures", style, stability, set(wanted_figures))
    for name, draw in extra_figures.items():
        if name in wanted_figures:
            written += save_figure(draw(), study_dir / "figures", name)
    drawn = [path.stem for path in written if path.parent.name == "figures" and path.suffix == ".png"]
    written.append(write_figure_notes(study_dir / "figures", drawn, absent))
    return written


def leaderboard_of(runs: pd.DataFrame, scratch: pd.DataFrame, main_score_images: int, focus: str,
                   settings: ClaimSettings) -> tuple[pd.DataFrame | None, str | None]:
    """(the leaderboard frame, its budget) of the clean runs at the main score_images (data-free
    criteria at 0), every budget of runs.csv given; (None, None) unless they are fine-tuned at the
    largest budget at two cuts or more."""
    clean = runs[(runs.label_noise == main_label_noise(runs.label_noise)) & main_slice(runs, main_score_images)]
    if len(fine_tuned_cuts(clean)) < 2:
        return None, None
    frame = leaderboard(clean, scratch, focus, settings.margins["accuracy_pp"], settings.regime_gap_pp,
                        settings.alpha, settings.power)
    return frame, study_budgets_of(clean)[-1]


def missing_outputs(stability: pd.DataFrame, curve: pd.DataFrame, runs: pd.DataFrame,
                    main_score_images: int) -> dict[str, str]:
    """Why a table or figure that needs data the study lacks cannot be drawn (its name -> why)."""
    why = {}
    if not len(stability):
        why["score_stability"] = "stability.csv has no rows (no data-driven criterion was scored)"
    if not len(curve):
        why["by_budget"] = why["acc_vs_budget"] = "runs.csv holds no fine-tuned run (every budget is 0)"
    clean = runs[(runs.label_noise == main_label_noise(runs.label_noise)) & main_slice(runs, main_score_images)]
    cuts = fine_tuned_cuts(clean)
    why["leaderboard"] = (f"the clean runs at score_images {main_score_images} are fine-tuned at the largest budget "
                          f"at {len(cuts)} cut{'s' if len(cuts) != 1 else ''} ({', '.join(cuts) or 'none'}); "
                          "a leaderboard needs two or more")
    return why


def declared(tables: list[str] | None, figures: list[str] | None, available_tables: list[str],
             available_figures: list[str], reasons: dict[str, str]) -> tuple[list[str], list[str]]:
    """(tables, figures) to write, each in the report's order: every available one where the
    workflow declared none (None), else the declared ones, which must all be available."""
    lacking = []
    for names, available, kind in ((tables, available_tables, "table"), (figures, available_figures, "figure")):
        lacking += [f"{kind} {name}: {reasons.get(name, f'not a {kind} nnprune report writes')}"
                    for name in names or () if name not in available]
    if lacking:
        raise UserError(f"report: the workflow declares {'an output' if len(lacking) == 1 else 'outputs'} that "
                        f"this study's runs.csv and stability.csv cannot give ({'; '.join(lacking)})",
                        "rerun the aggregate rule if runs.csv is stale; otherwise nnprune.plan.grid.report_outputs "
                        "and the data disagree: declare only what the runs give (tables: "
                        f"{', '.join(available_tables)}; figures: {', '.join(available_figures)})")
    return ([name for name in available_tables if tables is None or name in tables],
            [name for name in available_figures if figures is None or name in figures])


def build_figures(runs: pd.DataFrame, tables: dict[str, Table], main_pruning: str, folder: Path,
                  style: Style = DEFAULT_STYLE, stability: pd.DataFrame | None = None,
                  wanted: set[str] | None = None) -> list[Path]:
    """The study's figures along its axes (those of `absent_figures` left out, and those not in
    `wanted` when given; an earlier report's copy of one removed), criteria in `style`'s order and
    colours; `stability` (stability.csv) says what the score-stability means are over. Returns
    the files written."""
    budgets = study_budgets_of(runs)
    at = budgets[-1] if budgets else None          # the budget of the fine-tuned panels
    runs = at_budget(runs)
    accs = accuracy_metrics(runs)
    order = style.order(runs.criterion.unique())
    absent = absent_figures(tables, main_pruning)
    figures = {"acc_vs_macs": lambda: plot_macs(tables["by_pruning"].frame, accs, order, main_pruning, style, at),
               "acc_vs_score_images": lambda: plot_score_images(tables["by_score_images"].frame, accs, order,
                                                                main_pruning, style, at),
               "acc_vs_label_noise": lambda: plot_label_noise(tables["by_label_noise"].frame, accs, order,
                                                              main_pruning, style, at)}
    if "score_stability" in tables:
        table = tables["score_stability"].frame
        figures["score_stability"] = lambda: plot_score_stability(
            table, style.order(table.criterion.unique()), _stability_counted(stability), style)
    written = []
    for name, draw in figures.items():
        if name not in absent and (wanted is None or name in wanted):
            written += save_figure(draw(), folder, name)
        elif name in absent:
            for stale in (folder / f"{name}.png", folder / f"{name}.pdf"):
                stale.unlink(missing_ok=True)       # an earlier report's figure, along an axis this study lacks
    return written


def absent_figures(tables: dict[str, Table], main_pruning: str) -> dict[str, str]:
    """The figures this study does not draw, each with why: their axis would have one value."""
    absent = {}
    sizes = sorted(tables["by_score_images"].frame.query("score_images > 0").score_images.unique())
    if len(sizes) < 2:
        pruned = (f"the data-driven criteria were pruned at one score_images only ({sizes[0]}, grid.score_sweep)"
                  if sizes else "no data-driven criterion was pruned (grid.prune_criteria)")
        absent["acc_vs_score_images"] = (f"{pruned} at {main_pruning}: a score_images axis would have "
                                         f"{len(sizes)} value{'s' if len(sizes) != 1 else ''}. The data-size "
                                         "evidence is tables/score_stability.")
    noise = sorted(tables["by_label_noise"].frame.label_noise.unique())
    if len(noise) < 2:
        absent["acc_vs_label_noise"] = (f"one label-noise level only ({', '.join(f'{n:g}' for n in noise)}) at "
                                        f"{main_pruning}: a label-noise axis would have one value. "
                                        "tables/by_label_noise holds its accuracies.")
    if "score_stability" in tables and tables["score_stability"].frame.score_images.nunique() < 2:
        absent["score_stability"] = ("scores at one score_images only, the reference itself: agreement "
                                     "with it is 1 by definition.")
    return absent


def write_figure_notes(folder: Path, drawn: list[str], absent: dict[str, str]) -> Path:
    """figures/notes.md: the figures drawn, and each one left out with why."""
    lines = ["# Figures of this study", "",
             "Drawn by `nnprune report` from runs.csv and stability.csv, each as .png and .pdf: "
             + ", ".join(drawn) + ".", "",
             "Not drawn:" if absent else "Not drawn: none (every axis has two values or more)."]
    lines += [f"- {name}: {why}" for name, why in absent.items()]
    return write_text(folder / "notes.md", "\n".join(lines) + "\n")


def _stability_counted(stability: pd.DataFrame | None) -> str:
    """What each score-stability mean is over: "19 layers × 5 seeds, n = 95" at the main label noise."""
    if stability is None or not len(stability):
        return "layers and seeds"
    main = stability[stability.label_noise == main_label_noise(stability.label_noise)]
    layers, seeds = main.layer.nunique(), main.seed.nunique()
    return f"{layers} layers × {seeds} seeds, n = {layers * seeds}"
