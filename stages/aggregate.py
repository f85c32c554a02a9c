"""Average the main model's fold evaluations into the 5-fold figures (mean and std), the
paper's DFEW protocol, over the folds of ``folds.main`` (DFEW) or ``folds.mafw`` (MAFW:
``--folds-key mafw``).

Writes the headline (UAR/WAR with and without the snippet filter, ± std: the metrics file) and
the full summary (per class, the filter's firing rate, the labelled best-on-test numbers).
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.report.aggregate import headline_summary, main_fold_details, summarise_folds
from nrdfer.results import write_flat


def build_parser():
    parser = stage_parser(__doc__)
    parser.add_argument(
        "--folds-key",
        default="main",
        choices=("main", "mafw"),
        help="the folds section's list of folds to average: main (DFEW) or mafw",
    )
    add_input(parser, "--details", help="dir of the per-fold evaluation details")
    add_output(parser, "--metrics", help="5-fold UAR/WAR ± std (dvc metrics)")
    add_output(parser, "--summary", help="5-fold summary: per class, filter, best-on-test")
    return parser


def params(args) -> list[str]:
    """The params this run reads (dvc.yaml declares the same)."""
    return [f"folds.{args.folds_key}"]


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    folds = getattr(load(args, params(args))["folds"], args.folds_key)
    details = main_fold_details(args.details, folds, f"folds.{args.folds_key}")
    summary = summarise_folds(details)
    write_flat(args.summary, summary)
    write_flat(args.metrics, headline_summary(summary))
    print(
        f"{summary['folds']} folds: WAR {100 * summary['sf_war']:.2f} ± "
        f"{100 * summary['sf_war_std']:.2f}  UAR {100 * summary['sf_uar']:.2f} ± "
        f"{100 * summary['sf_uar_std']:.2f} (with SF); without SF WAR "
        f"{100 * summary['war']:.2f} UAR {100 * summary['uar']:.2f}"
    )


if __name__ == "__main__":
    run(main)
