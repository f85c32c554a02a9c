"""Evaluate a model file on a fold's test split: UAR/WAR with and without the snippet filter
(the metrics file), everything else measured (details JSON, per-clip predictions, features,
confusion PNG) and the dvc plots data (confusion records, per-class accuracy).

``--snippet-len`` / ``--snippet-stride`` evaluate the same model with another snippet width and
stride (paper Table 2: the filter acts at evaluation only, no re-training). ``--snippet-grid``
evaluates it with every L of ``ablation.snippet_len`` and S of ``ablation.snippet_stride`` in one
process (the ``snippets`` stage); ``--details`` is then a folder with one ``L<L>-S<S>.json`` each.

``--models`` instead of ``--model`` evaluates the model file of every run folder in a folder (the
noise benchmark: every model and seed on one test set, one process); ``--details`` is then a
folder (one details file per run) and the other outputs are not written. ``--record KEY=VALUE``
adds a field to each details file (numbers as numbers), e.g. the test set's noise level.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.engine.pipeline import (
    EvalOutputs,
    evaluate_fold,
    evaluate_runs,
    evaluate_snippet_grid,
)
from nrdfer.errors import UserError

PARAMS = ("base.device", "data", "evaluate")
GRID_PARAMS = ("ablation.snippet_len", "ablation.snippet_stride")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--shards", help="shard directory (with index.json)")
    parser.add_argument("--fold", required=True, help="fold name in the shard index")
    parser.add_argument("--split", default="test", choices=("test", "val"), help="split")
    add_input(parser, "--model", required=False, help="model file written by the train stage")
    add_input(parser, "--models", required=False, help="folder of run folders (instead of --model)")
    parser.add_argument(
        "--record",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field the details file records (e.g. the test set's noise level)",
    )
    add_input(parser, "--training", required=False, help="training summary to carry along")
    parser.add_argument("--snippet-len", type=int, help="evaluate with this L (Table 2)")
    parser.add_argument("--snippet-stride", type=int, help="evaluate with this S (Table 2)")
    parser.add_argument(
        "--snippet-grid",
        action="store_true",
        help="evaluate with every L, S of ablation.snippet_len x snippet_stride (Table 2)",
    )
    add_output(parser, "--details", help="everything measured, flat JSON")
    add_output(parser, "--metrics", required=False, help="UAR/WAR with and without the filter")
    add_output(parser, "--confusion", required=False, help="dir of confusion records (dvc plots)")
    add_output(parser, "--per-class", required=False, help="dir of per-class accuracy (plots)")
    add_output(parser, "--confusion-png", required=False, help="confusion matrices PNG")
    add_output(parser, "--predictions", required=False, help="per-clip predictions CSV")
    add_output(parser, "--features", required=False, help="features npz (t-SNE)")
    return parser


def params(args) -> tuple[str, ...]:
    """The params entries this run reads (``--snippet-grid`` adds the Table 2 grid)."""
    return PARAMS + GRID_PARAMS if args.snippet_grid else PARAMS


def _snippet_grid(args, p) -> None:
    """Every (L, S) of the Table 2 grid on one model: one details file each in ``--details``."""
    _only_details(args, "--snippet-grid", ("models", "snippet_len", "snippet_stride"))
    done = evaluate_snippet_grid(
        args.shards, args.fold, args.model, args.details,
        base=p["base"], data=p["data"], evaluate=p["evaluate"],
        snippet_lens=p["ablation"].snippet_len, snippet_strides=p["ablation"].snippet_stride,
        split=args.split, training=_path(args.training), record=_records(args.record) or None,
    )  # fmt: skip
    for (snippet_len, snippet_stride), m in done.items():
        print(
            f"fold {args.fold} L {snippet_len} S {snippet_stride}: "
            f"UAR {100 * m['uar']:.2f} / {100 * m['sf_uar']:.2f} (SF)  {m['clips']} clips"
        )


SINGLE_OUTPUTS = ("metrics", "confusion", "per_class", "confusion_png", "predictions", "features")
"""Outputs of a single evaluation, which the folder modes (--models, --snippet-grid) do not write."""


def _only_details(args, mode: str, also: Sequence[str]) -> None:
    """A UserError naming the first given option that ``mode`` (which writes only --details,
    a folder) does not take: the single-evaluation outputs and ``also``."""
    given = [o for o in (*SINGLE_OUTPUTS, *also) if getattr(args, o) is not None]
    if given:
        raise UserError(f"{mode} writes only --details; drop --{given[0].replace('_', '-')}")


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _records(items: Sequence[str]) -> dict[str, object]:
    """``KEY=VALUE`` strings as a dict; a value that reads as a number is one."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--record {item!r}: expected KEY=VALUE")
        try:
            out[key] = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if (args.model is None) == (args.models is None):
        raise UserError("give either --model (one model file) or --models (a folder of runs)")
    p = load(args, params(args))
    if args.snippet_grid:
        _snippet_grid(args, p)
        return
    record = _records(args.record)
    if args.models is not None:
        _only_details(args, "--models", ("training", "snippet_len", "snippet_stride"))
        done = evaluate_runs(
            args.shards, args.fold, args.models, args.details,
            base=p["base"], data=p["data"], evaluate=p["evaluate"], record=record,
        )  # fmt: skip
        for run_name, m in done.items():
            print(f"{run_name} fold {args.fold}: UAR {100 * m['uar']:.2f} / "
                  f"{100 * m['sf_uar']:.2f} (SF)  {m['clips']} clips")  # fmt: skip
        return
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
        record=record or None,
    )
    print(
        f"fold {args.fold} {args.split}: WAR {100 * m['war']:.2f} / {100 * m['sf_war']:.2f} (SF)  "
        f"UAR {100 * m['uar']:.2f} / {100 * m['sf_uar']:.2f} (SF)  {m['clips']} clips"
    )


if __name__ == "__main__":
    run(main)
