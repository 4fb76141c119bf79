"""The one exception type for bad input: it carries the problem and the fix."""


class UserError(Exception):
    """Bad input from the user (config, file, data). The CLI prints it without a traceback."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem}\n  fix: {fix}")
        self.problem = problem
        self.fix = fix
