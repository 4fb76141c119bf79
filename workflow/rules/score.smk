# One job per baseline scores every data-driven criterion at every score_images size in one
# pass (smaller sizes are prefixes of larger ones); another scores the data-free criteria.
# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.
if DATA_CRITERIA:

    rule score_data:
        input:
            model=f"{OUT}/baselines/{{base}}/model.pt",
        output:
            [f"{OUT}/scores/{{base}}/{c}_si{s}/scores.pt" for c in DATA_CRITERIA for s in SIZES],
        log:
            f"{OUT}/logs/score/{{base}}_data.log",
        benchmark:
            f"{OUT}/benchmarks/score/{{base}}_data.tsv"
        params:
            args=lambda w: score_args(w, DATA_CRITERIA, SIZES),
            out=lambda w: f"{OUT}/scores/{w.base}",
        threads: THREADS
        resources:
            **gpu_resources(),
            mem_mb=4000,
            runtime=30,
        shell:
            "nnprune score --model {input.model} {params.args} --threads {threads} --out {params.out} > {log} 2>&1"


if FREE_CRITERIA:

    rule score_free:
        input:
            model=f"{OUT}/baselines/{{base}}/model.pt",
        output:
            [f"{OUT}/scores/{{base}}/{c}_si0/scores.pt" for c in FREE_CRITERIA],
        log:
            f"{OUT}/logs/score/{{base}}_free.log",
        benchmark:
            f"{OUT}/benchmarks/score/{{base}}_free.tsv"
        params:
            args=lambda w: score_args(w, FREE_CRITERIA, [0]),
            out=lambda w: f"{OUT}/scores/{w.base}",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        shell:
            "nnprune score --model {input.model} {params.args} --threads {threads} --out {params.out} > {log} 2>&1"
