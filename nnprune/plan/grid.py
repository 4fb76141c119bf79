"""The plan of a study: every baseline, score file, run, fine-tune, from-scratch control and report
output, from its validated config. Torch-free and Snakemake-free, so that it is unit-tested alone;
workflow/rules/common.smk only binds `plan(config)` to the rules.

A run is a baseline pruned by one criterion's score file at one pruning level; it is fine-tuned at
`finetune_budgets(run)`. A scratch control re-initialises a run's pruned architecture and trains it
with the baselines' recipe (`scratch`). A study that names another study's folder (`reuse:`) takes
the baselines, score files, pruned runs and fine-tunes they share from there (`reused`), and
`nnprune.plan.reuse` checks that they were made with the same recipe.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from nnprune.errors import UserError
from nnprune.plan import paths
from nnprune.plan.budgets import parse_budget, study_budgets
from nnprune.plan.names import DATA_DRIVEN_SOURCES, DEFAULT_FOCUS, TOY_DATASET_NAMES
from nnprune.plan.references import References, reads_of, study_references
from nnprune.plan.schemes import scheme_slug
from nnprune.plan.studyconfig import main_label_noise

# One forest plot per claim, written for every study (a claim it does not test says so).
CLAIM_FORESTS = ("toy", "data_size", "label_noise", "cnn")
SCRATCH = "scratch"                     # a scratch control's folder: scratch-{epochs}e beside pruned/


class Run(NamedTuple):
    """A pruned model: baseline id, criterion (short name), score_images (0: data-free), pruning slug."""
    base: str
    crit: str
    si: int
    prune: str


def scratch_name(epochs: int) -> str:
    return f"{SCRATCH}-{epochs}e"


@dataclass
class Plan:
    """Everything a study runs and writes. `out` is results/{study}; `source` the reused study's
    folder (None without `reuse:`)."""
    config: dict[str, Any]
    out: str
    criteria: dict                       # short name -> plugins.Reference (outside) or None (built-in)
    archs: dict
    toy_criteria: dict
    focus: str
    data_criteria: list[str]
    free_criteria: list[str]
    sizes: list[int]
    main_si: int
    main_pruning: str
    main_noise: float
    baselines: dict[str, dict] = field(default_factory=dict)
    prunings: dict[str, str] = field(default_factory=dict)
    budgets: list[str] = field(default_factory=list)
    noisy_budgets: list[str] = field(default_factory=list)
    finetune_slugs: set[str] = field(default_factory=set)
    runs: list[Run] = field(default_factory=list)
    scratch: list[Run] = field(default_factory=list)
    scratch_epochs: int = 0
    source: str | None = None
    reused: dict[str, set] = field(default_factory=dict)   # kind -> reused keys (see nnprune.plan.reuse)
    toy_datasets: list[str] = field(default_factory=list)
    toy_figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    @property
    def threads(self) -> int:
        """torch threads and Snakemake threads of each network job (threads_per_job)."""
        return int(self.config["threads_per_job"])

    @property
    def deterministic_flag(self) -> str:
        """` --deterministic` for every network step when the config asks (README "Reproducibility")."""
        return " --deterministic" if self.config["deterministic"] else ""

    @property
    def focus_flag(self) -> str:
        """`--focus NAME` for the report and toy-report commands, empty for the default focus."""
        return "" if self.focus == DEFAULT_FOCUS else f" --focus {self.focus}"

    @property
    def main_slug(self) -> str:
        return scheme_slug(self.main_pruning)

    def finetune_budgets(self, run: Run) -> list[str]:
        """The budgets at which a run is fine-tuned: none unless its level is in finetune.pruning;
        `budgets` for a clean baseline's run, `noisy_budgets` for a noisy one's."""
        if run.prune not in self.finetune_slugs:
            return []
        return self.budgets if self.baselines[run.base]["label_noise"] == self.main_noise else self.noisy_budgets

    def score_sizes(self, criterion: str) -> list[int]:
        return [0] if criterion in self.free_criteria else self.sizes

    # ------------------------------------------------------------ where each file lives
    def _home(self, kind: str, key) -> str:
        """The study folder that holds a file: the reused study's for a reused one, else ours."""
        return self.source if self.source and key in self.reused.get(kind, ()) else self.out

    def baseline_dir(self, base: str) -> str:
        return paths.baseline_dir(self._home("baselines", base), base)

    def score_dir(self, base: str, crit: str, si: int | str) -> str:
        return paths.score_dir(self._home("scores", (base, crit, int(si))), base, crit, si)

    def score_file(self, base: str, crit: str, si: int | str) -> str:
        return f"{self.score_dir(base, crit, si)}/scores.pt"

    def run_dir(self, run: Run) -> str:
        return paths.run_dir(self._home("runs", run), *run)

    def finetune_dir(self, run: Run, budget: str) -> str:
        """Beside the run's pruned/ (a run is reused with all its fine-tunes or not at all)."""
        return f"{self.run_dir(run)}/{paths.finetuned_name(budget)}"

    def scratch_dir(self, run: Run) -> str:
        return f"{paths.run_dir(self.out, *run)}/{scratch_name(self.scratch_epochs)}"

    # ------------------------------------------------------------ what the rules make and read
    def own_data_scores(self) -> list[tuple[str, int]]:
        """(criterion, score_images) of the data-driven score files this study computes itself for
        each of its own baselines' score job: those that no baseline reuses."""
        reused = {(crit, si) for _, crit, si in self.reused.get("scores", ())}
        return [(crit, si) for crit in self.data_criteria for si in self.sizes if (crit, si) not in reused]

    def own_free_scores(self) -> list[str]:
        reused = {crit for _, crit, si in self.reused.get("scores", ()) if si == 0}
        return [crit for crit in self.free_criteria if crit not in reused]

    def pruned_metrics(self) -> list[str]:
        return [f"{self.run_dir(run)}/{paths.PRUNED}/metrics.json" for run in self.runs]

    def finetuned_metrics(self) -> list[str]:
        return [f"{self.finetune_dir(run, budget)}/metrics.json" for run in self.runs
                for budget in self.finetune_budgets(run)]

    def scratch_metrics(self) -> list[str]:
        return [f"{self.scratch_dir(run)}/metrics.json" for run in self.scratch]

    def score_files(self) -> list[str]:
        """Every score file the stability analysis reads: each score_images of every data-driven
        criterion of each baseline a run prunes, whether or not a run prunes with it."""
        used = {self.score_file(base, crit, si) for base, crit, si, _ in self.runs}
        bases = {run.base for run in self.runs}
        return sorted(used | {self.score_file(base, crit, si) for base in bases
                              for crit in self.data_criteria for si in self.sizes})

    def score_metrics(self) -> list[str]:
        return sorted({f"{self.score_dir(base, crit, si)}/metrics.json" for base, crit, si, _ in self.runs})

    def aggregate_inputs(self) -> list[str]:
        return self.pruned_metrics() + self.finetuned_metrics() + self.scratch_metrics() + self.score_metrics()

    def job_count(self) -> dict[str, int]:
        """Jobs per rule this study runs from nothing (the dry run's counts, reused work left out)."""
        own_bases = [b for b in self.baselines if b not in self.reused.get("baselines", ())
                     and any(run.base == b for run in self.runs)]
        scored = {run.base for run in self.runs}
        counts = {
            "train": len(own_bases),
            "score_data": len(scored) if self.own_data_scores() else 0,
            "score_free": len(scored) if self.own_free_scores() else 0,
            "prune": sum(run not in self.reused.get("runs", ()) for run in self.runs),
            "finetune": sum((run, b) not in self.reused.get("finetunes", ())
                            for run in self.runs for b in self.finetune_budgets(run)),
            "scratch": len(self.scratch),
        }
        return {rule: n for rule, n in counts.items() if n}


