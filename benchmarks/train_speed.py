"""Training throughput (clips/s) and peak memory of the paper model, CPU and (when present) CUDA.

One training step = uint8 batch -> device -> float/255 -> forward under autocast ->
cross-entropy on ``logits_seq`` -> backward -> SGD step: the step of ``nrdfer.engine.train``,
built from the same engine pieces (prepare_model, autocast, grad scaler, make_optimizer).

- CPU: batch ``--cpu-batch`` (8), fp32.
- CUDA (only when available): batch ``--gpu-batch`` (32), precision ``auto`` (bf16 on H100),
  channels-last. ``--compile`` adds torch.compile.

Data: random uint8 clips generated on the device (the model alone); with ``--shards DIR`` the
batches come from the real training loader, built as the train stage builds it
(``nrdfer.data.shards.train_loader`` with ``--workers`` persistent processes, the augmentation's
warp on the training device as ``data.augment_on`` says), i.e. data loading included.

Model: the paper model, i.e. params.yaml with ``--preset`` (default ``presets/paper.yaml``: T = 16,
112 x 112, widths 64-128-256, M 2, N 4) applied; ``--preset ""`` measures params.yaml as it is
(the demo model). Writes ``benchmarks/results/train_speed.json`` (or ``--out``).

    python benchmarks/train_speed.py [--steps 5] [--max-seconds S] [--shards data/shards/dfew]
        [--compile]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nrdfer.commands.preset import preset_overrides
from nrdfer.engine.precision import (
    autocast,
    make_grad_scaler,
    prepare_model,
    resolve_precision,
    to_float_clips,
)
from nrdfer.engine.train import make_optimizer
from nrdfer.models import build_model
from nrdfer.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def batches(args, model_p, data_p, device, batch: int):
    """Endless training batches: the real loader (``--shards``) or random uint8 clips."""
    if args.shards:
        import dataclasses

        from nrdfer.data.shards import train_loader

        data = dataclasses.replace(data_p, batch_size=batch, num_workers=args.workers)
        # one loader over all epochs, as nrdfer.engine.pipeline.train_fold builds it
        loader = train_loader(args.shards, args.fold, data, seed=0, device=device)
        epoch = 0
        while True:
            loader.set_epoch(epoch)
            empty = True
            for item in loader:
                empty = False
                yield item
            if empty:
                raise SystemExit(f"{args.shards}: fold {args.fold} has no training clips")
            epoch += 1
    shape = (batch, model_p.frames, 3, model_p.image_size, model_p.image_size)
    gen = torch.Generator(device=device).manual_seed(0)
    while True:
        clips = torch.randint(0, 256, shape, dtype=torch.uint8, device=device, generator=gen)
        labels = torch.randint(0, model_p.num_classes, (batch,), device=device, generator=gen)
        yield clips, labels, []


def measure(args, device: torch.device, batch: int, precision_spec: str) -> dict:
    sets = preset_overrides(args.preset) if args.preset else []
    p = load_params(ROOT / "params.yaml", ["model", "data", "train"], sets)
    model_p, data_p, train_p = p["model"], p["data"], p["train"]
    torch.manual_seed(0)
    precision = resolve_precision(precision_spec, device)
    model = prepare_model(build_model(model_p), device, channels_last=True)
    if args.compile:
        model = torch.compile(model)
    model.train()
    optimizer = make_optimizer(model, train_p)
    scaler = make_grad_scaler(device, precision)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    source = batches(args, model_p, data_p, device, batch)

    def step():
        clips, labels, _ = next(source)
        x = to_float_clips(clips, device)
        y = labels.to(device)
        with autocast(device, precision):
            out = model(x)
        loss = F.cross_entropy(out.logits_seq.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    steps = 0
    while steps < args.steps and not (
        args.max_seconds and steps and time.perf_counter() - t0 > args.max_seconds
    ):
        loss = step()
        steps += 1
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": f"{Path(args.preset).name if args.preset else 'params.yaml'}: "
        f"widths {list(model_p.widths)}, M {model_p.M}, N {model_p.N}",
        "batch": batch,
        "precision": precision,
        "frames": model_p.frames,
        "image_size": model_p.image_size,
        "steps": steps,
        "seconds_per_step": seconds / steps,
        "clips_per_s": batch * steps / seconds,
        "data": "train_loader" if args.shards else "synthetic",
        "compile": args.compile,
    }
    if args.shards:
        result["loader_workers"] = args.workers
        result["augment_on"] = data_p.augment_on
    if device.type == "cuda":
        result["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        result["threads"] = torch.get_num_threads()
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=str(ROOT / "presets/paper.yaml"),
                        help='preset applied to params.yaml ("" = params.yaml as it is)')  # fmt: skip
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=0,
                        help="stop timing after the step that passes this (0: all --steps)")  # fmt: skip
    parser.add_argument("--cpu-batch", type=int, default=8)
    parser.add_argument("--gpu-batch", type=int, default=32)
    parser.add_argument("--shards", help="shard dir: batches from the real train loader")
    parser.add_argument("--fold", default="1")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train_speed.json"))
    args = parser.parse_args()
    results = {"torch": torch.__version__, "python": platform.python_version(), "runs": []}
    if not args.skip_cpu:
        results["runs"].append(measure(args, torch.device("cpu"), args.cpu_batch, "fp32"))
        print(json.dumps(results["runs"][-1]))
    if torch.cuda.is_available():
        results["runs"].append(measure(args, torch.device("cuda"), args.gpu_batch, "auto"))
        print(json.dumps(results["runs"][-1]))
    else:
        results["cuda"] = "not available on this machine: GPU part not run"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
