# The 2-D toy decision-boundary study: one job per toy dataset, then its figures.
# Alone: `snakemake --cores all toy`.


rule toy_run:
    output:
        csv=f"{OUT}/toy/{{toy}}/toy.csv",
        boundaries=f"{OUT}/toy/{{toy}}/boundaries.pt",
    log:
        f"{OUT}/logs/toy/{{toy}}.log",
    benchmark:
        f"{OUT}/benchmarks/toy/{{toy}}.tsv"
    params:
        args=toy_args,
        out=lambda w: f"{OUT}/toy/{w.toy}",
    threads: THREADS
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "nnprune toy --dataset {wildcards.toy} {params.args} --threads {threads} --out {params.out} > {log} 2>&1"


rule toy_report:
    input:
        [f"{OUT}/toy/{d}/toy.csv" for d in TOY_DATASETS],
    output:
        csv=report(f"{OUT}/toy/toy.csv", category="Toy study", caption="../report/toy.rst"),
        figures=[
            report(f"{OUT}/toy/{name}.png", category="Toy study", caption="../report/toy.rst") for name in TOY_FIGURES
        ],
        pdfs=[f"{OUT}/toy/{name}.pdf" for name in TOY_FIGURES],
    log:
        f"{OUT}/logs/toy/report.log",
    params:
        inputs=[f"{OUT}/toy/{d}" for d in TOY_DATASETS],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune toy-report --inputs {params.inputs} --out {OUT}/toy > {log} 2>&1"


rule toy:
    input:
        rules.toy_report.output,
