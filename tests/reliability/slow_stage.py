"""Run a stage script with one library function slowed down, so a test can SIGKILL it mid-run.

    python tests/reliability/slow_stage.py MODULE:NAME SECONDS stages/<stage>.py ARGS...

``MODULE.NAME`` is replaced by a wrapper that sleeps ``SECONDS`` before each call; the stage
then runs exactly as ``python stages/<stage>.py ARGS...`` would (``__main__``, exit status 2
on a user error). Only the timing changes, never what is written.
"""

from __future__ import annotations

import functools
import importlib
import runpy
import sys
import time
from pathlib import Path


def main() -> None:
    target, seconds, script, *args = sys.argv[1:]
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    real = getattr(module, name)

    @functools.wraps(real)
    def slow(*a, **kw):
        time.sleep(float(seconds))
        return real(*a, **kw)

    setattr(module, name, slow)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))  # `from _common import ...`
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
