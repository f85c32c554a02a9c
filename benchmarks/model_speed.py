"""Throughput of NR-DFERNet: forward and forward+backward clips/s at batch 1 and 32.

Measures the paper model (params.yaml's ``model`` section with ``--preset``, default
``presets/paper.yaml``, applied, then ``-S`` overrides) in float32 on
the CPU and, when CUDA is available, on the GPU in float32 and under bf16 autocast. Forward is
timed in eval mode under ``torch.inference_mode`` (snippets, filter and attention rollout
included); forward+backward in train mode with cross-entropy on ``logits_seq`` (what training
runs). Results go to a JSON file (default ``benchmarks/results/model_speed.json``).

    python benchmarks/model_speed.py --iters 2 --warmup 1
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nrdfer.commands.preset import preset_overrides
from nrdfer.io import write_json
from nrdfer.models import build_model
from nrdfer.params import load_section, to_dict

RESULTS = Path(__file__).resolve().parent / "results" / "model_speed.json"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_mode(model, clips, labels, mode: str, autocast, iters: int, warmup: int) -> float:
    """Seconds per iteration (mean over ``iters`` after ``warmup``)."""
    device = clips.device

    def step() -> None:
        if mode == "forward":
            model.eval()
            with torch.inference_mode(), autocast():
                model(clips)
        else:
            model.train()
            model.zero_grad(set_to_none=True)
            with autocast():
                out = model(clips)
            F.cross_entropy(out.logits_seq.float(), labels).backward()

    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    sync(device)
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--preset", default="presets/paper.yaml", help='"": params.yaml as is')
    parser.add_argument("-S", dest="overrides", action="append", default=[])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    sets = preset_overrides(args.preset, "model") if args.preset else []
    params = load_section(args.params, "model", sets + args.overrides)
    settings = [("cpu", "float32")]
    if torch.cuda.is_available():
        settings += [("cuda", "float32"), ("cuda", "bf16-autocast")]
    rows = []
    for device_name, precision in settings:
        device = torch.device(device_name)
        torch.manual_seed(0)
        model = build_model(params).to(device)

        def autocast(device=device, precision=precision):
            if precision == "bf16-autocast":
                return torch.autocast(device.type, dtype=torch.bfloat16)
            return contextlib.nullcontext()

        for batch in args.batches:
            shape = (batch, params.frames, 3, params.image_size, params.image_size)
            clips = torch.rand(shape, device=device)
            labels = torch.randint(params.num_classes, (batch,), device=device)
            for mode in ("forward", "forward+backward"):
                sec = time_mode(model, clips, labels, mode, autocast, args.iters, args.warmup)
                row = {
                    "device": device_name,
                    "precision": precision,
                    "batch": batch,
                    "mode": mode,
                    "sec_per_iter": round(sec, 4),
                    "clips_per_s": round(batch / sec, 3),
                }
                print(row, flush=True)
                rows.append(row)
    write_json(
        args.out,
        {
            "model": to_dict(params),
            "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "iters": args.iters,
            "warmup": args.warmup,
            "results": rows,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
