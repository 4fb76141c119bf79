# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.


rule prune:
    input:
        model=f"{OUT}/baselines/{{base}}/model.pt",
        scores=f"{OUT}/scores/{{base}}/{{crit}}_si{{si}}/scores.pt",
    output:
        model=f"{OUT}/runs/{{base}}/{{crit}}_si{{si}}/{{prune}}/pruned/model.pt",
        metrics=f"{OUT}/runs/{{base}}/{{crit}}_si{{si}}/{{prune}}/pruned/metrics.json",
    log:
        f"{OUT}/logs/prune/{{base}}/{{crit}}_si{{si}}/{{prune}}.log",
    benchmark:
        f"{OUT}/benchmarks/prune/{{base}}/{{crit}}_si{{si}}/{{prune}}.tsv"
    params:
        args=prune_args,
        out=lambda w: f"{run_dir(w.base, w.crit, w.si, w.prune)}/pruned",
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=20,
    shell:
        "nnprune prune --model {input.model} --scores {input.scores} {params.args} --threads {threads} --out {params.out} > {log} 2>&1"


rule finetune:
    input:
        model=f"{OUT}/runs/{{base}}/{{crit}}_si{{si}}/{{prune}}/pruned/model.pt",
    output:
        model=f"{OUT}/runs/{{base}}/{{crit}}_si{{si}}/{{prune}}/finetuned/model.pt",
        metrics=f"{OUT}/runs/{{base}}/{{crit}}_si{{si}}/{{prune}}/finetuned/metrics.json",
    log:
        f"{OUT}/logs/finetune/{{base}}/{{crit}}_si{{si}}/{{prune}}.log",
    benchmark:
        f"{OUT}/benchmarks/finetune/{{base}}/{{crit}}_si{{si}}/{{prune}}.tsv"
    params:
        args=finetune_args,
        out=lambda w: f"{run_dir(w.base, w.crit, w.si, w.prune)}/finetuned",
    threads: THREADS
    resources:
        **gpu_resources(),
        mem_mb=4000,
        runtime=60,
    shell:
        "nnprune finetune --model {input.model} {params.args} --threads {threads} --out {params.out} > {log} 2>&1"
