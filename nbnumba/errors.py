"""Errors that reach the user as one clear line on stderr."""


class UserError(Exception):
    """A mistake in the user's input: reported as one line, exit code 2."""

    exit_code = 2


class RuntimeFailure(UserError):
    """A failure while running (disk full, interrupted write...): exit code 1."""

    exit_code = 1
