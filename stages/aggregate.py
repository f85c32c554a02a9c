"""Average per-fold metrics into the 5-fold figure (mean and std), the paper's DFEW protocol.

The labelled best-epoch-on-test numbers from the training summaries are averaged too, under
keys that say so.
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, run, stage_parser

from nrdfer.engine.metrics import write_fold_metrics
from nrdfer.report.aggregate import read_metrics, summarise_folds

PARAMS: tuple[str, ...] = ()


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--metrics", nargs="+", help="per-fold test metrics files")
    add_input(parser, "--summaries", nargs="*", default=[], required=False,
              help="per-fold training summaries (labelled best-on-test numbers)")  # fmt: skip
    add_output(parser, "--out", help="5-fold summary metrics")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    summary = summarise_folds(read_metrics(args.metrics), read_metrics(args.summaries))
    write_fold_metrics(args.out, summary)
    print(
        f"{summary['folds']} folds: WAR {100 * summary['sf_war']:.2f} ± "
        f"{100 * summary['sf_war_std']:.2f}  UAR {100 * summary['sf_uar']:.2f} ± "
        f"{100 * summary['sf_uar_std']:.2f} (with SF); without SF WAR "
        f"{100 * summary['war']:.2f} UAR {100 * summary['uar']:.2f}"
    )


if __name__ == "__main__":
    run(main)
