"""``nrdfer predict VIDEO... --checkpoint CKPT``: the expression in any video.

Decodes each video, detects, tracks and aligns the face, enhances dark frames when the model
file says its training data was enhanced, samples frames with the test protocol and runs the
model with its snippet-based filter (docs/predict.md). Everything comes from the model file: no
params.yaml is read. A video that fails (unreadable, no face) is reported on stderr and the
others still run; the exit status is then 2. Ctrl-C stops after printing the videos finished so
far (with ``--json`` one JSON document per finished video) with exit status 130.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path

from nrdfer.errors import INTERRUPTED, UserError

MIN_WINDOW = 0.1
"""Shortest ``--window`` in seconds (a few frames at video frame rates)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video file(s)")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="model file (model.pt)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="write the paper's Fig. 5 for the video (several videos: PNG's stem + '-' + the "
        "video's stem)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="a video longer than this also gets one result per window (timeline); 0 = off "
        "(default: 5)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, help="clips per model call (default: 8)"
    )
    parser.add_argument(
        "--detect-every",
        type=int,
        default=None,
        help="find the face to follow on every K-th frame; the sampled frames are always "
        "detected themselves (default: the model file's detect_align.detect_every, as its "
        "training faces were found; 1 = every frame)",
    )


def plot_paths(plot: str, videos: list[str]) -> list[Path]:
    """One plot path per video: ``plot`` itself for one video, else ``<stem>-<video stem>``."""
    base = Path(plot)
    if len(videos) == 1:
        return [base]
    paths: list[Path] = []
    for video in videos:
        candidate = base.with_name(f"{base.stem}-{Path(video).stem}{base.suffix or '.png'}")
        n = 2
        while candidate in paths:
            candidate = base.with_name(f"{base.stem}-{Path(video).stem}-{n}{base.suffix or '.png'}")
            n += 1
        paths.append(candidate)
    return paths


def _text(result) -> str:
    def probs(d: dict[str, float]) -> str:
        return "  ".join(f"{c} {p:.3f}" for c, p in d.items())

    clip = result.clip
    lines = [
        f"{result.path}: {clip.label}"
        + (f" (filter fired; {clip.label_seq} before it)" if clip.filter_fired else ""),
        f"  {result.frames} frames, {result.duration:.2f} s, face detected in "
        f"{result.detected_frames}, enhanced crops {result.enhanced_frames}",
        f"  after filter:  {probs(clip.probs)}",
        f"  before filter: {probs(clip.probs_seq)}",
    ]
    if clip.attention is not None:
        att = ", ".join(
            f"{f}:{'-' if w is None else f'{w:.3f}'}"
            for f, w in zip(clip.frames, clip.attention, strict=True)
        )
        lines.append(f"  attention (frame:weight): {att}")
    for w in result.windows:
        fired = " (filter fired)" if w.filter_fired else ""
        lines.append(f"  {w.start:7.2f}-{w.end:7.2f} s: {w.label} {w.probs[w.label]:.3f}{fired}")
    return "\n".join(lines)


def _one_video(video: str, plot: Path | None, predictor, args, results: list, fail) -> None:
    """Classify one video, write its plot, keep its entry in ``results`` and print it (text
    mode); a UserError goes to ``fail`` and the next video runs."""
    from nrdfer.predict.predictor import predict_video

    try:
        result = predict_video(video, predictor, window=args.window)
    except UserError as exc:
        fail(video, str(exc))
        return
    entry = result.to_dict()
    if plot is not None:
        from nrdfer.predict.plot import plot_prediction

        try:
            plot_prediction(result, plot)
            entry["plot"] = str(plot)
        except OSError as exc:  # the result is kept and printed all the same
            fail(video, f"--plot {plot}: cannot write it ({exc.strerror or exc})")
    results.append(entry)
    if not args.json:
        print(_text(result) + (f"\n  plot: {entry['plot']}" if "plot" in entry else ""))


def _interrupted(args: argparse.Namespace, results: list, errors: list) -> int:
    """After Ctrl-C: say so and print the finished videos (``--json``: one JSON document per
    video, each standing alone); a second Ctrl-C meanwhile is ignored."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = len(results) + len(errors)
        print(
            f"nrdfer predict: interrupted after {done} of {len(args.videos)} videos; the "
            "finished ones are printed",
            file=sys.stderr,
        )
        if args.json:
            for entry in [*results, *errors]:
                print(json.dumps(entry, allow_nan=False))
        sys.stdout.flush()
    finally:
        signal.signal(signal.SIGINT, before)
    return INTERRUPTED


def run(args: argparse.Namespace) -> int:
    from nrdfer.device import resolve_device
    from nrdfer.io import check_writable
    from nrdfer.predict.loading import load_model_for_inference
    from nrdfer.predict.predictor import Predictor

    if not math.isfinite(args.window) or args.window < 0 or 0 < args.window < MIN_WINDOW:
        raise UserError(
            f"--window {args.window}: give the window in seconds, 0 (no timeline) or a number "
            f"from {MIN_WINDOW} on"
        )
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.detect_every is not None and args.detect_every < 1:
        raise UserError(f"--detect-every must be at least 1, got {args.detect_every}")
    plots = plot_paths(args.plot, args.videos) if args.plot else [None] * len(args.videos)
    if args.plot:  # before any work: a bad --plot would fail after the first video
        from matplotlib.figure import Figure

        kinds = Figure().canvas.get_supported_filetypes()
        if Path(args.plot).suffix.lstrip(".").lower() not in kinds.keys() | {""}:
            raise UserError(
                f"--plot {args.plot}: unknown image type; use .png (or {', '.join(kinds)})"
            )
        for plot in plots:
            check_writable(plot, "--plot")
    loaded = load_model_for_inference(args.checkpoint, resolve_device(args.device, name="--device"))
    every = args.detect_every  # None: as the model's training faces were found
    if every is None:
        every = loaded.spec.detect_align.detect_every
    predictor = Predictor(loaded, batch_size=args.batch_size, detect_every=every)
    results, errors = [], []

    def fail(path: str, message: str) -> None:
        errors.append({"path": path, "error": message})
        print(f"nrdfer predict: error: {message}", file=sys.stderr)

    for video, plot in zip(args.videos, plots, strict=True):
        try:
            _one_video(video, plot, predictor, args, results, fail)
        except KeyboardInterrupt:  # Ctrl-C: keep and print what is finished
            return _interrupted(args, results, errors)
    if args.json:
        payload = {
            "checkpoint": str(args.checkpoint),
            "classes": list(loaded.classes),
            "results": results,
            "errors": errors,
        }
        print(json.dumps(payload, indent=2, allow_nan=False))  # NaN is not JSON
    return 2 if errors else 0
