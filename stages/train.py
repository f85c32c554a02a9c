"""Train one fold: shards in, resumable checkpoint, selected model file, dvclive curves out.

Single process: ``python stages/train.py ...`` (what dvc.yaml runs). Several GPUs or nodes:
``torchrun --nproc_per_node=N stages/train.py ...`` with the same arguments (docs/engine.md).
The training section is the last of ``PARAMS`` (``train`` for DFEW; ``train_afew.py`` passes
its own list ending in ``train_afew``). ``detect_align`` (and ``enhance`` for AFEW) go into the
model file so that ``nrdfer predict`` prepares a raw video like the training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import TrainOutputs, live_dir_from_outputs, train_fold

PARAMS = ("base", "data", "detect_align", "model", "train")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="shard directory (with index.json)")
    parser.add_argument("--fold", required=True, help="fold name in the shard index")
    add_input(parser, "--init", required=False, help="model file to fine-tune from")
    add_output(parser, "--checkpoint", help="resumable training checkpoint (persist: true)")
    add_output(parser, "--model", help="selected model file")
    add_output(parser, "--live-metrics", help="dvclive metrics.json (inside the dvclive dir)")
    add_output(parser, "--live-plots", help="dvclive plots/metrics dir (same dvclive dir)")
    add_output(parser, "--summary", help="flat metrics: selection, labelled best-on-test")
    return parser


def main(argv: Sequence[str] | None = None, params: Sequence[str] = PARAMS) -> None:
    """Train; ``params`` are the sections to load, the training section last (train_afew.py
    passes its own, with ``enhance``: the face settings go into the model file for predict)."""
    args = build_parser().parse_args(argv)
    section = params[-1]
    p = load(args, params)
    train_fold(
        args.shards,
        args.fold,
        base=p["base"],
        data=p["data"],
        model_params=p["model"],
        train=p[section],
        outputs=TrainOutputs(
            checkpoint=Path(args.checkpoint),
            model=Path(args.model),
            live_dir=live_dir_from_outputs(args.live_metrics, args.live_plots),
            summary=Path(args.summary),
        ),
        init=args.init,
        detect_align=p["detect_align"],
        enhance=p.get("enhance"),
    )


if __name__ == "__main__":
    run(main)
