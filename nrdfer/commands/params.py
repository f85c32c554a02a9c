"""``nrdfer params``: validate params.yaml (with -S overrides) and print the resolved values.

Outside a project (no ./params.yaml, no ``--params``) it shows the package's defaults.
"""

from __future__ import annotations

import argparse
import json

import yaml

from nrdfer.commands import add_params_options, params_from_args
from nrdfer.params import SECTIONS, to_dict


def configure(parser: argparse.ArgumentParser) -> None:
    add_params_options(parser)
    parser.add_argument(
        "--section", action="append", choices=list(SECTIONS), help="only these sections"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML")


def run(args: argparse.Namespace) -> int:
    sections = args.section or list(SECTIONS)
    resolved = {k: to_dict(v) for k, v in params_from_args(args, sections).items()}
    if args.json:
        print(json.dumps(resolved, indent=2))
    else:
        print(yaml.safe_dump(resolved, sort_keys=False), end="")
    return 0
