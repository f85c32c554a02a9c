"""Evaluate a trained fold model with another snippet width L and stride S (paper Table 2).

The snippet-based filter acts at evaluation only, so Table 2 needs no re-training.
"""

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
    add_input(parser, "--model", help="model file written by the train stage")
    parser.add_argument("--snippet-len", type=int, required=True, help="L (from params)")
    parser.add_argument("--snippet-stride", type=int, required=True, help="S (from params)")
    add_output(parser, "--metrics", help="test metrics with and without the snippet filter")
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
        outputs=EvalOutputs(metrics=Path(args.metrics)),
        decision={"snippet_len": args.snippet_len, "snippet_stride": args.snippet_stride},
        progress=False,
    )
    print(
        f"L={args.snippet_len} S={args.snippet_stride} fold {args.fold}: "
        f"WAR {100 * m['sf_war']:.2f}  UAR {100 * m['sf_uar']:.2f} (with SF)"
    )


if __name__ == "__main__":
    run(main)
