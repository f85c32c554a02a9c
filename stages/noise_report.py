"""The noise benchmark's report (docs/noise.md): UAR per model per N1/N2 level, mean ± std over
training seeds, with the filter's firing rate (Markdown + CSV), the findings computed from
intervals over the seeds (JSON, and in the Markdown), UAR against noise level with error bars
(PNG) and as ``dvc plots`` series. Reads result files only."""

from __future__ import annotations

from collections.abc import Sequence

from _common import add_input, add_output, load, run, stage_parser

from nrdfer.report.noise import build_noise_report

PARAMS = ("noise.levels", "noise.seeds")


def build_parser():
    parser = stage_parser(__doc__)
    add_input(parser, "--evaluations", help="folder of the evaluate stages' details files")
    add_input(parser, "--test-sets", help="folder of the test sets (their synth_meta.json)")
    add_output(parser, "--table", help="Markdown: tables and findings")
    add_output(parser, "--csv", help="CSV: one row per model, kind and level")
    add_output(parser, "--claims", help="JSON: the findings, one per comparison")
    add_output(parser, "--figure", help="PNG: UAR against noise level, N1 and N2 side by side")
    add_output(parser, "--n1-plots", help="folder of per-model UAR series over N1 levels")
    add_output(parser, "--n2-plots", help="folder of per-model UAR series over N2 levels")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    noise = load(args, PARAMS)["noise"]
    findings = build_noise_report(
        args.evaluations, args.test_sets, noise.levels, noise.seeds,
        table=args.table, csv_path=args.csv, claims=args.claims, figure=args.figure,
        plots={"n1": args.n1_plots, "n2": args.n2_plots},
    )  # fmt: skip
    print(f"noise report: {args.table}")
    for finding in findings:
        print(f"  {finding['statement']}")


if __name__ == "__main__":
    run(main)
