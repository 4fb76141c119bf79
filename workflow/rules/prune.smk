# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.


rule prune:
    input:
        model=lambda w: reused_or_own(f"{PLAN.baseline_dir(w.base)}/model.pt"),
        scores=lambda w: reused_or_own(PLAN.score_file(w.base, w.crit, w.si)),
    output:
        model=f"{RUN_DIR}/{paths.PRUNED}/model.pt",
        metrics=f"{RUN_DIR}/{paths.PRUNED}/metrics.json",
    log:
        f"{OUT}/logs/prune/{RUN_NAME}.log",
    benchmark:
        f"{OUT}/benchmarks/prune/{RUN_NAME}.tsv"
    params:
        spec=lambda w: jobspecs.prune_job(config, PLAN.prunings[w.prune], seed_of(w)),
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
        spec=lambda w: jobspecs.finetune_job(config, seed_of(w), w.budget),
        deterministic=DETERMINISTIC,
        out=lambda w: f"{paths.run_dir(OUT, w.base, w.crit, w.si, w.prune)}/{paths.finetuned_name(w.budget)}",
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=60,
    shell:
        "nnprune finetune --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"


# The from-scratch control (config `scratch:`): a run's pruned architecture, re-initialised and
# trained with the baselines' recipe for PLAN.scratch_epochs (the baselines' epochs plus the
# largest fine-tuning budget: Scratch-E). The pruned model may be a reused study's.
if PLAN.scratch:

    rule scratch:
        input:
            model=lambda w: reused_or_own(f"{PLAN.run_dir(run_of(w))}/{paths.PRUNED}/model.pt"),
        output:
            model=f"{RUN_DIR}/{grid.scratch_name(PLAN.scratch_epochs)}/model.pt",
            metrics=f"{RUN_DIR}/{grid.scratch_name(PLAN.scratch_epochs)}/metrics.json",
        log:
            f"{OUT}/logs/scratch/{RUN_NAME}.log",
        benchmark:
            f"{OUT}/benchmarks/scratch/{RUN_NAME}.tsv"
        params:
            spec=lambda w: jobspecs.scratch_job(config, seed_of(w), PLAN.scratch_epochs),
            deterministic=DETERMINISTIC,
            out=lambda w, output: os.path.dirname(output.model),
        threads: THREADS
        resources:
            **gpu_resources(),
            mem_mb=4000,
            runtime=60,
        shell:
            "nnprune scratch --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"
