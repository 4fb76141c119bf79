# The 2-D toy decision-boundary study: one job per toy dataset, then its figures.
# Alone: `snakemake --cores all toy`.
# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.


rule toy_run:
    output:
        csv=f"{paths.toy_dir(OUT, '{toy}')}/toy.csv",
        boundaries=f"{paths.toy_dir(OUT, '{toy}')}/boundaries.pt",
    log:
        f"{OUT}/logs/toy/{{toy}}.log",
    benchmark:
        f"{OUT}/benchmarks/toy/{{toy}}.tsv"
    params:
        spec=lambda w: jobspecs.toy_job(config, w.toy),
        out=lambda w: paths.toy_dir(OUT, w.toy),
    threads: THREADS
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "nnprune toy --spec {params.spec:q} --threads {threads} --out {params.out} > {log} 2>&1"


rule toy_report:
    input:
        # boundaries.pt too: the figures read it, and it is not committed (*.pt), so a fresh clone
        # whose toy.csv files look newer than the report must rerun the toy jobs, not fail here
        [f"{paths.toy_dir(OUT, d)}/{name}" for d in PLAN.toy_datasets for name in ("toy.csv", "boundaries.pt")],
    output:
        csv=report(f"{OUT}/toy/toy.csv", category="Toy study", caption="../report/toy.rst"),
        figures=[
            report(f"{OUT}/toy/{name}.png", category="Toy study", caption="../report/toy.rst")
            for name in PLAN.toy_figures
        ],
        pdfs=[f"{OUT}/toy/{name}.pdf" for name in PLAN.toy_figures],
    log:
        f"{OUT}/logs/toy/report.log",
    params:
        inputs=[paths.toy_dir(OUT, d) for d in PLAN.toy_datasets],
        focus=PLAN.focus_flag,
        out=lambda w, output: os.path.dirname(output.csv),  # not {OUT} in the shell: see rule aggregate
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune toy-report --inputs {params.inputs} --out {params.out}{params.focus} > {log} 2>&1"


rule toy:
    input:
        rules.toy_report.output,
