"""Generate the demo data set: DFEW and AFEW layouts (FERV39k and MAFW when synth asks for
them), contact sheet, per-clip ground truth.

Deterministic for ``base.seed``; the output folder is generated beside the target and renamed
into place, so a re-run replaces it whole and an interrupted run leaves the old one intact.
``--layout dfew --test-only`` writes only the DFEW test clips (fold 1): the noise benchmark's
test set at one level (docs/noise.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_output, load, run, stage_parser

from nrdfer.data.synth import LAYOUTS, generate

PARAMS = ("base.seed", "synth")


def build_parser():
    parser = stage_parser(__doc__)
    add_output(
        parser,
        "--out",
        help="output folder (DFEW/, AFEW/, FERV39k/, MAFW/, contact sheet, metadata)",
    )
    parser.add_argument("--layout", default="both", choices=LAYOUTS, help="layouts to write")
    parser.add_argument(
        "--test-only",
        action="store_true",
        help="only the DFEW test clips (fold 1), byte for byte as in the whole set (noise benchmark)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    params = load(args, PARAMS)
    summary = generate(
        args.out,
        params["synth"],
        seed=params["base"].seed,
        layout=args.layout,
        test_only=args.test_only,
    )
    for layout, counts in summary.items():
        print(f"synth: {layout}: {counts}")


if __name__ == "__main__":
    run(main)
