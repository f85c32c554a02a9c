"""Errors meant for the user: the message names the file and the next step.

The ``nrdfer`` command and the stage scripts print these without a traceback and exit with
status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input, a missing file or a wrong setting; the message says what to do."""


INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as a shell reports it): the ``nrdfer`` command
prints one line and no traceback."""
