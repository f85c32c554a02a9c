"""The detect_align stage's frames per second on one core, detecting every frame against every
``detect_every``-th frame with optical-flow tracking between, and the landmark error that costs.

Videos are generated with moving faces (the demo renderer, ``head_motion`` 1) at the demo's
AFEW size (320 x 240) and real AFEW's (720 x 576), written as MJPG .avi, then run through what
the stage runs per clip (decode, detect + track + align, JPEG writing) with one thread. The
landmark error is measured on the frames not detected directly, against detecting every frame,
in the 112 x 112 aligned crop. Writes benchmarks/results/detect_align_speed.json (or --out).

    python benchmarks/detect_align_speed.py [--clips 3] [--frames 60] [--every 1 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from nrdfer.data.synth.face import sample_identity
from nrdfer.data.synth.layouts import write_video
from nrdfer.data.synth.scene import ClipSpec, render_clip
from nrdfer.io import write_json
from nrdfer.preprocess.align import similarity_transform, transform_points
from nrdfer.preprocess.faces import TinyRetinaFace
from nrdfer.preprocess.track import faces_in_video
from nrdfer.preprocess.video import read_video, write_frames_atomic

SIZES = {"demo AFEW 320x240": (320, 240), "AFEW 720x576": (720, 576)}


def clip(seed: int, n: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spec = ClipSpec(
        label=int(rng.integers(7)), n_frames=n, size=size, face_size=(0.12, 0.18),
        position_spread=0.2, head_motion=1.0, intensity=(0.8, 1.0), n1_kind=None,
        n1_frames=(), n2_window=None, dark_gain=None,
    )  # fmt: skip
    return render_clip(spec, rng, sample_identity(rng)).frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--every", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--out", default="benchmarks/results/detect_align_speed.json")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    det = TinyRetinaFace(max_side=640, min_face=0.015, threads=1)  # params.yaml's settings
    result: dict = {
        "unit": "frames per second on one core (decode + detect/track/align + JPEG writing)",
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count()},
        "clips": args.clips,
        "frames_per_clip": args.frames,
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in SIZES.items():
            paths = []
            for k in range(args.clips):
                path = Path(tmp) / f"{w}x{h}_{k}.avi"
                write_video(path, clip(100 + k, args.frames, (w, h)), 25, (w, h))
                paths.append(path)
            det.detect(np.zeros((1, h, w, 3), np.uint8))  # warm-up
            row: dict = {}
            tracks = {}
            for every in args.every:
                start = time.perf_counter()
                frames_done = 0
                for k, path in enumerate(paths):
                    frames = read_video(path)
                    vf = faces_in_video(frames, det, 64, every)
                    write_frames_atomic(Path(tmp) / f"out_{every}_{k}", vf.crops, 95)
                    tracks[every, k] = vf
                    frames_done += len(frames)
                secs = time.perf_counter() - start
                row[f"detect_every_{every}"] = {"fps": round(frames_done / secs, 2)}
            base = min(args.every)
            for every in args.every:
                if every == base:
                    continue
                errors = []
                for k in range(args.clips):
                    ref, got = tracks[base, k], tracks[every, k]
                    for t in set(range(len(ref.track))) - set(got.keys):
                        if ref.track[t] is None or got.track[t] is None:
                            continue
                        m = similarity_transform(ref.track[t].landmarks_array(), 112)
                        d = transform_points(got.track[t].landmarks_array(), m) - transform_points(
                            ref.track[t].landmarks_array(), m
                        )
                        errors.append(float(np.linalg.norm(d, axis=1).mean()))
                entry = row[f"detect_every_{every}"]
                entry["speedup"] = round(entry["fps"] / row[f"detect_every_{base}"]["fps"], 2)
                entry["landmark_error_px_at_112"] = {
                    "mean": round(float(np.mean(errors)), 2),
                    "p95": round(float(np.percentile(errors, 95)), 2),
                    "frames": len(errors),
                }
            result["sizes"][name] = row
            print(name, row)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
