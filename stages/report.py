"""The paper's Tables 1-5 and the FERV39k and MAFW tables (Markdown + CSV, published numbers
beside ours), Figures 4-6 plus confusion matrices (PNG) from the pipeline's result files only
(metrics, features, curves)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.report.build import ReportInputs, write_report

PARAMS = ("base.seed", "model", "report")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--summary", help="5-fold summary of NR-DFERNet (aggregate stage)")
    add_input(parser, "--fold-details", help="dir of the per-fold evaluations (evaluate)")
    add_input(parser, "--components", help="dir of Table 1 runs")
    add_input(parser, "--snippets", help="dir of Table 2 evaluations")
    add_input(parser, "--layers", help="dir of Table 3 runs")
    add_input(parser, "--compare", help="dir of baseline runs on DFEW")
    add_input(parser, "--compare-afew", help="dir of baseline runs on AFEW (Table 4)")
    add_input(parser, "--oversample", help="dir of NR-DFERNet* runs")
    add_input(parser, "--afew", required=False, help="AFEW val metrics of NR-DFERNet")
    add_input(parser, "--fig4-curves", help="dvclive plots dir of the Fig. 4 fold")
    add_input(parser, "--ferv39k", required=False, help="FERV39k evaluation details")
    add_input(parser, "--mafw", required=False, help="MAFW fold summary (aggregate stage)")
    add_output(parser, "--tables", help="directory for the tables (Markdown and CSV)")
    add_output(parser, "--figures", help="directory for the PNG figures")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    inputs = ReportInputs(
        summary=Path(args.summary),
        fold_details=Path(args.fold_details),
        components=Path(args.components),
        snippets=Path(args.snippets),
        layers=Path(args.layers),
        compare=Path(args.compare),
        compare_afew=Path(args.compare_afew),
        oversample=Path(args.oversample),
        afew=Path(args.afew) if args.afew else None,
        fig4_curves=Path(args.fig4_curves),
        ferv39k=Path(args.ferv39k) if args.ferv39k else None,
        mafw=Path(args.mafw) if args.mafw else None,
    )
    written = write_report(
        inputs,
        Path(args.tables),
        Path(args.figures),
        base=p["base"],
        model=p["model"],
        report=p["report"],
    )
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    run(main)