def _noise_settings(config: dict, main_noise: float, kinds: list[str]):
    """(label_noise, noise_kind, seeds, train sizes, recipe) of every baseline family: the main
    (lowest) level once, with every seed (its kind only matters above 0); each level above it once
    per kind, with grid.noise_seeds, grid.noise_train_size and grid.noise_train."""
    grid = config["grid"]
    for noise in config["label_noise"]:
        if noise == main_noise:
            yield noise, kinds[0], config["seeds"], config["train_size"], {}
        else:
            sizes = [grid["noise_train_size"]] if "noise_train_size" in grid else config["train_size"]
            for kind in kinds:
                yield noise, kind, grid.get("noise_seeds", config["seeds"]), sizes, grid.get("noise_train", {})


def baselines_of(config: dict, archs: dict, main_noise: float) -> dict[str, dict]:
    """Baseline id -> its grid values (arch, train_size, label_noise, noise_kind, seed, the arch
    options when given, an outside model's sources, a noisy baseline's recipe)."""
    from nnprune.plan.jobspecs import noise_kinds

    baselines = {}
    for (arch, options), ref in zip(config["archs"].items(), archs.values()):
        name = arch if ref is None else ref.name          # an outside model's short name
        for noise, kind, seeds, sizes, recipe in _noise_settings(config, main_noise, noise_kinds(config)):
            for train_size in sizes:
                for seed in seeds:
                    baselines[paths.baseline_id(config["dataset"], name, train_size, noise, seed, kind)] = dict(
                        arch=arch if ref is None else ref.entry,
                        **({"sources": {name: ref.sha256}} if ref is not None else {}),
                        train_size=train_size, label_noise=noise, noise_kind=kind, seed=seed,
                        **(options or {}), **({"recipe": recipe} if recipe else {}))
    return baselines


