"""Write the noise benchmark's data sets: one DFEW-layout set per N1 / N2 level (docs/noise.md).

Every set holds the same clips (people, expressions, folds); only the noise of the test clips
(fold 1) differs. Writes ``--out/<level>/`` (as ``nrdfer synth`` does) and ``--summary``, the
noise measured on each set's test clips from its metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_output, load, run, stage_parser

from nrdfer.data.synth.levels import generate_levels
from nrdfer.io import write_json

PARAMS = (
    "base.seed",
    *(
        f"synth.{k}"
        for k in (
            "dfew_class_counts",
            "dfew_frames",
            "dfew_scene_size",
            "dfew_face_size",
            "dfew_frame_size",
            "dfew_original_size",
            "dfew_frame_name",
            "dfew_split_spelling",
            "fps",
            "jpeg_quality",
            "intensity",
            "head_motion",
            "n1_rate",
            "n1_share",
            "n2_rate",
            "n2_share",
            "sheet_clips_per_class",
            "sheet_frames",
            "workers",
        )  # fmt: skip
    ),
    "noise.levels",
    "noise.n1_share",
    "noise.n2_share",
    "noise.dfew_clips",
)
"""The synth keys a level's set uses (the others are AFEW's or set per level)."""


def build_parser():
    parser = stage_parser(__doc__)
    add_output(parser, "--out", help="folder of the per-level data sets")
    add_output(parser, "--summary", help="JSON: measured noise of each set's test clips")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    summary = generate_levels(args.out, p["synth"], p["noise"], seed=p["base"].seed)
    write_json(args.summary, summary)
    for name, measured in summary.items():
        print(f"noise_synth: {name}: {measured}")


if __name__ == "__main__":
    run(main)
