"""The `nnprune` command (the console script of pyproject.toml): where a command runs.

`nnprune ARGS` hands ARGS to the warm server when the workflow started one (`launch.run_warm`:
NNPRUNE_WARM names its socket, and NNPRUNE_NO_WARM is unset) and it takes them; the server's
forked child then runs `cli.main(ARGS)` and this process relays its exit status. Otherwise (a
cluster job, a shell, a server that cannot be reached) this process tunes its allocator and runs
`cli.main(ARGS)` itself: the outputs are the same either way (tests/test_reliability.py).

This is the only module that knows both the command line and the warm start; neither imports
the other. Torch-free: the hand-over happens before any heavy import.
"""
from __future__ import annotations

import sys

from nnprune.pipeline import launch
from nnprune.pipeline.process import tune_allocator


def main() -> int:
    """Run `nnprune sys.argv[1:]`, in the warm server or in this process; the exit status."""
    argv = sys.argv[1:]
    code = launch.run_warm(argv)
    if code is not None:
        return code
    tune_allocator()
    from nnprune.pipeline.cli import main as run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
