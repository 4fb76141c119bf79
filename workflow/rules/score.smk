# One job per baseline scores every data-driven criterion at every score_images size in one
# pass (smaller sizes are prefixes of larger ones); another scores the data-free criteria.
# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.
if DATA_CRITERIA:

    rule score_data:
        input:
            model=f"{BASELINE_DIR}/model.pt",
        output:
            [score_file("{base}", c, s) for c in DATA_CRITERIA for s in SIZES],
            [score_metrics("{base}", c, s) for c in DATA_CRITERIA for s in SIZES],
        log:
            f"{OUT}/logs/score/{{base}}_data.log",
        benchmark:
            f"{OUT}/benchmarks/score/{{base}}_data.tsv"
        params:
            spec=lambda w: score_spec(w, DATA_CRITERIA, SIZES),
            deterministic=DETERMINISTIC,
            out=lambda w: paths.scores_dir(OUT, w.base),
        threads: THREADS
        resources:
            **gpu_resources(),
            mem_mb=4000,
            runtime=30,
        shell:
            "nnprune score --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"


if FREE_CRITERIA:

    rule score_free:
        input:
            model=f"{BASELINE_DIR}/model.pt",
        output:
            [score_file("{base}", c, 0) for c in FREE_CRITERIA],
            [score_metrics("{base}", c, 0) for c in FREE_CRITERIA],
        log:
            f"{OUT}/logs/score/{{base}}_free.log",
        benchmark:
            f"{OUT}/benchmarks/score/{{base}}_free.tsv"
        params:
            spec=lambda w: score_spec(w, FREE_CRITERIA, None),
            deterministic=DETERMINISTIC,
            out=lambda w: paths.scores_dir(OUT, w.base),
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        shell:
            "nnprune score --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"
