"""Detect, track and align the face of every raw video (RetinaFace + 5-point template).

Writes one folder of aligned face frames per video, mirroring the input layout, and a per-clip
report CSV (ok / no_face / error / duplicate_id / nested_clip). Resumable: clips already written are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.device import resolve_device
from nrdfer.preprocess.pipeline import detect_align_tree

PARAMS = ("base.device", "detect_align")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--videos", help="folder of raw videos (AFEW layout or any tree)")
    add_output(parser, "--out", help="output folder of aligned face frames")
    add_output(parser, "--report", help="per-clip report CSV")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    params = load(args, PARAMS)
    summary = detect_align_tree(
        args.videos,
        args.out,
        args.report,
        params["detect_align"],
        device=str(resolve_device(params["base"].device)),
    )
    print(
        f"detect_align: {summary.total} videos, {summary.skipped} already done, "
        f"this run: {summary.by_status}"
    )


if __name__ == "__main__":
    run(main)
