"""Train one model of the noise benchmark on the training clips (folds 2-5, the same in every
level's set) and evaluate it on the test clips of every level (docs/noise.md).

Like the grid stages, a run has no per-epoch test evaluation and keeps the last epoch; its
folder holds the resumable checkpoint, the model file, the training summary and one evaluation
per level (``<run>/<level>/evaluation.json``: UAR/WAR with and without the snippet filter, and
how often the filter fired).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.data.synth.levels import CLEAN, TEST_FOLD, level_sets
from nrdfer.engine.pipeline import RunFolder, evaluate_fold, train_fold

FIXED = {"eval_every_epoch": False}
"""Training settings a benchmark run fixes itself (so they are not read from params.yaml)."""

BUILDS_MODEL = True
"""Of the ``model`` section this stage reads only the keys of the model it builds."""

PARAMS = ("base", "data", "detect_align", "evaluate", "model", "train", "noise.levels")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="folder of the per-level shard directories")
    add_output(parser, "--run", help="run folder (checkpoint, model, one evaluation per level)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    folder = RunFolder(Path(args.run))
    fold = str(TEST_FOLD)
    train_fold(
        Path(args.shards) / CLEAN,
        fold,
        base=p["base"],
        data=p["data"],
        model_params=p["model"],
        train=dataclasses.replace(p["train"], **FIXED),
        outputs=folder.train_outputs(),
        detect_align=p["detect_align"],
    )
    for level in level_sets(p["noise"].levels):
        m = evaluate_fold(
            Path(args.shards) / level.name,
            fold,
            folder.model,
            base=p["base"],
            data=p["data"],
            evaluate=p["evaluate"],
            outputs=dataclasses.replace(
                RunFolder(folder.root / level.name).eval_outputs(), features=None
            ),
        )
        print(
            f"noise {' '.join(args.overrides)} {level.name}: UAR {100 * m['uar']:.2f} / "
            f"{100 * m['sf_uar']:.2f} (SF), SF fired on {100 * m['sf_fired_fraction']:.0f} %"
        )


if __name__ == "__main__":
    run(main)
