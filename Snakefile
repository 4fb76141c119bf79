# nnprune: train -> score -> prune -> fine-tune -> runs.csv for every grid point of the config.
# Default study: `snakemake --cores all`; another: `snakemake --cores all --configfile config/smoke.yaml`.
# As a module of another workflow (README, "Use the workflow from your own Snakefile"), the importing
# Snakefile gives the config (`config: config`), and every output path stays relative to its working
# directory, as here.
from pathlib import Path

# The default study only when no --configfile is given and this is the main Snakefile: Snakemake
# would otherwise deep-merge the given config over it (e.g. adding the default study's
# architectures to another study's), and a workflow that imports this one as a module owns the
# config. The path is this file's folder's (workflow.basedir is the main Snakefile's folder).
if workflow.modifier.is_main_snakefile() and not workflow.overwrite_configfiles:

    configfile: str(Path(workflow.current_basedir.get_path_or_uri(secret_free=True)) / "config" / "config.yaml")


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
        rules.toy_report.output if PLAN.toy_datasets else [],
        rules.claims.output,
        rules.reused.output if PLAN.source else [],
    default_target: True
