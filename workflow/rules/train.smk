# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.


rule train:
    output:
        model=f"{BASELINE_DIR}/model.pt",
        metrics=f"{BASELINE_DIR}/metrics.json",
    log:
        f"{OUT}/logs/train/{{base}}.log",
    benchmark:
        f"{OUT}/benchmarks/train/{{base}}.tsv"
    params:
        spec=lambda w: jobspecs.train_job(config, PLAN.baselines[w.base]),
        deterministic=DETERMINISTIC,
        out=lambda w: paths.baseline_dir(OUT, w.base),
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=60,
    shell:
        "nnprune train --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"
