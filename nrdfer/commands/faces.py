"""``nrdfer faces IMAGE_OR_VIDEO``: face boxes, scores and landmarks; the aligned crop on request.

Uses the ``detect_align`` section of params.yaml (``--params``, ``-S detect_align.key=value``;
outside a project the package's defaults), so it runs exactly the detector and alignment of
the pipeline. For a video it prints every
frame's faces and, with ``--out``, writes the tracked aligned crops side by side in one image.
A video is streamed (one detector batch of frames at a time; the output is written as it goes),
so memory does not grow with its length.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from nrdfer.commands import add_params_options, params_from_args
from nrdfer.device import resolve_device
from nrdfer.errors import UserError
from nrdfer.preprocess.align import align_face
from nrdfer.preprocess.faces import largest_face
from nrdfer.preprocess.tools import build_detector
from nrdfer.preprocess.video import is_video, read_image, video_frames


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


STRIP_MAX_BYTES = 256 * 2**20
"""``--out`` of a video: the strip of aligned crops may take at most this many bytes (a longer
video needs ``--max-frames``), so memory does not grow with the video's length."""


def _frame_lines(index: int | None, faces: list[dict]) -> list[str]:
    prefix = f"frame {index}: " if index is not None else ""
    if not faces:
        return [f"{prefix}no face"]
    lines = []
    for f in faces:
        pts = " ".join(f"({x:.1f},{y:.1f})" for x, y in f["landmarks"])
        box = ",".join(f"{v:.1f}" for v in f["box"])
        lines.append(f"{prefix}score {f['score']:.4f} box [{box}] landmarks {pts}")
    return lines


def _video_strip(args: argparse.Namespace, detector, p) -> None:
    """Track the face through the video (streamed) and write its aligned crops side by side."""
    from nrdfer.preprocess.track import faces_in_stream
    from nrdfer.preprocess.video import VideoStream

    limit = max(1, STRIP_MAX_BYTES // (3 * p.output_size**2))
    stated = VideoStream(args.source, p.frame_stride).frame_count()
    frames = min(stated, args.max_frames) if args.max_frames else stated
    too_long = UserError(
        f"--out {args.out}: the strip of a video longer than {limit} frames would take more "
        f"than {STRIP_MAX_BYTES >> 20} MB; pass --max-frames {limit} (or fewer)"
    )
    if frames > limit:
        raise too_long
    result, crops = faces_in_stream(
        lambda: video_frames(args.source, p.frame_stride, args.max_frames),
        detector,
        p.output_size,
        p.detect_every,
        name=str(args.source),
    )
    if crops is None:
        raise UserError(f"{args.source}: no face found in any frame; nothing written")
    if len(result.track) > limit:
        raise too_long
    strip = np.concatenate(list(crops), axis=1)  # T x (S, S, 3) -> (S, T*S, 3)
    _write_png(args.out, strip)


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
    if not is_video(args.source):
        return _image(args, detector, p)
    if args.out:  # before printing: a video without a face prints nothing
        _video_strip(args, detector, p)
    # every frame's faces, streamed one detector batch at a time
    frames = video_frames(args.source, p.frame_stride, args.max_frames)
    index = 0
    out = sys.stdout
    while chunk := list(itertools.islice(frames, p.batch_size)):
        stack = np.stack(chunk)  # (n, H, W, 3)
        for faces in detector.detect(stack):
            entry = {"index": index, "faces": [f.to_dict() for f in faces]}
            if args.json:
                if index == 0:
                    head = {"source": str(args.source), "width": int(stack.shape[2]),
                            "height": int(stack.shape[1])}  # fmt: skip
                    out.write(
                        json.dumps(head, indent=2, allow_nan=False)[:-2] + ',\n  "frames": [\n'
                    )
                else:
                    out.write(",\n")
                text = json.dumps(entry, indent=2, allow_nan=False)
                out.write("    " + text.replace("\n", "\n    "))
            else:
                out.write("\n".join(_frame_lines(index, entry["faces"])) + "\n")
            index += 1
    if args.json:
        tail = f',\n  "aligned": {json.dumps(str(args.out))}' if args.out else ""
        out.write(f"\n  ]{tail}\n}}\n")
    elif args.out:
        print(f"aligned crop written to {args.out}")
    return 0


def _image(args: argparse.Namespace, detector, p) -> int:
    image = read_image(args.source)
    faces = detector.detect(image[None])[0]  # (1, H, W, 3)
    result = {
        "source": str(args.source),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "frames": [{"index": 0, "faces": [f.to_dict() for f in faces]}],
    }
    if args.out:
        face = largest_face(faces)
        if face is None:
            raise UserError(f"{args.source}: no face found; nothing written")
        _write_png(args.out, align_face(image, face.landmarks_array(), p.output_size))
        result["aligned"] = str(args.out)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print("\n".join(_frame_lines(None, result["frames"][0]["faces"])))
        if args.out:
            print(f"aligned crop written to {args.out}")
    return 0
