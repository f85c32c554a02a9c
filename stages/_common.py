"""Shared plumbing of the stage scripts: argument roles, params loading, clean errors.

A stage script is thin: it declares the params it reads (``PARAMS``: whole sections such as
``"model"`` or single keys such as ``"base.seed"``; a script whose reads depend on its
arguments defines ``params(args)`` instead), builds its parser with :func:`stage_parser`,
:func:`add_input` and :func:`add_output` (every path comes from dvc.yaml's ``cmd``), loads its
sections and calls one ``nrdfer`` function. ``tests/test_dvc_consistency.py`` checks each
stage's ``params:`` in dvc.yaml against these declarations, key by key, less the keys the
stage's ``cmd`` fixes with ``--set``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nrdfer.errors import UserError
from nrdfer.params import load_params


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (DVC's default)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a loaded parameter (dvc.yaml matrix stages pass their grid values this way)",
    )
    parser._nrdfer_roles = {}  # type: ignore[attr-defined]  # dest -> "in" | "out"
    return parser


def _add(parser: argparse.ArgumentParser, role: str, flag: str, **kwargs: Any) -> None:
    action = parser.add_argument(flag, required=kwargs.pop("required", True), **kwargs)
    parser._nrdfer_roles[action.dest] = role  # type: ignore[attr-defined]


def add_input(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """A path the stage reads: must be a ``deps:`` entry of the stage (or under one)."""
    _add(parser, "in", flag, **kwargs)


def add_output(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> None:
    """A path the stage writes: must be an ``outs``/``metrics``/``plots`` entry of the stage."""
    _add(parser, "out", flag, **kwargs)


def sections(declared: Sequence[str]) -> list[str]:
    """The params sections of ``declared`` entries (``"model"``, ``"base.seed"``), in order."""
    return list(dict.fromkeys(entry.split(".", 1)[0] for entry in declared))


def load(args: argparse.Namespace, declared: Sequence[str]) -> dict[str, Any]:
    """Load the sections of the ``declared`` entries from ``--params``, ``--set`` applied."""
    names = sections(declared)
    outside = [o for o in args.overrides if o.split(".", 1)[0] not in names]
    if outside:
        raise UserError(f"--set {outside[0]}: this stage loads only {', '.join(names)}")
    return load_params(args.params, names, args.overrides, flag="--set")


def run(main: Callable[[Sequence[str] | None], None]) -> None:
    """Run a stage's ``main``; user errors print one clear line and exit with status 2."""
    try:
        main(None)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
