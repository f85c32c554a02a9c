"""``nrdfer params``: validate params.yaml (with -S overrides) and print the resolved values."""

from __future__ import annotations

import argparse
import json

import yaml

from nrdfer.commands import add_params_options
from nrdfer.params import SECTIONS, load_params, to_dict


def configure(parser: argparse.ArgumentParser) -> None:
    add_params_options(parser)
    parser.add_argument(
        "--section", action="append", choices=list(SECTIONS), help="only these sections"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML")


def run(args: argparse.Namespace) -> int:
    sections = args.section or list(SECTIONS)
    resolved = {
        k: to_dict(v) for k, v in load_params(args.params, sections, args.overrides).items()
    }
    if args.json:
        print(json.dumps(resolved, indent=2))
    else:
        print(yaml.safe_dump(resolved, sort_keys=False), end="")
    return 0
