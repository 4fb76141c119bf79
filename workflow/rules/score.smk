# One job per baseline scores every data-driven criterion at every score_images size in one
# pass (smaller sizes are prefixes of larger ones); another scores the data-free criteria. A score
# file that a reused study holds (PLAN.reused) is read from there, not scored again.
# lint-ok "Specify a conda environment or container for each rule.": every rule runs this repository's own
# `nnprune` CLI from the one environment `make setup` builds (requirements.lock), or environment.yml plus
# `pip install -e .` (README); a per-rule conda env or container would lack the package itself.
SCORE_FILES = ("scores.pt", "metrics.json")

if PLAN.own_data_scores():

    rule score_data:
        input:
            model=lambda w: reused_or_own(f"{PLAN.baseline_dir(w.base)}/model.pt"),
        output:
            [
                f"{paths.score_dir(OUT, '{base}', c, s)}/{name}"
                for c, s in PLAN.own_data_scores()
                for name in SCORE_FILES
            ],
        log:
            f"{OUT}/logs/score/{{base}}_data.log",
        benchmark:
            f"{OUT}/benchmarks/score/{{base}}_data.tsv"
        params:
            spec=lambda w: jobspecs.score_job(
                config,
                seed_of(w),
                sorted({c for c, _ in PLAN.own_data_scores()}, key=list(PLAN.criteria).index),
                sorted({s for _, s in PLAN.own_data_scores()}),
                PLAN.criteria,
            ),
            deterministic=DETERMINISTIC,
            out=lambda w: paths.scores_dir(OUT, w.base),
        threads: THREADS
        resources:
            **gpu_resources(),
            mem_mb=4000,
            runtime=30,
        shell:
            "nnprune score --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"


if PLAN.own_free_scores():

    rule score_free:
        input:
            model=lambda w: reused_or_own(f"{PLAN.baseline_dir(w.base)}/model.pt"),
        output:
            [f"{paths.score_dir(OUT, '{base}', c, 0)}/{name}" for c in PLAN.own_free_scores() for name in SCORE_FILES],
        log:
            f"{OUT}/logs/score/{{base}}_free.log",
        benchmark:
            f"{OUT}/benchmarks/score/{{base}}_free.tsv"
        params:
            spec=lambda w: jobspecs.score_job(config, seed_of(w), PLAN.own_free_scores(), None, PLAN.criteria),
            deterministic=DETERMINISTIC,
            out=lambda w: paths.scores_dir(OUT, w.base),
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        shell:
            "nnprune score --model {input.model} --spec {params.spec:q}{params.deterministic} --threads {threads} --out {params.out} > {log} 2>&1"
