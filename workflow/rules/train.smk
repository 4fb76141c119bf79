# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.


rule train:
    output:
        model=f"{OUT}/baselines/{{base}}/model.pt",
        metrics=f"{OUT}/baselines/{{base}}/metrics.json",
    log:
        f"{OUT}/logs/train/{{base}}.log",
    benchmark:
        f"{OUT}/benchmarks/train/{{base}}.tsv"
    params:
        args=train_args,
        out=lambda w: f"{OUT}/baselines/{w.base}",
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=60,
    shell:
        "nnprune train {params.args} --threads {threads} --out {params.out} > {log} 2>&1"
