"""Manifest, folds and WebDataset shards of every noise level's data set (what the ingest,
folds and shards stages do for the demo, once per level).

Reads ``--raw/<level>/DFEW``; writes ``--tables/<level>.parquet`` and ``<level>.json`` (manifest
and folds) and ``--out/<level>/`` (shards with index.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest, write_manifest
from nrdfer.data.shards import ShardSpec, write_shards
from nrdfer.data.synth.levels import level_sets, table_files
from nrdfer.io import write_json

PARAMS = ("base.seed", "ingest", "folds.scheme", "folds.k", "folds.val_fraction", "shards",
          "noise.levels")  # fmt: skip


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--raw", help="folder of the per-level data sets (noise_synth)")
    add_output(parser, "--tables", help="folder for each level's manifest and fold file")
    add_output(parser, "--out", help="folder for each level's shard directory")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    i, f, s = p["ingest"], p["folds"], p["shards"]
    spec = ShardSpec(
        short_side=s.short_side, quality=s.quality, maxcount=s.maxcount, max_frames=s.max_frames
    )
    for level in level_sets(p["noise"].levels):
        root = Path(args.raw) / level.name / "DFEW"
        table = ingest("dfew", root, dfew_frames=i.dfew_frames, min_frames=i.min_frames,
                       verify=i.verify_frames)  # fmt: skip
        manifest, fold_file = table_files(args.tables, level)
        write_manifest(table, manifest)
        folds = make_folds(table, f.scheme, f.k, f.val_fraction, p["base"].seed)
        write_json(fold_file, folds)
        index = write_shards(table, folds, root, Path(args.out) / level.name, spec, s.workers)
        print(f"noise_shards: {level.name}: {len(index['clips'])} clips")


if __name__ == "__main__":
    run(main)
