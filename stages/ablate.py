"""Train one configuration of a grid on one fold and evaluate it once on that fold's test split
(paper Tables 1, 3 and 5 and the baselines of Tables 4-5).

dvc.yaml's matrix stages pass the grid values with ``--set section.KEY=VALUE``; every result
file carries the run's settings, so the report groups runs by content, not by file name. A grid
run has no per-epoch test evaluation (``eval_every_epoch`` is off whatever params.yaml says:
no curves, the final model is evaluated once). Everything lands in the ``--run`` folder:
resumable checkpoint, model file, training summary, evaluation details, features.

``--same-as-checkpoint`` / ``--same-as-model`` name another training of the fold (the main
model's): when it was trained with this run's settings and finished, its weights are taken
instead of training again (``nrdfer.engine.pipeline.take_finished_training``), so Table 1's full
model and Table 3's cell of params.yaml's M and N cost an evaluation, not a training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import RunFolder, evaluate_fold, take_finished_training, train_fold

FIXED = {"eval_every_epoch": False}
"""Training settings a grid run fixes itself (so they are not read from params.yaml)."""


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
    add_input(parser, "--init", required=False, help="model file to fine-tune from (AFEW)")
    add_input(
        parser,
        "--same-as-checkpoint",
        required=False,
        help="checkpoint of another training of this fold whose weights to take if it is this one",
    )
    add_input(parser, "--same-as-model", required=False, help="that training's model file")
    add_output(parser, "--run", help="run folder (checkpoint, model, summaries, features)")
    return parser


def params(args) -> list[str]:
    """The params sections this run reads (dvc.yaml declares the same, less the keys fixed by
    ``--set`` and :data:`FIXED`)."""
    face = ["detect_align", "enhance"] if args.enhanced else ["detect_align"]
    return ["base", "data", *face, "evaluate", "model", args.train_section]


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, params(args))
    folder = RunFolder(Path(args.run))
    run = dict(
        base=p["base"],
        data=p["data"],
        model_params=p["model"],
        train=dataclasses.replace(p[args.train_section], **FIXED),
        outputs=folder.train_outputs(),
    )
    why_not = "no other training given"
    if args.same_as_checkpoint and args.same_as_model and args.init is None:
        why_not = take_finished_training(
            args.same_as_checkpoint, args.same_as_model, args.shards, args.fold, **run
        )
    if why_not is None:
        print(f"fold {args.fold}: the weights of {args.same_as_model} (same settings, finished)")
    else:
        if args.same_as_checkpoint:
            print(f"fold {args.fold}: training ({why_not})")
        train_fold(
            args.shards,
            args.fold,
            **run,
            init=args.init,
            detect_align=p["detect_align"],
            enhance=p.get("enhance"),
        )
    m = evaluate_fold(
        args.shards,
        args.fold,
        folder.model,
        base=p["base"],
        data=p["data"],
        evaluate=p["evaluate"],
        outputs=folder.eval_outputs(),
    )
    print(
        f"{' '.join(args.overrides)} fold {args.fold}: WAR {100 * m['war']:.2f} / "
        f"{100 * m['sf_war']:.2f} (SF)  UAR {100 * m['uar']:.2f} / {100 * m['sf_uar']:.2f} (SF)"
    )


if __name__ == "__main__":
    run(main)
