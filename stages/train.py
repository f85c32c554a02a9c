"""Train one fold: shards in, resumable checkpoint, selected model file, dvclive curves out.

Single process: ``python stages/train.py ...`` (what dvc.yaml runs). Several GPUs or nodes:
``torchrun --nproc_per_node=N stages/train.py ...`` with the same arguments (docs/engine.md).
``--train-section`` names the params section with the training settings (``train``, or
``train_afew``: AFEW fine-tuning, an overlay of ``train``). ``detect_align`` (and with
``--enhanced`` the ``enhance`` section) go into the model file so that ``nrdfer predict``
prepares a raw video like the training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import TrainOutputs, live_dir_from_outputs, train_fold

BUILDS_MODEL = True
"""Of the ``model`` section this stage reads only the keys of the model it builds
(``nrdfer.models.registry.model_keys``): a baseline reads a few, NR-DFERNet all but one."""


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="shard directory (with index.json)")
    parser.add_argument("--fold", required=True, help="fold name in the shard index")
    parser.add_argument("--train-section", default="train", help="params section to train with")
    parser.add_argument(
        "--enhanced", action="store_true", help="the data went through the enhance stage"
    )
    add_input(parser, "--init", required=False, help="model file to fine-tune from")
    add_output(parser, "--checkpoint", help="resumable training checkpoint (persist: true)")
    add_output(parser, "--model", help="selected model file")
    add_output(parser, "--live-metrics", help="dvclive metrics.json (inside the dvclive dir)")
    add_output(parser, "--live-plots", help="dvclive plots/metrics dir (same dvclive dir)")
    add_output(parser, "--summary", help="flat metrics: selection, labelled best-on-test")
    return parser


def params(args) -> list[str]:
    """The params sections this run reads (dvc.yaml declares the same)."""
    face = ["detect_align", "enhance"] if args.enhanced else ["detect_align"]
    return ["base", "data", *face, "model", args.train_section]


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, params(args))
    train_fold(
        args.shards,
        args.fold,
        base=p["base"],
        data=p["data"],
        model_params=p["model"],
        train=p[args.train_section],
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
