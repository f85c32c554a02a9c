"""Evaluate a model file on a fold's test split: UAR/WAR with and without the snippet filter
(the metrics file), everything else measured (details JSON, per-clip predictions, features,
confusion PNG) and the dvc plots data (confusion records, per-class accuracy).

``--snippet-len`` / ``--snippet-stride`` evaluate the same model with another snippet width and
stride (paper Table 2: the filter acts at evaluation only, no re-training).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import EvalOutputs, evaluate_fold

PARAMS = ("base.device", "data", "evaluate")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="shard directory (with index.json)")
    parser.add_argument("--fold", required=True, help="fold name in the shard index")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="split")
    add_input(parser, "--model", help="model file written by the train stage")
    add_input(parser, "--training", required=False, help="training summary to carry along")
    parser.add_argument("--snippet-len", type=int, help="evaluate with this L (Table 2)")
    parser.add_argument("--snippet-stride", type=int, help="evaluate with this S (Table 2)")
    add_output(parser, "--details", help="everything measured, flat JSON")
    add_output(parser, "--metrics", required=False, help="UAR/WAR with and without the filter")
    add_output(parser, "--confusion", required=False, help="dir of confusion records (dvc plots)")
    add_output(parser, "--per-class", required=False, help="dir of per-class accuracy (plots)")
    add_output(parser, "--confusion-png", required=False, help="confusion matrices PNG")
    add_output(parser, "--predictions", required=False, help="per-clip predictions CSV")
    add_output(parser, "--features", required=False, help="features npz (t-SNE)")
    return parser


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    decision = {
        k: v
        for k, v in (("snippet_len", args.snippet_len), ("snippet_stride", args.snippet_stride))
        if v is not None
    }
    m = evaluate_fold(
        args.shards,
        args.fold,
        args.model,
        base=p["base"],
        data=p["data"],
        evaluate=p["evaluate"],
        outputs=EvalOutputs(
            details=Path(args.details),
            metrics=_path(args.metrics),
            confusion=_path(args.confusion),
            per_class=_path(args.per_class),
            confusion_png=_path(args.confusion_png),
            predictions=_path(args.predictions),
            features=_path(args.features),
        ),
        split=args.split,
        training=_path(args.training),
        decision=decision or None,
    )
    print(
        f"fold {args.fold} {args.split}: WAR {100 * m['war']:.2f} / {100 * m['sf_war']:.2f} (SF)  "
        f"UAR {100 * m['uar']:.2f} / {100 * m['sf_uar']:.2f} (SF)  {m['clips']} clips"
    )


if __name__ == "__main__":
    run(main)
