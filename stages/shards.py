"""Write the usable clips as WebDataset shards, one tar set per partition, plus index.json.

Reads the manifest ``--manifest``, the fold file ``--folds`` and the frames under ``--root``
(the folder the manifest was made from); writes the shard directory ``--out``.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.data.folds import read_folds
from nrdfer.data.manifest import read_manifest
from nrdfer.data.shards import ShardSpec, write_shards

PARAMS = ("shards",)


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--manifest", help="manifest written by the ingest stage")
    add_input(parser, "--folds", help="fold file written by the folds stage")
    add_input(parser, "--root", help="data root the manifest's source paths are relative to")
    add_output(parser, "--out", help="shard directory")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)["shards"]
    spec = ShardSpec(
        short_side=p.short_side, quality=p.quality, maxcount=p.maxcount, max_frames=p.max_frames
    )
    table, folds = read_manifest(args.manifest), read_folds(args.folds)
    index = write_shards(table, folds, args.root, args.out, spec, p.workers)
    shards = sum(len(part["shards"]) for part in index["parts"].values())
    print(
        f"shards {index['dataset']}: {len(index['clips'])} clips in {shards} tars, "
        f"{len(index['skipped'])} skipped, {len(index['resized'])} with frames resized to one size"
    )
    for clip, note in list(index["resized"].items())[:10]:
        print(f"  {clip}: {note}")


if __name__ == "__main__":
    run(main)
