"""``nrdfer synth``: generate the demo data set (DFEW/AFEW, FERV39k, MAFW layouts) anywhere.

Reads the ``synth`` section of ``--params`` (default ``./params.yaml``, with ``-S`` overrides);
outside a project, without ``--params``, the package's default parameters. See
docs/demo-data.md.
"""

from __future__ import annotations

import argparse

from nrdfer.commands import add_params_options, params_path
from nrdfer.errors import UserError
from nrdfer.params import load_section


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        required=True,
        help="output folder: new, empty, or an earlier synth output (replaced whole); any other "
        "folder is refused",
    )
    parser.add_argument("--seed", type=int, required=True, help="master seed")
    parser.add_argument("--clips", type=int, help="clips per layout (default: params)")
    parser.add_argument(
        "--layout",
        choices=("dfew", "afew", "both", "ferv39k", "mafw"),
        default="both",
        help="both: DFEW and AFEW (--clips each), with FERV39k / MAFW when synth.ferv39k_clips "
        "/ synth.mafw_clips ask for them; any other: that layout alone",
    )
    parser.add_argument("--workers", type=int, help="worker processes (default: synth.workers)")
    add_params_options(parser)


def run(args: argparse.Namespace) -> int:
    from nrdfer.data.synth import generate

    if args.clips is not None and args.clips < 1:
        raise UserError(f"--clips must be at least 1, got {args.clips}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    params = load_section(params_path(args), "synth", args.overrides)
    summary = generate(
        args.out,
        params,
        seed=args.seed,
        clips=args.clips,
        layout=args.layout,
        workers=args.workers,
    )
    for layout, counts in summary.items():
        print(f"{layout}: {counts}")
    print(f"wrote {args.out} (see contact_sheet.png)")
    return 0
