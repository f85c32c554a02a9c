"""Frames per second of face detection + alignment and of each enhancer, at 224² and 480p.

Writes benchmarks/results/preprocess_speed.json (or --out). CPU always; CUDA too when a GPU is
present (the torch backends: RetinaFace-ResNet-50, EnlightenGAN, Zero-DCE++). Network weights
are random (speed does not depend on them); the tiny RetinaFace uses its shipped model.

    python benchmarks/preprocess_speed.py [--frames 16] [--threads 0] [--out PATH]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch

from nrdfer.io import write_json
from nrdfer.preprocess.enhance import (
    ClassicalEnhancer,
    EnlightenGANEnhancer,
    EnlightenGANGenerator,
    ZeroDCEEnhancer,
    ZeroDCENet,
)
from nrdfer.preprocess.faces import TinyRetinaFace, _BatchedDetector
from nrdfer.preprocess.retinaface_r50 import RetinaFaceR50Net
from nrdfer.preprocess.track import faces_in_video

SIZES = {"224x224": (224, 224), "480p": (480, 854)}


class _R50Random(_BatchedDetector):
    """The ResNet-50 backend with random weights (for timing only)."""

    def __init__(self, device: str, batch_size: int) -> None:
        super().__init__(0.9, 0.4, batch_size, 0)
        self.device = torch.device(device)
        self.net = RetinaFaceR50Net().to(self.device).eval()

    @torch.inference_mode()
    def _forward(self, batch):
        x = torch.from_numpy(np.ascontiguousarray(batch[..., ::-1])).to(self.device)
        x = x.permute(0, 3, 1, 2).float() - 110.0  # (N, H, W, 3) -> (N, 3, H, W)
        return tuple(t.float().cpu().numpy() for t in self.net(x))


def frames_of(size: tuple[int, int], n: int) -> np.ndarray:
    """n frames of the astronaut photo resized to (h, w), shifted a little each frame."""
    import cv2

    h, w = size
    base = cv2.resize(skimage.data.astronaut(), (min(h, w), min(h, w)))
    out = np.zeros((n, h, w, 3), np.uint8)
    x0 = (w - base.shape[1]) // 2
    for t in range(n):
        out[t, :, x0 + t % 4 : x0 + t % 4 + base.shape[1] - 4] = base[:, :-4]
    return out


def fps(fn, frames: np.ndarray, sync=None) -> float:
    fn(frames[:2])  # warm-up
    if sync:
        sync()
    start = time.perf_counter()
    fn(frames)
    if sync:
        sync()
    return round(len(frames) / (time.perf_counter() - start), 2)


def run(device: str, n: int, batch: int) -> dict:
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    res: dict = {}
    torch.manual_seed(0)
    egan = EnlightenGANEnhancer(EnlightenGANGenerator().to(device).eval(), device, batch)
    zdce = ZeroDCEEnhancer(ZeroDCENet().to(device).eval(), device, batch)
    r50 = _R50Random(device, batch)
    for name, size in SIZES.items():
        frames = frames_of(size, n)
        row = {}
        if device == "cpu":
            tiny = TinyRetinaFace(batch_size=batch)
            row["detect_align_tiny"] = fps(lambda f, d=tiny: faces_in_video(f, d, 112), frames)
            row["enhance_classical"] = fps(ClassicalEnhancer(0.6, 2.0, 8).enhance, frames)
        row["detect_align_resnet50"] = fps(lambda f: faces_in_video(f, r50, 112), frames, sync)
        row["enhance_enlightengan"] = fps(egan.enhance, frames, sync)
        row["enhance_zerodce"] = fps(zdce.enhance, frames, sync)
        res[name] = row
        print(device, name, row, flush=True)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per measurement")
    parser.add_argument("--batch", type=int, default=8, help="frames per network call")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "preprocess_speed.json")
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "unit": "frames per second (higher is better); detect_align includes tracking + warping",
        "frames": args.frames,
        "batch": args.batch,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "cpu": run("cpu", args.frames, args.batch),
    }
    if torch.cuda.is_available():
        result["machine"]["gpu"] = torch.cuda.get_device_name(0)
        result["cuda"] = run("cuda", max(args.frames, 32), args.batch)
    write_json(args.out, result)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
