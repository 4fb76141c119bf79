# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.


rule prune:
    input:
        model=f"{BASELINE_DIR}/model.pt",
        scores=score_file("{base}", "{crit}", "{si}"),
    output:
        model=f"{RUN_DIR}/{paths.PRUNED}/model.pt",
        metrics=f"{RUN_DIR}/{paths.PRUNED}/metrics.json",
    log:
        f"{OUT}/logs/prune/{RUN_NAME}.log",
    benchmark:
        f"{OUT}/benchmarks/prune/{RUN_NAME}.tsv"
    params:
        spec=prune_spec,
        deterministic=DETERMINISTIC,
        out=lambda w: f"{paths.run_dir(OUT, w.base, w.crit, w.si, w.prune)}/{paths.PRUNED}",
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=20,
    shell:
        "nnprune prune --model {input.model} --scores {input.scores} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"


rule finetune:
    input:
        model=f"{RUN_DIR}/{paths.PRUNED}/model.pt",
    output:
        model=f"{RUN_DIR}/{paths.finetuned_name('{budget}')}/model.pt",
        metrics=f"{RUN_DIR}/{paths.finetuned_name('{budget}')}/metrics.json",
    log:
        f"{OUT}/logs/finetune/{RUN_NAME}_{{budget}}.log",
    benchmark:
        f"{OUT}/benchmarks/finetune/{RUN_NAME}_{{budget}}.tsv"
    params:
        spec=finetune_spec,
        deterministic=DETERMINISTIC,
        out=lambda w: f"{paths.run_dir(OUT, w.base, w.crit, w.si, w.prune)}/{paths.finetuned_name(w.budget)}",
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=60,
    shell:
        "nnprune finetune --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"
