"""``nrdfer export --checkpoint CKPT --onnx out.onnx``: the model with its snippet-based filter
as ONNX with a dynamic batch axis, checked against PyTorch with onnxruntime on random input at
batch 1 and 8 (docs/predict.md).

Exit status 2 (and no file) when onnxruntime differs from PyTorch by more than the tolerance.
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="model file (model.pt)")
    parser.add_argument("--onnx", required=True, metavar="OUT", help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest accepted |onnxruntime - PyTorch| (default: 1e-4)",
    )
    parser.add_argument("--json", action="store_true", help="print the check as JSON")


def run(args: argparse.Namespace) -> int:
    from nrdfer.errors import UserError
    from nrdfer.io import check_writable
    from nrdfer.predict.export import export_onnx
    from nrdfer.predict.loading import load_model_for_inference

    if args.tolerance <= 0:
        raise UserError(f"--tolerance must be > 0, got {args.tolerance}")
    check_writable(args.onnx, "--onnx")  # before the export
    loaded = load_model_for_inference(args.checkpoint, "cpu")
    report = export_onnx(loaded, args.onnx, opset=args.opset, tolerance=args.tolerance)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        diffs = ", ".join(f"{k} {v:.3g}" for k, v in report.max_abs_diff.items())
        print(
            f"{report.path}: input {tuple(report.input_shape)}, outputs {', '.join(report.outputs)}; "
            f"onnxruntime vs PyTorch at batch {' and '.join(map(str, report.check_batches))}: "
            f"max abs difference {report.worst:.3g} "
            f"(tolerance {report.tolerance:g}; {diffs}); filter decisions identical"
        )
    return 0
