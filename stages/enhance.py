"""Enhance the dark frames of every aligned face clip (EnlightenGAN or an offline fallback).

Copies the face-frame tree, enhancing only frames darker than ``enhance.dark_threshold``, and
writes a per-clip report CSV naming the enhanced frames. Resumable: clips already written are
skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.device import resolve_device
from nrdfer.preprocess.pipeline import enhance_tree

PARAMS = ("base.device", "enhance")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--faces", help="folder of aligned face-frame clips (detect_align output)")
    add_output(parser, "--out", help="output folder of enhanced face-frame clips")
    add_output(parser, "--report", help="per-clip enhancement report CSV")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    params = load(args, PARAMS)
    summary = enhance_tree(
        args.faces,
        args.out,
        args.report,
        params["enhance"],
        device=str(resolve_device(params["base"].device)),
    )
    print(
        f"enhance: {summary.total} clips, {summary.skipped} already done, "
        f"this run: {summary.by_status}"
    )


if __name__ == "__main__":
    run(main)
