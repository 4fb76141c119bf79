"""A study that reuses another study's work (`reuse: results/default`): which of its baselines, score
files, pruned runs and fine-tunes the other folder already holds, made with the same recipe.

Each one is found by its path (the same id, criterion, score_images and pruning slug), then its
metrics.json's recorded spec is compared with the spec this study's job would get
(`nnprune.plan.jobspecs`): a setting that differs is a config error naming the file and the key, so
a study never mixes two recipes. Model and score files (*.pt) are not committed: `missing_files`
lists those this study needs, for a check before any job. Torch-free.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nnprune.errors import UserError
from nnprune.plan import jobspecs, paths

# `plan` below is a nnprune.plan.grid.Plan, which imports this module (hence Any, not an import).
Plan = Any

# Settings that do not change what a job computes: where it reads and writes, its threads, whether
# it times itself, and the outside sources (compared through the criterion's name instead).
NOT_RECIPE = {"out", "threads", "data_root", "model", "scores", "sources", "latency", "criteria",
              "score_images", "deterministic"}


def _recorded(path: Path) -> dict | None:
    """The `config` a step recorded in its metrics.json, or None when there is none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["config"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"reuse: {path} cannot be read ({error})",
                        "restore it from git (`git checkout -- <file>`) or remove `reuse:` from the config") from error


def _check_same(path: Path, expected_json: str, what: str, key: str = "") -> None:
    """A config error naming the file and the first differing setting, if `path` was made otherwise."""
    recorded, expected = _recorded(path), json.loads(expected_json)
    for name, value in sorted(expected.items()):
        if name in NOT_RECIPE or recorded.get(name, value) == value:
            continue
        raise UserError(
            f"reuse: {path.parent} was made with {what} {name}={recorded[name]!r}, but this config gives "
            f"{name}={value!r}{key}",
            f"give `{what}` the reused study's {name} ({recorded[name]!r}), or remove `reuse:` to run everything anew")


def find_reused(plan: Plan, root: Path) -> dict[str, set]:
    """The plan's work that `plan.source` holds: {"baselines": ids, "scores": (base, crit, si),
    "runs": Run, "finetunes": (Run, budget)}. A folder that does not exist, or a file made with
    another recipe, is a UserError."""
    source, config = root / plan.source, plan.config
    if not (source / "baselines").is_dir():
        raise UserError(f"reuse: {plan.source} holds no study (no {plan.source}/baselines folder)",
                        "run that study first (`make run` makes results/default), or remove `reuse:` from the config")
    reused: dict[str, set] = {"baselines": set(), "scores": set(), "runs": set(), "finetunes": set()}
    for base, values in plan.baselines.items():
        metrics = source / "baselines" / base / "metrics.json"
        if metrics.is_file():
            _check_same(metrics, jobspecs.train_job(config, values), "train")
            reused["baselines"].add(base)

    def score_reused(base: str, crit: str, si: int) -> bool:
        """Whether the source holds this score file; checked against the recipe once."""
        if (base, crit, si) in reused["scores"]:
            return True
        score = source / "scores" / base / paths.score_name(crit, si) / "metrics.json"
        if not score.is_file():
            return False
        seed = plan.baselines[base]["seed"]
        _check_same(score, jobspecs.score_job(config, seed, [crit], None, plan.criteria), "scoring")
        reused["scores"].add((base, crit, si))
        return True

    for run in plan.runs:
        if run.base not in reused["baselines"] or not score_reused(run.base, run.crit, run.si):
            continue
        seed = plan.baselines[run.base]["seed"]
        pruned = source / "runs" / paths.run_name(*run) / paths.PRUNED / "metrics.json"
        if not pruned.is_file():
            continue
        _check_same(pruned, jobspecs.prune_job(config, plan.prunings[run.prune], seed), "pruning",
                    f" (pruning {plan.prunings[run.prune]})")
        # a run is reused with all its fine-tunes or not at all: runs.csv finds a run's fine-tunes
        # beside its pruned/ folder
        finetunes = [(budget, pruned.parent.parent / paths.finetuned_name(budget) / "metrics.json")
                     for budget in plan.finetune_budgets(run)]
        if all(path.is_file() for _, path in finetunes):
            for budget, path in finetunes:
                _check_same(path, jobspecs.finetune_job(config, seed, budget), "finetune")
                reused["finetunes"].add((run, budget))
            reused["runs"].add(run)
    # the score files that the stability analysis reads beside the pruned ones
    for base in reused["baselines"]:
        for crit in plan.data_criteria:
            for si in plan.sizes:
                score_reused(base, crit, si)
    return reused


def needed_files(plan: Plan) -> list[str]:
    """The reused model and score files (*.pt) that this study's own jobs read (prune, score,
    scratch, and aggregate's score stability)."""
    reused = plan.reused
    own_runs = [run for run in plan.runs if run not in reused.get("runs", ())]
    needed = {f"{plan.baseline_dir(run.base)}/model.pt" for run in own_runs if run.base in reused.get("baselines", ())}
    needed |= {f"{plan.baseline_dir(base)}/model.pt" for base in reused.get("baselines", ())
               if plan.own_data_scores() or plan.own_free_scores()}
    needed |= {plan.score_file(run.base, run.crit, run.si) for run in own_runs
               if (run.base, run.crit, run.si) in reused.get("scores", ())}
    needed |= {f"{plan.run_dir(run)}/{paths.PRUNED}/model.pt" for run in plan.scratch
               if run in reused.get("runs", ())}
    # the reused score files that the aggregate job's stability analysis reads
    needed |= {path for path in plan.score_files() if path.startswith(f"{plan.source}/")}
    return sorted(needed)


def missing_files(plan: Plan, root: Path | str = ".") -> list[str]:
    return [path for path in needed_files(plan) if not (Path(root) / path).is_file()]


def check_present(plan: Plan, root: Path | str = ".") -> None:
    """Before any job: the reused *.pt files this study reads exist (they are not committed, so a
    fresh clone has the reused study's metrics but not its models)."""
    missing = missing_files(plan, root)
    if missing:
        raise UserError(f"reuse: {len(missing)} model or score file(s) of {plan.source} that this study reads are "
                        f"missing, e.g. {missing[0]} (*.pt files are not committed)",
                        f"run the study of {plan.source} first (`make run` for results/default), then this one")


def manifest(plan: Plan) -> dict:
    """What the study took from `plan.source` (its provenance record, reused.json)."""
    reused = plan.reused
    return {"source": plan.source,
            "baselines": sorted(reused.get("baselines", ())),
            "score_files": sorted(plan.score_file(*key) for key in reused.get("scores", ())),
            "pruned_runs": sorted(plan.run_dir(run) for run in reused.get("runs", ())),
            "finetunes": sorted(plan.finetune_dir(run, budget) for run, budget in reused.get("finetunes", ()))}
