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
