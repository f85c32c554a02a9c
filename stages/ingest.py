"""Ingest a DFEW, AFEW, FERV39k or MAFW tree into a manifest (one row per clip, with a status).

Reads ``--root`` (a DFEW tree with its split CSVs, an AFEW tree of .avi videos or of face
frame folders, a FERV39k tree with its All_scenes split files, or a MAFW tree with its five
single-expression folds) and writes the manifest ``--out`` (parquet). Prints one summary line
and the clips left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.data.manifest import KINDS, describe_left_out, ingest, summarize, write_manifest

PARAMS = ("ingest", "data.U", "data.V")


def build_parser():
    parser = stage_parser(__doc__)
    parser.add_argument("--kind", required=True, choices=KINDS, help="dataset layout")
    add_input(parser, "--root", help="the data set's root folder")
    add_input(
        parser,
        "--splits",
        required=False,
        help="mafw only: the MAFW tree holding the split files, when --root is a tree of face "
        "frames written from its clips by detect_align (default: --root)",
    )
    add_output(parser, "--out", help="manifest file (.parquet or .csv)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    params = load(args, PARAMS)
    p, data = params["ingest"], params["data"]
    table = ingest(
        args.kind,
        args.root,
        dfew_frames=p.dfew_frames,
        mafw_frames=p.mafw_frames,
        splits_root=args.splits,
        min_frames=p.min_frames,
        verify=p.verify_frames,
    )
    write_manifest(table, args.out)
    print(f"ingest {args.kind}: {summarize(table, pad_to=data.U * data.V)}")
    left_out = describe_left_out(table)
    if left_out:
        print(
            f"ingest {args.kind}: clips left out (the others are used; fix or remove these and "
            f"re-run to include them; all listed with status and detail in {args.out}):",
            *left_out,
            sep="\n",
        )


if __name__ == "__main__":
    run(main)
