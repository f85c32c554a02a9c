"""Errors meant for the user: the message names the file and the next step.

The ``nrdfer`` command and the stage scripts print these without a traceback and exit with
status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input, a missing file or a wrong setting; the message says what to do."""
