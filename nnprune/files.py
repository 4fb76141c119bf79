"""Atomic file output and safe loading (torch-free to import: torch loads when a tensor file is
read or written).

Every file nnprune writes goes to a temporary file in the destination directory and is renamed
into place, so an interrupted job never leaves a half-written file that looks complete.
Checkpoints and score files load with `weights_only=True`: no code runs from a data file.
"""
from __future__ import annotations

import functools
import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnprune.errors import UserError


@functools.lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a plain `open(path, "w")` would give (0o666 minus the umask); read once, since
    reading the umask means briefly setting it."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` then rename tmp_path to `path`. Returns `path`.

    Until the rename, `path` keeps its old content (or stays absent); on any exception the
    temporary file is removed. A SIGKILL can leave a `.{name}.*.tmp` file, never a partial `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates 0600 files; results should be as readable as any other file.
        os.chmod(tmp, _file_mode())
        # fsync before the rename: after a crash the new name never points at unwritten blocks.
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
    return atomic_write(path, write)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if type(value).__module__ == "torch" and hasattr(value, "tolist"):     # a torch.Tensor
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing file {path}", "run the step that produces it first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON ({error})", "delete it and rerun the step that wrote it") from None


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """Load a tensor file with `weights_only=True`; bad files raise UserError naming the fix."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist", "run the step that produces it first")
    _check_torch_file(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message starts with generic advice to retry with weights_only=False, which
        # is exactly what must not happen; name the offending global instead.
        offending = re.search(r"GLOBAL (\S+)", str(error))
        last_line = (str(error).strip().splitlines() or ["an unsupported type"])[-1]
        detail = f"it would call {offending.group(1)}" if offending else last_line
        raise UserError(
            f"{what} {path} holds objects that are not plain tensors and containers "
            f"({detail}); refusing to unpickle it, since that could run code",
            "use only files written by nnprune; delete this one and rerun the step that writes it",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError) as error:
        # an empty message (EOFError) or a bare opcode (KeyError: 101) says little: name the type
        detail = (str(error).strip().splitlines() or [""])[0]
        raise UserError(
            f"{what} {path} is corrupt or truncated ({type(error).__name__}{': ' + detail if detail else ''})",
            "delete it and rerun the step that writes it (Snakemake: --forcerun that rule)",
        ) from None


# torch.save writes a zip archive; files from before torch 1.6 are a bare pickle (protocol 2+).
TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")


def _check_torch_file(path: Path, what: str) -> None:
    """Raise UserError unless `path` starts the way a torch.save file does (an empty file, or a
    text file given by mistake, is named as such rather than reaching the unpickler)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise UserError(f"{what} {path} is empty (0 bytes)",
                        "delete it and rerun the step that writes it (Snakemake: --forcerun that rule)")
    if not head.startswith(TORCH_FILE_STARTS):
        raise UserError(f"{what} {path} is not a file written by torch.save (it starts with {head!r})",
                        "give the model.pt or scores.pt that an nnprune step wrote")
