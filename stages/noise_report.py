"""The noise benchmark's table and figure: UAR/WAR per model per N1/N2 level with the filter's
firing rate (Markdown + CSV), UAR against noise level as a PNG and as ``dvc plots`` series."""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.report.noise import build_noise_report

PARAMS = ("noise.levels",)


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--runs", help="folder of the noise_run run folders")
    add_input(parser, "--measured", help="measured noise per level (noise_synth --summary)")
    add_output(parser, "--table", help="Markdown table")
    add_output(parser, "--csv", help="CSV: one row per model, kind and level")
    add_output(parser, "--figure", help="PNG: UAR against noise level, N1 and N2 side by side")
    add_output(parser, "--n1-plots", help="folder of per-model UAR series over N1 levels")
    add_output(parser, "--n2-plots", help="folder of per-model UAR series over N2 levels")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    p = load(args, PARAMS)
    rows = build_noise_report(
        args.runs, args.measured, p["noise"].levels,
        table=args.table, csv_path=args.csv, figure=args.figure,
        plots={"n1": args.n1_plots, "n2": args.n2_plots},
    )  # fmt: skip
    print(f"noise_report: {len(rows)} rows written to {args.table}")


if __name__ == "__main__":
    run(main)
