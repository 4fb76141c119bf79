"""A config file read as YAML, its errors told with their line and column: Snakemake reads a
--configfile before the workflow's own checks run, and names no line for a YAML error."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nnprune.errors import UserError


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of the YAML config file at `path`. Raises a UserError when the file does not
    exist, is not valid YAML (naming the line and column where the parser can) or is empty."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist", "give the path of a YAML config, e.g. config/smoke.yaml")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({error.problem or error.context})",
                        "correct the YAML there (indent with spaces; close every [ and {)") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})", "correct the YAML") from None
    if not config:
        raise UserError(f"config file {path} is empty", "start from config/config.yaml, which sets every required key")
    return config
