"""`nnprune` command line: fetch-data | check-config | train | score | prune | finetune | scratch |
evaluate | aggregate | report | claims | toy | toy-report | compare.

`compare A B` reads the claims.json of two study folders (say, a committed study and its regeneration
on another machine) and shows which verdicts replicate, point by point.

A command's flags are the fields of its spec in `nnprune.plan.specs`, with the same names, defaults and
choices; list settings take several values (`--score-images 32 128` or `32,128`), mapping settings
(claims --settings) a JSON object. `--spec` gives
settings as one JSON object, inline or in a file (the workflow passes one per job); flags given
beside it override it. Every step writes its outputs atomically into `--out`, always including a
`metrics.json` with the resolved configuration and provenance. Bad input ends with one line
naming the problem and the fix (exit code 2), never with a bare traceback.

`main(argv)` runs a command in the calling process; the `nnprune` console script (`entry.main`)
decides whether that process is its own or a child of the warm server. Torch-free to import, and
each command imports only what it needs: `nnprune report --help` and `nnprune claims` never load
torch (tests/test_cli_torch_free.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, fields

from nnprune.errors import UserError
from nnprune.plan.specs import (
    STEP_SPECS,
    DataSpec,
    RunOptions,
    TrainConfig,
    default_of,
    field_type,
    from_values,
    read_spec,
)

DESCRIPTION = __doc__
SUMMARIES = {
    "train": "train an unpruned baseline",
    "score": "score every prunable channel of a model",
    "prune": "physically remove channels by scores and a scheme",
    "finetune": "fine-tune a pruned model",
    "scratch": "train a pruned model's architecture from scratch (the from-scratch control)",
    "evaluate": "clean-test accuracy, MACs and params of a model",
    "aggregate": "gather run metrics into runs.csv and stability.csv",
    "report": "tables and figures from runs.csv and stability.csv",
    "claims": "verdicts on the paper's claims: claims.md and claims.json",
    "toy": "the 2-D toy decision-boundary experiment for one dataset",
    "toy-report": "toy figures from `nnprune toy` outputs",
}
# the building blocks of the specs, each shown as a group of options after the step's own settings
GROUPS = ((DataSpec, "data"), (TrainConfig, "optimisation"), (RunOptions, "run"))


def flags_of(cls: type, spec_field: Field) -> list[str]:
    """The option strings of a field of spec class `cls`: --name (underscores as dashes), its
    aliases, and --no-name for a boolean."""
    flag = f"--{spec_field.name.replace('_', '-')}"
    flags = [flag, *spec_field.metadata.get("aliases", ())]
    return flags + [f"--no-{flag[2:]}"] if field_type(cls, spec_field.name)[0] is bool else flags


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def add_spec_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of spec class `cls`, grouped by the building block it comes from."""
    titles = {spec_field.name: next((title for block, title in GROUPS if issubclass(cls, block)
                                     and spec_field.name in {f.name for f in fields(block)}), "settings")
              for spec_field in fields(cls)}
    groups = {title: parser.add_argument_group(title)
              for title in ("settings", *(title for _, title in GROUPS)) if title in titles.values()}
    for spec_field in fields(cls):
        kind, is_list, _ = field_type(cls, spec_field.name)
        default = default_of(spec_field)
        choices = spec_field.metadata.get("choices")
        text = spec_field.metadata.get("help", "").replace("%", "%%")
        if is_list and choices:
            text += f"; from: {', '.join(choices)}"
        if default is MISSING:
            text += " (required)"
        elif default is not None:    # a None default is explained in the help text
            text += f" (default: {_shown(default)})"
        options = {"dest": spec_field.name, "help": text,
                   "default": argparse.SUPPRESS if default is MISSING else default}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif is_list:   # strings on the command line: split at commas and converted in `_list_value`
            options["nargs"] = "*" if default == [] else "+"
        elif kind is dict:   # a JSON object on the command line, read in `_dict_value`
            options["metavar"] = "JSON"
        else:
            options.update(type=kind, choices=choices)
        flags = flags_of(cls, spec_field)
        groups[titles[spec_field.name]].add_argument(*(flags[:-1] if kind is bool else flags), **options)


