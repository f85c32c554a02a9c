"""Evaluate a fold's model on its test split: metrics with and without the snippet filter,
confusion data (dvc plots) and PNG, per-clip predictions, features for the t-SNE."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import EvalOutputs, evaluate_fold

PARAMS = ("base", "data", "evaluate")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="shard directory (with index.json)")
    parser.add_argument("--fold", required=True, help="fold name in the shard index")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="split")
    add_input(parser, "--model", help="model file written by the train stage")
    add_output(parser, "--metrics", help="flat metrics JSON")
    add_output(parser, "--confusion", help="confusion records without the filter (dvc plots)")
    add_output(parser, "--confusion-sf", help="confusion records with the filter (dvc plots)")
    add_output(parser, "--confusion-png", help="confusion matrices PNG")
    add_output(parser, "--predictions", help="per-clip predictions CSV")
    add_output(parser, "--features", help="features npz (t-SNE)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    m = evaluate_fold(
        args.shards,
        args.fold,
        args.model,
        base=p["base"],
        data=p["data"],
        evaluate=p["evaluate"],
        outputs=EvalOutputs(
            metrics=Path(args.metrics),
            confusion=Path(args.confusion),
            confusion_sf=Path(args.confusion_sf),
            confusion_png=Path(args.confusion_png),
            predictions=Path(args.predictions),
            features=Path(args.features),
        ),
        split=args.split,
    )
    print(
        f"fold {args.fold} {args.split}: WAR {100 * m['war']:.2f} / {100 * m['sf_war']:.2f} (SF)  "
        f"UAR {100 * m['uar']:.2f} / {100 * m['sf_uar']:.2f} (SF)  {m['clips']} clips"
    )


if __name__ == "__main__":
    run(main)
