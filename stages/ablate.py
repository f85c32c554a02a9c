"""Train one configuration of an ablation grid on one fold and evaluate it on that fold's test
split (paper Tables 1 and 3; the baselines of Tables 4-5 run through it too).

dvc.yaml's matrix stages pass the grid values with ``--set model.KEY=VALUE``; every metrics file
carries the model settings, so the report groups runs by content, not by file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import EvalOutputs, TrainOutputs, evaluate_fold, train_fold

PARAMS = ("base", "data", "detect_align", "model", "train", "evaluate")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="shard directory (with index.json)")
    parser.add_argument("--fold", required=True, help="fold name in the shard index")
    add_input(parser, "--init", required=False, help="model file to fine-tune from (AFEW)")
    add_output(parser, "--checkpoint", help="resumable training checkpoint (persist: true)")
    add_output(parser, "--model", help="selected model file")
    add_output(parser, "--summary", help="training summary (selection, labelled best-on-test)")
    add_output(parser, "--metrics", help="test metrics with and without the snippet filter")
    add_output(parser, "--features", help="features + attention npz (Fig. 5, Fig. 6)")
    return parser


def main(argv: Sequence[str] | None = None, params: Sequence[str] = PARAMS) -> None:
    """Train then evaluate; ``params`` are the sections to load, the training section (``train``
    or ``train_afew``) before ``evaluate`` (ablate_afew.py passes its own)."""
    args = build_parser().parse_args(argv)
    p = load(args, params)
    train_fold(
        args.shards,
        args.fold,
        base=p["base"],
        data=p["data"],
        model_params=p["model"],
        train=p[params[-2]],
        outputs=TrainOutputs(
            checkpoint=Path(args.checkpoint),
            model=Path(args.model),
            live_dir=None,
            summary=Path(args.summary),
        ),
        init=args.init,
        detect_align=p["detect_align"],
        enhance=p.get("enhance"),
    )
    m = evaluate_fold(
        args.shards,
        args.fold,
        args.model,
        base=p["base"],
        data=p["data"],
        evaluate=p["evaluate"],
        outputs=EvalOutputs(metrics=Path(args.metrics), features=Path(args.features)),
    )
    print(
        f"{' '.join(args.overrides)} fold {args.fold}: WAR {100 * m['war']:.2f} / "
        f"{100 * m['sf_war']:.2f} (SF)  UAR {100 * m['uar']:.2f} / {100 * m['sf_uar']:.2f} (SF)"
    )


if __name__ == "__main__":
    run(main)
