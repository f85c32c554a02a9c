"""One module per ``nrdfer`` sub-command: ``configure(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nrdfer.errors import UserError
from nrdfer.params import load_params

PROJECT_PARAMS = Path("params.yaml")
"""The params file of the project a command runs in (the current folder's)."""

PACKAGED_PARAMS = Path(__file__).resolve().parents[1] / "defaults" / "params.yaml"
"""The default parameters shipped with the package: the project's params.yaml, kept identical
by a test, for the commands a user runs outside a project. Its folder holds no code and no
stage depends on it, so copying a params change over it reruns nothing."""


def add_params_options(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` and repeatable ``-S section.key=value`` (the syntax of dvc exp run -S)."""
    parser.add_argument(
        "--params",
        help="params file (default: ./params.yaml; outside a project the package's defaults)",
    )
    parser.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. -S model.M=3 (repeatable)",
    )


def params_path(args: argparse.Namespace) -> Path:
    """The params file a command reads: ``--params`` as given; without it ``./params.yaml``, or,
    outside a project, the packaged defaults, which it says on stderr (once: the choice is
    kept in ``args.params``)."""
    if args.params is not None:
        path = Path(args.params)
        if not path.exists():  # anything else (a folder, a pipe) the loader names
            raise UserError(f"{path}: params file not found; check the --params path")
        return path
    if PROJECT_PARAMS.is_file():
        args.params = str(PROJECT_PARAMS)
        return PROJECT_PARAMS
    print(
        f"nrdfer: no params.yaml in this folder; using the package's defaults {PACKAGED_PARAMS}",
        file=sys.stderr,
    )
    args.params = str(PACKAGED_PARAMS)
    return PACKAGED_PARAMS


def params_from_args(args: argparse.Namespace, sections: list[str]) -> dict:
    return load_params(params_path(args), sections, args.overrides)
