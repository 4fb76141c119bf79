# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.

import json

from nnprune.files import write_json, write_text
from nnprune.plan import reuse

# The tables and figures `nnprune report` writes (nnprune.plan.grid.report_outputs: a figure only
# along an axis with two values or more; figures/notes.md says why any is absent), and one forest
# plot per claim, written for every study (a claim it does not test says so).
FIGURE_CAPTIONS = {"acc_vs_budget": "budget"}


rule aggregate:
    input:
        [reused_or_own(path) for path in PLAN.aggregate_inputs()],
        [reused_or_own(path) for path in PLAN.score_files()],
    output:
        runs=report(f"{OUT}/runs.csv", category="Tables", caption="../report/runs.rst"),
        stability=report(f"{OUT}/stability.csv", category="Tables", caption="../report/stability.rst"),
    log:
        f"{OUT}/logs/aggregate.log",
    benchmark:
        f"{OUT}/benchmarks/aggregate.tsv"
    params:
        runs=PLAN.pruned_metrics(),
        scores=PLAN.score_files(),
        scratch=f" --scratch {' '.join(PLAN.scratch_metrics())}" if PLAN.scratch else "",
        budgets=" ".join(PLAN.budgets),
        # the study folder from the outputs, not {OUT} in the shell text: Snakemake formats a module's
        # shell commands with the importing workflow's globals, where OUT does not exist
        out=lambda w, output: os.path.dirname(output.runs),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune aggregate --runs {params.runs} --scores {params.scores} --budgets {params.budgets}{params.scratch} --out {params.out} > {log} 2>&1"


# A study that reuses another's work records what it took from where (nnprune.plan.reuse.manifest).
if PLAN.source:

    rule reused:
        output:
            f"{OUT}/reused.json",
        log:
            f"{OUT}/logs/reused.log",
        params:
            manifest=reuse.manifest(PLAN),
        run:
            write_json(output[0], params.manifest)
            write_text(log[0], f"{output[0]}: what this study read from {PLAN.source}\n")


rule report_tables_figures:
    input:
        runs=f"{OUT}/runs.csv",
        stability=f"{OUT}/stability.csv",
    output:
        tables=[report(f"{OUT}/tables/{t}.csv", category="Tables", caption="../report/table.rst") for t in PLAN.tables],
        other=[f"{OUT}/tables/{t}.{ext}" for t in PLAN.tables for ext in ("md", "tex")],
        figures=[
            report(
                f"{OUT}/figures/{f}.png",
                category="Figures",
                caption=f"../report/{FIGURE_CAPTIONS.get(f, 'figure')}.rst",
            )
            for f in PLAN.figures
        ],
        pdfs=[f"{OUT}/figures/{f}.pdf" for f in PLAN.figures],
        notes=report(f"{OUT}/figures/notes.md", category="Figures", caption="../report/figure_notes.rst"),
    log:
        f"{OUT}/logs/report.log",
    benchmark:
        f"{OUT}/benchmarks/report.tsv"
    params:
        main=f"--main-pruning '{PLAN.main_pruning}' --main-score-images {PLAN.main_si}{PLAN.focus_flag}",
        criteria=" ".join(PLAN.criteria),  # the figures' order of the criteria (short names)
        # the report writes exactly what this rule declares, or stops naming what the data lack
        outputs=f"--tables {' '.join(PLAN.tables)} --figures {' '.join(PLAN.figures)}",
        settings=json.dumps(config.get("claims", {}), sort_keys=True),  # the leaderboard's rule
        study=lambda w, input: os.path.dirname(input.runs),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune report --study-dir {params.study} {params.main} --criteria {params.criteria} {params.outputs} --settings {params.settings:q} > {log} 2>&1"


rule claims:
    input:
        runs=f"{OUT}/runs.csv",
        stability=f"{OUT}/stability.csv",
        toy=[f"{OUT}/toy/toy.csv"] if PLAN.toy_datasets else [],
    output:
        md=report(f"{OUT}/claims.md", category="Claims", caption="../report/claims.rst"),
        json=f"{OUT}/claims.json",
        forests=[
            report(f"{OUT}/claims_forest_{c}.png", category="Claims", caption="../report/forest.rst")
            for c in grid.CLAIM_FORESTS
        ],
        forest_pdfs=[f"{OUT}/claims_forest_{c}.pdf" for c in grid.CLAIM_FORESTS],
    log:
        f"{OUT}/logs/claims.log",
    params:
        main=f"--main-pruning '{PLAN.main_pruning}' --main-score-images {PLAN.main_si}",
        settings=json.dumps(config.get("claims", {}), sort_keys=True),
        scale=jobspecs.claims_scale(config),
        study=lambda w, input: os.path.dirname(input.runs),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune claims --study-dir {params.study} {params.main} --settings {params.settings:q} --scale {params.scale:q} > {log} 2>&1"
