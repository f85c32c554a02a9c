"""Size and cost of the Table 4-5 baselines next to the paper's FLOPs column, plus CPU speed.

For every registered baseline (and NR-DFERNet for reference) at the ``model`` section's sizes
(16 x 112 x 112 at the paper's defaults): trainable parameters, true GMACs and GMACs in the
paper's thop convention of one clip (:func:`nrdfer.models.flops.model_cost`, meta device), the
paper's figure and the relative difference; with ``--speed``, eval-mode forward clips/s at
batch 1 on the CPU in float32 (``--threads`` intra-op threads). Results go to a JSON file
(default ``benchmarks/results/baselines_cost.json``).

    python benchmarks/baselines_cost.py [--speed --iters 2 --threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from nrdfer.commands.preset import preset_overrides
from nrdfer.io import write_json
from nrdfer.models import build_model
from nrdfer.models.flops import model_cost
from nrdfer.params import load_section

PAPER_GFLOPS = {  # paper Tables 4-5, FLOPs (G); NR-DFERNet: Table 3 at (M, N) = (2, 4)
    "c3d": 38.57,
    "r2plus1d_18": 42.36,
    "resnet3d_18": 8.32,
    "i3d_rgb": 6.99,
    "vgg11_lstm": 31.65,
    "resnet18_lstm": 7.78,
    "resnet18_gru": 7.78,
    "resnet3d_18_center": 8.32,
    "ec_stfl": 8.32,
    "former_dfer": 9.11,
    "nrdfernet": 6.33,
}


def forward_speed(params, iters: int) -> float:
    """Eval-mode forward clips/s at batch 1 (one warm-up call)."""
    model = build_model(params).eval()
    clip = torch.rand(1, params.frames, 3, params.image_size, params.image_size)
    with torch.inference_mode():
        model(clip)
        start = time.perf_counter()
        for _ in range(iters):
            model(clip)
    return iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (model section)")
    parser.add_argument(
        "--preset",
        default="presets/paper.yaml",
        help="preset applied on top (default: the paper's sizes; '' = params.yaml as is)",
    )
    parser.add_argument("--out", default="benchmarks/results/baselines_cost.json")
    parser.add_argument("--speed", action="store_true", help="also time CPU forward passes")
    parser.add_argument("--iters", type=int, default=2, help="timed forward calls per model")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = preset_overrides(args.preset, "model") if args.preset else []
    base = load_section(Path(args.params), "model", sets)
    rows = []
    for name, paper in PAPER_GFLOPS.items():
        p = dataclasses.replace(base, name=name)
        cost = model_cost(p)
        row = {
            "model": name,
            "params_m": round(cost.params / 1e6, 3),
            "gmacs_true": round(cost.macs / 1e9, 3),
            "gmacs_paper_convention": round(cost.macs_paper / 1e9, 3),
            "paper_gflops": paper,
            "rel_diff": round(cost.macs_paper / 1e9 / paper - 1, 4),
        }
        if args.speed:
            row["cpu_fwd_clips_per_s"] = round(forward_speed(p, args.iters), 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_json(
        Path(args.out),
        {
            "clip": [base.frames, 3, base.image_size, base.image_size],
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "threads": args.threads,
                "torch": torch.__version__,
            },
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