def _runs(plan: Plan, config: dict) -> list[Run]:
    """The full grid, or the sparse union of three sweeps around the main point: pruning levels,
    score_images (at the main noise) and label noise (at the main size); in either, only the
    criteria of grid.prune_criteria."""
    grid = config["grid"]
    prune_criteria = set(grid.get("prune_criteria", plan.criteria))
    sparse = grid.get("mode", "full") == "sparse"
    score_sweep = set(grid.get("score_sweep", plan.sizes)) | {plan.main_si}
    sweep_criteria = set(grid.get("score_sweep_criteria", plan.data_criteria))
    noise_slugs = {scheme_slug(spec) for spec in grid.get("noise_pruning", [plan.main_pruning])}

    def wanted(run: Run) -> bool:
        if run.crit not in prune_criteria:
            return False
        if not sparse:
            return True
        clean = plan.baselines[run.base]["label_noise"] == plan.main_noise
        main_si = run.si in (0, plan.main_si)
        return ((clean and main_si)                                       # pruning-level sweep
                or (clean and run.prune == plan.main_slug and run.si in score_sweep
                    and run.crit in sweep_criteria)                       # score_images sweep
                or (main_si and run.prune in noise_slugs))                # label-noise sweep

    candidates = (Run(base, crit, si, prune) for base in plan.baselines for crit in plan.criteria
                  for si in plan.score_sizes(crit) for prune in plan.prunings)
    return [run for run in candidates if wanted(run)]


def _scratch(plan: Plan, config: dict) -> tuple[list[Run], int]:
    """The from-scratch controls (`scratch:`): at each of its cuts, the focus criterion's pruned
    architecture of every clean baseline, at the main score_images; trained for the baselines'
    epochs plus the largest fine-tuning budget's (Scratch-E)."""
    section = config.get("scratch") or {}
    if not section.get("enabled", False):
        return [], 0
    check_scratch(plan, config)
    cuts = {scheme_slug(spec) for spec in section.get("pruning", config["finetune"].get("pruning", config["pruning"]))}
    si = 0 if plan.focus in plan.free_criteria else plan.main_si
    runs = [run for run in plan.runs if run.crit == plan.focus and run.si == si and run.prune in cuts
            and plan.baselines[run.base]["label_noise"] == plan.main_noise]
    last = parse_budget(plan.budgets[-1])
    epochs = train_epochs(config) + (last.count if last.unit == "epochs" else 0)
    return runs, epochs


def check_scratch(plan: Plan, config: dict) -> None:
    """A scratch control needs a fine-tuned cut (it is compared with the fine-tuned run), a largest
    budget in epochs (Scratch-E adds them to the baselines') and a pruned focus criterion."""
    finetuned = config["finetune"].get("pruning", config["pruning"])
    for text in (config.get("scratch") or {}).get("pruning", []):
        if scheme_slug(text) not in plan.finetune_slugs:
            raise UserError(f"scratch.pruning: {text!r} is not a fine-tuned cut (finetune.pruning: {finetuned})",
                            f"give scratch.pruning cuts of finetune.pruning, or add {text!r} to finetune.pruning")
    last = plan.budgets[-1] if plan.budgets else None
    if last is None or parse_budget(last).unit != "epochs":
        raise UserError(f"scratch: the largest fine-tuning budget is {last!r}, not a number of epochs",
                        "add an epoch budget (e.g. 2e) to finetune.budgets: the control trains for the "
                        "baselines' epochs plus it")
    if not any(run.crit == plan.focus for run in plan.runs):
        raise UserError(f"scratch: the focus criterion {plan.focus!r} is not pruned in this study",
                        "add it to criteria (and grid.prune_criteria), or set claims.focus to a pruned one")


def train_epochs(config: dict) -> int:
    """The baselines' epochs (the `train` section's, else TrainSpec's default)."""
    from dataclasses import fields

    from nnprune.plan.specs import TrainSpec, default_of

    default = default_of(next(f for f in fields(TrainSpec) if f.name == "epochs"))
    return int((config.get("train") or {}).get("epochs", default))


