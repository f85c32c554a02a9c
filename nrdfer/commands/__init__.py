"""One module per ``nrdfer`` sub-command: ``configure(parser)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse

from nrdfer.params import load_params


def add_params_options(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` and repeatable ``-S section.key=value`` (the syntax of dvc exp run -S)."""
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: ./params.yaml)"
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


def params_from_args(args: argparse.Namespace, sections: list[str]) -> dict:
    return load_params(args.params, sections, args.overrides)
