rule aggregate:
    input:
        aggregate_inputs,
    output:
        f"{OUT}/runs.csv",
    log:
        f"{OUT}/logs/aggregate.log",
    benchmark:
        f"{OUT}/benchmarks/aggregate.tsv"
    params:
        runs=lambda w: [f"{run_dir(*run)}/pruned/metrics.json" for run in RUNS],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "nnprune aggregate --runs {params.runs} --out {output} > {log} 2>&1"
