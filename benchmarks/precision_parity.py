"""Evaluation parity of the paper model: CUDA float32 and bf16 autocast against the CPU's float32.

Builds the paper-size NR-DFERNet (params.yaml with ``--preset``, default presets/paper.yaml;
random weights from seed 0), draws ``--clips`` random uint8 clips (seed 1) and runs them through
the evaluation code (``nrdfer.engine.evaluate.predict``) on the CPU in float32 (the reference)
and, when CUDA is present, on CUDA in float32 and in bf16 autocast (``evaluate.precision:
auto``); without CUDA, in bf16 autocast on the CPU. Per comparison with the reference: the
relative error of the logits before the snippet filter (||out - ref|| / ||ref||), the largest
difference of a class probability, the share of clips with the same predicted class (all of
them, and those whose top two reference logits are more than 0.1 apart, i.e. not decided by
rounding), and the share whose snippet filter fired alike. Writes ``--out`` (JSON).

    python benchmarks/precision_parity.py [--clips 32] [--preset presets/paper.yaml] [--out PATH]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch

from nrdfer.commands.preset import preset_overrides
from nrdfer.engine.evaluate import predict
from nrdfer.io import write_json
from nrdfer.models import build_model
from nrdfer.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def compare(out, ref) -> dict:
    """How far one run's predictions are from the reference run's."""

    def probs(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    top2 = np.sort(ref.logits_seq, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.1
    same = out.logits_seq.argmax(1) == ref.logits_seq.argmax(1)
    diff = np.linalg.norm(out.logits_seq - ref.logits_seq) / np.linalg.norm(ref.logits_seq)
    return {
        "logits_rel_error": float(diff),
        "max_prob_diff": float(np.abs(probs(out.logits_seq) - probs(ref.logits_seq)).max()),
        "same_prediction": float(same.mean()),
        "clear_clips": int(clear.sum()),
        "same_prediction_clear": float(same[clear].mean()) if clear.any() else None,
        "same_filter_decision": float((out.filter_fired == ref.filter_fired).mean()),
        "finite": bool(np.isfinite(out.logits).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--preset", default=str(ROOT / "presets/paper.yaml"),
                        help='preset applied to params.yaml ("" = params.yaml as it is)')  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/precision_parity.json"))
    args = parser.parse_args()
    sets = preset_overrides(args.preset, "model") if args.preset else []
    model_p = load_params(ROOT / "params.yaml", ["model"], sets)["model"]
    torch.manual_seed(0)
    model = build_model(model_p)
    gen = torch.Generator().manual_seed(1)
    shape = (args.clips, model_p.frames, 3, model_p.image_size, model_p.image_size)
    clips = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    labels = torch.zeros(args.clips, dtype=torch.int64)
    batches = [
        (clips[i : i + args.batch], labels[i : i + args.batch], list(map(str, range(i, j))))
        for i in range(0, args.clips, args.batch)
        for j in [min(i + args.batch, args.clips)]
    ]

    def run(device: str, precision: str):
        return predict(model.to(device), batches, torch.device(device), precision)  # type: ignore[arg-type]

    ref = run("cpu", "fp32")
    runs = {}
    if torch.cuda.is_available():
        for precision in ("fp32", "bf16"):
            runs[f"cuda_{precision}"] = compare(run("cuda", precision), ref)
    else:
        runs["cpu_bf16"] = compare(run("cpu", "bf16"), ref)
    for name, r in runs.items():
        print(
            f"{name} vs cpu_fp32: logits rel. error {r['logits_rel_error']:.2e}, max prob diff "
            f"{r['max_prob_diff']:.2e}, same class {r['same_prediction']:.3f} "
            f"({r['same_prediction_clear']} of the {r['clear_clips']} clear clips), "
            f"same filter decision {r['same_filter_decision']:.3f}"
        )
    write_json(
        args.out,
        {
            "model": f"{Path(args.preset).name if args.preset else 'params.yaml'}: "
            f"{model_p.image_size} px, widths {list(model_p.widths)}, M {model_p.M}, "
            f"N {model_p.N}, random weights",
            "clips": args.clips,
            "reference": "cpu_fp32",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
