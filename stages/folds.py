"""Assign the usable clips of a manifest to folds (official DFEW/AFEW splits or stratified k-fold).

Reads the manifest ``--manifest`` and writes the fold file ``--out`` (JSON: partitions, per-fold
train/val/test clip ids, labels). Prints one summary line.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.data.folds import make_folds, summarize_folds
from nrdfer.data.manifest import read_manifest
from nrdfer.io import write_json

PARAMS = ("base.seed", "folds.scheme", "folds.k", "folds.val_fraction")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--manifest", help="manifest written by the ingest stage")
    add_output(parser, "--out", help="fold file (JSON)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    params = load(args, PARAMS)
    p = params["folds"]
    folds = make_folds(
        read_manifest(args.manifest), p.scheme, p.k, p.val_fraction, params["base"].seed
    )
    write_json(args.out, folds)
    print(summarize_folds(folds))
    for note in folds["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    run(main)
