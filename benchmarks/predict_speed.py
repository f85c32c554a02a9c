"""End-to-end seconds of ``nrdfer predict`` per minute of 720p video: decode / detect+align / model.

Generates a 1280x720 H.264 test video (the skimage astronaut's face moving over a background),
writes a model file with the paper-size NR-DFERNet (random weights: speed does not depend on
them) and the ``data`` / ``detect_align`` / ``enhance`` settings of params.yaml, and runs
``predict_video`` on it after a warm-up call. The measured seconds are scaled to one minute of
video. Writes benchmarks/results/predict_speed.json (or --out).

CPU always; CUDA too when a GPU is present. The default face detector (``tiny``) runs with
onnxruntime on the CPU on either device; ``--backends tiny,resnet50`` adds the paper's
RetinaFace-ResNet-50 (random weights in the official file layout), which runs on the device.

    python benchmarks/predict_speed.py [--seconds 10] [--window 5] [--threads 0]
        [--backends tiny] [--params params.yaml] [--out PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from nrdfer.checkpoint import save_checkpoint
from nrdfer.commands.preset import preset_overrides
from nrdfer.io import write_json
from nrdfer.labels import CLASSES
from nrdfer.model_file import model_file_state, preprocess_record
from nrdfer.models import build_model
from nrdfer.params import load_params, to_dict
from nrdfer.predict.loading import load_model_for_inference
from nrdfer.predict.predictor import Predictor, predict_video

WIDTH, HEIGHT, FPS = 1280, 720, 25
MINUTE = 60.0


def write_720p(path: Path, seconds: float) -> Path:
    """A 1280x720 H.264 video: the astronaut's head (~300 px) drifting over a blurred backdrop."""
    return write_face_video(path, seconds, WIDTH, HEIGHT)


def write_face_video(
    path: Path, seconds: float, width: int, height: int, options: dict | None = None
) -> Path:
    """An H.264 video at 25 fps: the astronaut's head (300/720 of the height) drifting over a
    blurred backdrop; ``options``: the encoder's (default crf 23, preset veryfast)."""
    import av

    kx, k = width / WIDTH, height / HEIGHT  # the 720p layout, scaled
    photo = skimage.data.astronaut()  # (512, 512, 3) RGB
    backdrop = cv2.GaussianBlur(cv2.resize(photo, (width, height)), (0, 0), 25 * k)
    hw, hh = round(240 * k), round(300 * k)
    head = cv2.resize(photo[0:260, 120:330], (hw, hh))  # (hh, hw, 3)
    n = int(round(seconds * FPS))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options or {"crf": "23", "preset": "veryfast"}
        for t in range(n):
            frame = backdrop.copy()
            x = int(kx * (500 + 300 * np.sin(2 * np.pi * t / (8 * FPS))))
            y = int(k * (200 + 80 * np.sin(2 * np.pi * t / (5 * FPS))))
            frame[y : y + hh, x : x + hw] = head
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_model(path: Path, params: dict, backend: str, r50_weights: str) -> Path:
    """A model file with the paper-size model and params.yaml's input settings."""
    model = build_model(params["model"])
    detect = dataclasses.replace(
        params["detect_align"], backend=backend, resnet50_weights=r50_weights
    )
    save_checkpoint(
        path,
        model_file_state(
            model.state_dict(),
            model_params=to_dict(params["model"]),
            classes=CLASSES,
            preprocess=preprocess_record(params["data"], detect, params["enhance"]),
            info={"benchmark": "random weights"},
        ),
    )
    return path


def random_r50_weights(path: Path) -> str:
    """Random RetinaFace-ResNet-50 weights in biubug6's layout (``module.`` prefix)."""
    from nrdfer.preprocess.retinaface_r50 import RetinaFaceR50Net

    state = {f"module.{k}": v for k, v in RetinaFaceR50Net().state_dict().items()}
    torch.save(state, path)
    return str(path)


