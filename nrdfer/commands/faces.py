"""``nrdfer faces IMAGE_OR_VIDEO``: face boxes, scores and landmarks; the aligned crop on request.

Uses the ``detect_align`` section of params.yaml (``--params``, ``-S detect_align.key=value``),
so it runs exactly the detector and alignment of the pipeline. For a video it prints every
frame's faces and, with ``--out``, writes the tracked aligned crops side by side in one image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from nrdfer.commands import add_params_options, params_from_args
from nrdfer.device import resolve_device
from nrdfer.errors import UserError
from nrdfer.preprocess.align import align_face
from nrdfer.preprocess.faces import largest_face
from nrdfer.preprocess.tools import build_detector
from nrdfer.preprocess.track import STATUS_OK, faces_in_video
from nrdfer.preprocess.video import is_video, read_image, read_video


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="IMAGE_OR_VIDEO", help="an image or a video file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--out",
        metavar="PNG",
        help="write the aligned crop (image: the largest face; video: the tracked face of every "
        "frame, side by side)",
    )
    parser.add_argument(
        "--max-frames", type=int, default=0, help="video: at most this many frames (0 = all)"
    )
    add_params_options(parser)


def _write_png(path: str, rgb: np.ndarray) -> None:
    from nrdfer.io import atomic_path

    ok, buf = cv2.imencode(Path(path).suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"{path}: cannot encode an image with this suffix; use .png or .jpg")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def run(args: argparse.Namespace) -> int:
    from nrdfer.io import check_writable, require_file

    if args.max_frames < 0:
        raise UserError(f"--max-frames must be >= 0, got {args.max_frames}")
    if args.out:  # before any work
        check_writable(args.out, "--out")
        if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise UserError(f"--out {args.out}: give a .png or .jpg file name")
    require_file(args.source, "video or image file")
    params = params_from_args(args, ["base", "detect_align"])
    p = params["detect_align"]
    detector = build_detector(p, str(resolve_device(params["base"].device)))
    video = is_video(args.source)
    frames = (
        read_video(args.source, p.frame_stride, args.max_frames)
        if video
        else read_image(args.source)[None]  # (H, W, 3) -> (1, H, W, 3)
    )
    per_frame = detector.detect(frames)
    result = {
        "source": str(args.source),
        "width": int(frames.shape[2]),
        "height": int(frames.shape[1]),
        "frames": [
            {"index": i, "faces": [f.to_dict() for f in faces]} for i, faces in enumerate(per_frame)
        ],
    }
    if args.out:
        if video:
            vf = faces_in_video(frames, detector, p.output_size, p.detect_every)
            if vf.status != STATUS_OK:
                raise UserError(f"{args.source}: no face found in any frame; nothing written")
            strip = np.concatenate(list(vf.crops), axis=1)  # (T, S, S, 3) -> (S, T*S, 3)
            _write_png(args.out, strip)
        else:
            face = largest_face(per_frame[0])
            if face is None:
                raise UserError(f"{args.source}: no face found; nothing written")
            _write_png(args.out, align_face(frames[0], face.landmarks_array(), p.output_size))
        result["aligned"] = str(args.out)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for frame in result["frames"]:
            prefix = f"frame {frame['index']}: " if video else ""
            if not frame["faces"]:
                print(f"{prefix}no face")
            for f in frame["faces"]:
                pts = " ".join(f"({x:.1f},{y:.1f})" for x, y in f["landmarks"])
                box = ",".join(f"{v:.1f}" for v in f["box"])
                print(f"{prefix}score {f['score']:.4f} box [{box}] landmarks {pts}")
        if args.out:
            print(f"aligned crop written to {args.out}")
    return 0