def report_outputs(plan: Plan) -> tuple[list[str], list[str]]:
    """The tables and figures `nnprune report` writes for this plan. A figure is drawn only along an
    axis with two values or more: the main pruning level's runs at several score_images (main label
    noise), at several label-noise levels (main score_images), scores at several score_images."""
    tables = ["by_pruning", "by_score_images", "by_label_noise", "paper_comparison"]
    figures = ["acc_vs_macs"]
    main = [run for run in plan.runs if run.prune == plan.main_slug]
    swept_sizes = {run.si for run in main if run.si > 0 and plan.baselines[run.base]["label_noise"] == plan.main_noise}
    swept_noise = {plan.baselines[run.base]["label_noise"] for run in main if run.si in (0, plan.main_si)}
    figures += ["acc_vs_score_images"] if len(swept_sizes) > 1 else []
    figures += ["acc_vs_label_noise"] if len(swept_noise) > 1 else []
    if plan.data_criteria:
        tables.append("score_stability")
        figures += ["score_stability"] if len(plan.sizes) > 1 else []
    if any(plan.finetune_budgets(run) for run in plan.runs):  # accuracy along the fine-tuning budget axis
        tables.append("by_budget")
        figures.append("acc_vs_budget")
    if len(leaderboard_cuts(plan)) > 1:      # criteria along the cut axis (nnprune.analysis.leaderboard)
        tables.append("leaderboard")
        figures.append("leaderboard")
    return tables, figures


def leaderboard_cuts(plan: Plan) -> set[str]:
    """The cuts at which clean runs are fine-tuned at the largest budget: the leaderboard's axis."""
    largest = plan.budgets[-1] if plan.budgets else None
    return {run.prune for run in plan.runs if plan.baselines[run.base]["label_noise"] == plan.main_noise
            and largest in plan.finetune_budgets(run)}


def plan(config: dict[str, Any], root: Path | str = ".", references: References | None = None) -> Plan:
    """The plan of a validated config (`snakemake.utils.validate` or `defaults.with_defaults` has
    set the schema's defaults). `root`: the folder the study's paths are relative to (where a reused
    study is looked for). `references`: the study's criteria and architectures as
    `studyconfig.check_schema` found them (found here if None), so outside code is looked up once."""
    references = study_references(config) if references is None else references
    criteria = references.criteria
    data = [c for c in criteria if reads_of(c, criteria) in DATA_DRIVEN_SOURCES]
    sizes = sorted(config["score_images"])
    grid = config["grid"]
    result = Plan(
        config=config, out=f"results/{config['study']}", criteria=criteria, archs=references.archs,
        toy_criteria=references.toy_criteria if config["toy"].get("enabled", True) else {},
        focus=config["claims"].get("focus", DEFAULT_FOCUS), data_criteria=data,
        free_criteria=[c for c in criteria if c not in data], sizes=sizes,
        main_si=grid.get("main_score_images", sizes[-1]), main_pruning=grid.get("main_pruning", config["pruning"][0]),
        main_noise=main_label_noise(config["label_noise"]))
    result.baselines = baselines_of(config, result.archs, result.main_noise)
    result.prunings = {scheme_slug(spec): spec for spec in config["pruning"]}
    finetune = config["finetune"]
    result.budgets = [b.text for b in study_budgets(finetune)]
    noisy = [b.text for b in study_budgets({"budgets": finetune["noisy_budgets"]})] \
        if "noisy_budgets" in finetune else result.budgets
    result.noisy_budgets = noisy if finetune.get("noisy_baselines", True) else []
    result.finetune_slugs = {scheme_slug(s) for s in finetune.get("pruning", config["pruning"])}
    result.runs = _runs(result, config)
    result.scratch, result.scratch_epochs = _scratch(result, config)
    if config.get("reuse"):
        from nnprune.plan.reuse import find_reused

        result.source = str(config["reuse"]).rstrip("/")
        result.reused = find_reused(result, Path(root))
    toy = config["toy"]
    result.toy_datasets = toy.get("datasets", list(TOY_DATASET_NAMES)) if toy.get("enabled", True) else []
    per_layer = "per-layer" in toy.get("allocations", ["global", "per-layer"])
    result.toy_figures = ([f"boundaries_{d}" for d in result.toy_datasets] + ["toy_curves"]
                          + (["toy_curves_per_layer"] if per_layer else []))
    result.tables, result.figures = report_outputs(result)
    return result