def measure(
    video: Path, warmup: Path, model_path: Path, device: str, window: float, every: int
) -> dict:
    start = time.perf_counter()
    predictor = Predictor(load_model_for_inference(model_path, device), detect_every=every)
    predict_video(warmup, predictor, window=window)  # sessions, kernels, caches
    setup = time.perf_counter() - start
    start = time.perf_counter()
    result = predict_video(video, predictor, window=window)
    total = time.perf_counter() - start
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    # Decoding and face work grow with the video's length; the model runs once for the whole
    # video plus once per timeline window, so a minute needs 1 + ceil(60 / window) clips.
    clips = 1 + len(result.windows)
    clips_per_minute = 1 + (math.ceil(MINUTE / window) if window > 0 else 0)
    scale = MINUTE / result.duration
    per_minute = {
        "decode": result.timings["decode"] * scale,
        "detect_align": result.timings["detect_align"] * scale,
        "model": result.timings["model"] / clips * clips_per_minute,
    }
    per_minute["total"] = sum(per_minute.values())
    return {
        "device": device,
        "detect_every": every,
        "setup_seconds": setup,
        "video_seconds": result.duration,
        "frames": result.frames,
        "detected_frames": result.detected_frames,
        "clips": clips,
        "seconds": {**result.timings, "total": total},
        "model_seconds_per_clip": result.timings["model"] / clips,
        "clips_per_minute": clips_per_minute,
        "seconds_per_minute": per_minute,
        "realtime_factor": MINUTE / per_minute["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test video")
    parser.add_argument("--window", type=float, default=5.0, help="timeline window (s)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--backends", default="tiny", help="comma list: tiny,resnet50")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument(
        "--detect-every", type=int, nargs="+", default=[1, 5],
        help="nrdfer predict --detect-every values measured in one run (default: 1 5)",
    )  # fmt: skip
    parser.add_argument(
        "--preset", default="presets/paper.yaml",
        help='its model and data sections and face crop size applied ("": params.yaml as is)',
    )  # fmt: skip
    parser.add_argument("--out", default="benchmarks/results/predict_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = []
    if args.preset:  # the paper's model and input, params.yaml's (offline) face tools
        sets = preset_overrides(args.preset, "model") + preset_overrides(args.preset, "data")
        sets += [s for s in preset_overrides(args.preset) if s.startswith("detect_align.output_")]
    params = load_params(args.params, ["model", "data", "detect_align", "enhance"], sets)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = write_720p(root / "bench_720p.mp4", args.seconds)
        warmup = write_720p(root / "warmup.mp4", 1.0)
        for backend in args.backends.split(","):
            weights = random_r50_weights(root / "r50.pth") if backend == "resnet50" else ""
            model_path = write_model(root / f"{backend}.pt", params, backend, weights)
            for device in devices:
                if backend == "resnet50" and device == "cpu":
                    continue  # ~0.2 frames/s at 720p on 2 cores: not a setting anyone would use
                for every in args.detect_every:  # in one run: every frame vs sparse detection
                    run = measure(video, warmup, model_path, device, args.window, every)
                    run["backend"] = backend
                    runs.append(run)
                    per_min = run["seconds_per_minute"]
                    print(
                        f"{device:5s} {backend:9s} detect every {every}: per minute of 720p: "
                        f"decode {per_min['decode']:.1f} s, detect+align "
                        f"{per_min['detect_align']:.1f} s, model {per_min['model']:.1f} s, total "
                        f"{per_min['total']:.1f} s (x{run['realtime_factor']:.2f} real time)"
                    )
    write_json(
        args.out,
        {
            "video": {
                "width": WIDTH,
                "height": HEIGHT,
                "fps": FPS,
                "seconds": args.seconds,
                "codec": "h264 (libx264, crf 23)",
            },
            "window": args.window,
            "model": f"{params['model'].name} ({args.preset or args.params}: "
            f"{params['model'].image_size} px, M {params['model'].M}, N {params['model'].N}), "
            "random weights",
            "input": {"U": params["data"].U, "V": params["data"].V, "size": params["data"].size},
            "detect_align": {
                "max_side": params["detect_align"].max_side,
                "batch_size": params["detect_align"].batch_size,
            },
            "enhance": params["enhance"].method,
            "host": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            },
            "runs": runs,
        },
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
