# nnprune: train -> score -> prune -> fine-tune -> runs.csv for every grid point of the config.
# Default study: `snakemake --cores all`; another: `snakemake --cores all --configfile config/smoke.yaml`.
from pathlib import Path

# The default study only when no --configfile is given: Snakemake would otherwise deep-merge
# the given config over it (e.g. adding the default study's architectures to another study's).
if not workflow.overwrite_configfiles:

    configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/toy.smk"


rule all:
    input:
        f"{OUT}/runs.csv",
        rules.report_tables_figures.output,
        rules.toy_report.output if TOY_DATASETS else [],
        rules.claims.output,
    default_target: True
