# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.

import json

TABLES = ["by_pruning", "by_score_images", "by_label_noise", "paper_comparison"]
# A figure is drawn only along an axis with two values or more: the main pruning level's runs at
# several score_images (main label noise), at several label-noise levels (main score_images), scores at
# several score_images. figures/notes.md says why any figure is absent (nnprune.analysis.report.absent_figures).
SWEPT_SIZES = {
    si for base, _, si, prune in RUNS if si > 0 and prune == MAIN_SLUG and BASELINES[base]["label_noise"] == MAIN_NOISE
}
SWEPT_NOISE = {
    BASELINES[base]["label_noise"] for base, _, si, prune in RUNS if prune == MAIN_SLUG and si in (0, MAIN_SI)
}
FIGURES = ["acc_vs_macs"]
FIGURES += ["acc_vs_score_images"] if len(SWEPT_SIZES) > 1 else []
FIGURES += ["acc_vs_label_noise"] if len(SWEPT_NOISE) > 1 else []
if DATA_CRITERIA:
    TABLES.append("score_stability")
    FIGURES += ["score_stability"] if len(SIZES) > 1 else []
# accuracy along the fine-tuning budget axis (raw, BN recalibrated, each budget), when a run is fine-tuned
if any(finetune_budgets(run) for run in RUNS):
    TABLES.append("by_budget")
    FIGURES.append("acc_vs_budget")
FIGURE_CAPTIONS = {"acc_vs_budget": "budget"}
# One forest plot per claim, written for every study (a claim it does not test says so): nnprune.analysis.claims.CLAIM_NAMES.
CLAIM_FORESTS = ["toy", "data_size", "label_noise", "cnn"]


rule aggregate:
    input:
        aggregate_inputs,
        score_files(),
    output:
        runs=report(f"{OUT}/runs.csv", category="Tables", caption="../report/runs.rst"),
        stability=report(f"{OUT}/stability.csv", category="Tables", caption="../report/stability.rst"),
    log:
        f"{OUT}/logs/aggregate.log",
    benchmark:
        f"{OUT}/benchmarks/aggregate.tsv"
    params:
        runs=lambda w: pruned_metrics(),
        scores=score_files(),
        budgets=" ".join(BUDGETS),
        # the study folder from the outputs, not {OUT} in the shell text: Snakemake formats a module's
        # shell commands with the importing workflow's globals, where OUT does not exist
        out=lambda w, output: os.path.dirname(output.runs),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune aggregate --runs {params.runs} --scores {params.scores} --budgets {params.budgets} --out {params.out} > {log} 2>&1"


rule report_tables_figures:
    input:
        runs=f"{OUT}/runs.csv",
        stability=f"{OUT}/stability.csv",
    output:
        tables=[report(f"{OUT}/tables/{t}.csv", category="Tables", caption="../report/table.rst") for t in TABLES],
        other=[f"{OUT}/tables/{t}.{ext}" for t in TABLES for ext in ("md", "tex")],
        figures=[
            report(
                f"{OUT}/figures/{f}.png",
                category="Figures",
                caption=f"../report/{FIGURE_CAPTIONS.get(f, 'figure')}.rst",
            )
            for f in FIGURES
        ],
        pdfs=[f"{OUT}/figures/{f}.pdf" for f in FIGURES],
        notes=report(f"{OUT}/figures/notes.md", category="Figures", caption="../report/figure_notes.rst"),
    log:
        f"{OUT}/logs/report.log",
    benchmark:
        f"{OUT}/benchmarks/report.tsv"
    params:
        main=f"--main-pruning '{MAIN_PRUNING}' --main-score-images {MAIN_SI}{FOCUS_FLAG}",
        criteria=" ".join(CRITERION_NAMES),  # the figures' order of the criteria (short names)
        study=lambda w, input: os.path.dirname(input.runs),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune report --study-dir {params.study} {params.main} --criteria {params.criteria} > {log} 2>&1"


rule claims:
    input:
        runs=f"{OUT}/runs.csv",
        stability=f"{OUT}/stability.csv",
        toy=[f"{OUT}/toy/toy.csv"] if TOY_DATASETS else [],
    output:
        md=report(f"{OUT}/claims.md", category="Claims", caption="../report/claims.rst"),
        json=f"{OUT}/claims.json",
        forests=[
            report(f"{OUT}/claims_forest_{c}.png", category="Claims", caption="../report/forest.rst")
            for c in CLAIM_FORESTS
        ],
        forest_pdfs=[f"{OUT}/claims_forest_{c}.pdf" for c in CLAIM_FORESTS],
    log:
        f"{OUT}/logs/claims.log",
    params:
        main=f"--main-pruning '{MAIN_PRUNING}' --main-score-images {MAIN_SI}",
        settings=json.dumps(config.get("claims", {}), sort_keys=True),
        scale=jobspecs.claims_scale(config),
        study=lambda w, input: os.path.dirname(input.runs),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune claims --study-dir {params.study} {params.main} --settings {params.settings:q} --scale {params.scale:q} > {log} 2>&1"
