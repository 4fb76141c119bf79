rule score:
    input:
        model=f"{OUT}/baselines/{{base}}/model.pt",
    output:
        scores=f"{OUT}/scores/{{base}}/{{crit}}_si{{si}}/scores.pt",
        metrics=f"{OUT}/scores/{{base}}/{{crit}}_si{{si}}/metrics.json",
    log:
        f"{OUT}/logs/score/{{base}}/{{crit}}_si{{si}}.log",
    benchmark:
        f"{OUT}/benchmarks/score/{{base}}/{{crit}}_si{{si}}.tsv"
    params:
        args=score_args,
        out=lambda w: f"{OUT}/scores/{w.base}/{w.crit}_si{w.si}",
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "nnprune score --model {input.model} {params.args} --threads {threads} --out {params.out} > {log} 2>&1"