class CommandParser(argparse.ArgumentParser):
    """A command's parser. `more_help`, when given, is called only when the help is shown, and its
    text ends the description: the score command lists the criteria, which imports torch."""

    def __init__(self, *args, more_help: Callable[[], str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.more_help = more_help

    def format_help(self) -> str:
        if self.more_help is None:
            return super().format_help()
        description = self.description
        self.description = f"{description}\n\n{self.more_help()}"
        try:
            return super().format_help()
        finally:
            self.description = description


def criteria_help() -> str:
    """The `criteria:` section of `nnprune score --help`: each criterion's name and summary."""
    from nnprune.pruning.criteria import CRITERIA

    return "criteria:\n" + "\n".join(f"  {name:16s}{c.summary}" for name, c in CRITERIA.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnprune", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)

    fetch = sub.add_parser("fetch-data", help="put a dataset under --root (offline first)")
    fetch.add_argument("--dataset", default="fashion-mnist")
    fetch.add_argument("--root", default="data")
    check = sub.add_parser("check-config", help="check a study config (YAML syntax, schema, grid) before a run",
                           description="Check a study config as the workflow does, without running "
                                       "anything, and that its dataset is under data_root; a YAML error is "
                                       "named with its line. `make run` calls it.")
    check.add_argument("configfile", help="the YAML config, e.g. config/smoke.yaml")
    # On by default: `make run` calls check-config so that a missing dataset stops the run before
    # any job; --no-data checks a config for another machine (say a GPU cluster's) without its data.
    check.add_argument("--no-data", action="store_true",
                       help="do not check that the dataset is under data_root (relative to the working directory)")
    compare = sub.add_parser("compare", help="compare the verdicts of two study folders (claims.json): which replicate",
                             description="Match every claim and operating point of study folder A's claims.json "
                                         "with study folder B's and print, as a Markdown table, both verdicts, "
                                         "mean differences and intervals, and whether they agree.")
    compare.add_argument("study_a", help="a study folder holding claims.json, e.g. results/default")
    compare.add_argument("study_b", help="the study folder to compare it with")
    compare.add_argument("--out", metavar="DIR", default=None,
                         help="also write compare.csv and compare.md into DIR")

    for command, cls in STEP_SPECS.items():
        description = SUMMARIES[command][0].upper() + SUMMARIES[command][1:] + "."
        step = sub.add_parser(command, help=SUMMARIES[command], description=description, allow_abbrev=False,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              more_help=criteria_help if command == "score" else None)
        step.add_argument("--spec", metavar="JSON",
                          help="settings as a JSON object, inline or in a file; flags given beside it "
                               "override it")
        add_spec_options(step, cls)
    return parser


def _given(cls: type, argv: list[str]) -> set[str]:
    """Fields of `cls` whose flags appear in `argv` (abbreviations are off, so flags are exact)."""
    return {spec_field.name for spec_field in fields(cls)
            if any(token == flag or token.startswith(flag + "=")
                   for flag in flags_of(cls, spec_field) for token in argv)}


def _list_value(cls: type, name: str, tokens: list[str]) -> list:
    """A list setting from its command-line tokens, each possibly comma-separated."""
    kind = field_type(cls, name)[0]
    items = [item for token in tokens for item in token.split(",") if item]
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise UserError(f"--{name.replace('_', '-')}: {' '.join(tokens)!r} is not a list of {kind.__name__}",
                        f"give one or more {kind.__name__} values, separated by spaces or commas") from None


def _dict_value(name: str, text: str) -> dict:
    """A mapping setting from its command-line JSON."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"--{name.replace('_', '-')} is not JSON: {error}",
                        f"give --{name.replace('_', '-')} as a JSON object") from None
    if not isinstance(value, dict):
        raise UserError(f"--{name.replace('_', '-')} is not a JSON object", 'give an object such as {"alpha": 0.05}')
    return value


def spec_from_args(args: argparse.Namespace, argv: list[str]):
    """The command's spec: its dataclass defaults, then the --spec JSON, then the flags given."""
    cls = STEP_SPECS[args.command]
    parsed = {k: v for k, v in vars(args).items() if k not in ("command", "spec")}
    given = _given(cls, argv)
    for name in given:
        kind, is_list, _ = field_type(cls, name)
        if is_list:
            parsed[name] = _list_value(cls, name, parsed[name])
        elif kind is dict:
            parsed[name] = _dict_value(name, parsed[name])
    values = {**read_spec(args.spec), **{k: parsed[k] for k in given}} if args.spec else parsed
    return from_values(cls, values)


def _compare(study_a: str, study_b: str, out: str | None) -> int:
    """`nnprune compare`: the Markdown comparison on stdout (and compare.csv/.md under `out`); bad input
    is one line on stderr and exit code 2."""
    from nnprune.analysis.compare import compare_studies, load_claims, render_markdown, write_compare

    try:
        frame = compare_studies(load_claims(study_a), load_claims(study_b), study_a, study_b)
    except UserError as error:
        line = f"nnprune compare: error: {error.problem}; fix: {error.fix}"
        print(" ".join(line.split()), file=sys.stderr)      # one line, whatever the message holds
        return 2
    print(render_markdown(frame, study_a, study_b), end="")
    if out is not None:
        write_compare(frame, out, study_a, study_b)
    return 0


def _check_config(path: str, with_data: bool) -> str:
    """`nnprune check-config`: what the workflow checks before any job, each once. The config (its
    form, its meaning, then its plan: a reused study's recipe, the scratch controls), and with
    `with_data` what the workflow checks when execution starts: the dataset, outside code, a reused
    study's model files and the cuts (`pipeline.before_jobs`). Returns the study's name."""
    from nnprune.plan.defaults import with_defaults
    from nnprune.plan.grid import plan
    from nnprune.plan.studyconfig import checked_config_file

    config, references = checked_config_file(path)      # as the workflow's parse does (common.smk)
    config = with_defaults(config)
    planned = plan(config, references=references)
    if with_data:
        from nnprune.pipeline.before_jobs import check_before_jobs

        check_before_jobs(config, planned)
    return config["study"]


def main(argv: Sequence[str]) -> int:
    """Run the command `argv` (without the program name) in this process; the exit status: 0, 2
    for bad input (one line naming the problem and the fix on stderr), 130 when interrupted."""
    argv = list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fetch-data":
            from nnprune.data.fetch import fetch
            how = fetch(args.dataset, args.root)
            print(f"nnprune: {args.dataset} ready under {args.root} ({how})")
            return 0
        if args.command == "check-config":
            study = _check_config(args.configfile, with_data=not args.no_data)
            print(f"nnprune: {args.configfile} is a valid config of study {study}")
            return 0
        if args.command == "compare":
            return _compare(args.study_a, args.study_b, args.out)
        from nnprune import api

        getattr(api, args.command.replace("-", "_"))(spec_from_args(args, argv))
        return 0
    except UserError as error:
        print(f"nnprune {args.command}: error: {error.problem}\n  fix: {error.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnprune {args.command}: interrupted; completed outputs are intact", file=sys.stderr)
        return 130


if __name__ == "__main__":     # `python -m nnprune.pipeline.cli ARGS`: always in this process
    from nnprune.pipeline.process import tune_allocator

    tune_allocator()
    sys.exit(main(sys.argv[1:]))
