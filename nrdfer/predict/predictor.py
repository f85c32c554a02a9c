"""Classify the facial expression in any video with a trained model file.

The steps are those of the pipeline that made the training data, run on one video:

1. decode (PyAV, every ``detect_align.frame_stride``-th frame) and detect faces in every
   ``detect_every``-th frame (the same RetinaFace backend as the ``detect_align`` stage; all
   frames when that finds no face);
2. track one face through the video (``nrdfer.preprocess.track``: the same tracking as the
   stage), detect the sampled frames themselves and align them with 5 points (a sampled frame
   where the tracked face is not found takes the nearest detected frame's transform);
3. enhance dark face crops when the model's training data was enhanced (``enhance`` section);
4. sample T = U·V frames with the test protocol (paper §3.2, ``nrdfer.data.sampling``) from
   the whole video and, for a video longer than one window, from each window of the timeline;
5. resize to the model's input side, run the model and its snippet-based filter (Eq. 7).

Only the sampled frames are warped; decoding runs twice in a stream (the first pass converts
only the frames it detects on, the second only the sampled ones), and each batch of clips is
classified as soon as its frames are aligned, so memory does not grow with the video's length
(``benchmarks/video_memory.py``). What the first pass keeps of every frame is compact: its
time and frame number (16 bytes) and, for the frames it detects on, the tracked face in a
:class:`~nrdfer.preprocess.track.FaceTrack` (124 bytes: float64, so the second pass continues
the track from the exact box).
"""

from __future__ import annotations

import contextlib
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from nrdfer.data.sampling import sample_indices
from nrdfer.data.transforms import resize_clip
from nrdfer.errors import UserError
from nrdfer.predict.decode import window_bounds
from nrdfer.predict.loading import LoadedModel
from nrdfer.preprocess.align import similarity_transform, warp
from nrdfer.preprocess.enhance import mean_luma
from nrdfer.preprocess.faces import Face
from nrdfer.preprocess.tools import build_detector, build_enhancer
from nrdfer.preprocess.track import (
    FaceTrack,
    FaceTracker,
    detect_tracked,
    nearest_detected_array,
)
from nrdfer.preprocess.video import VideoStream

__all__ = ["ClipResult", "Predictor", "VideoResult", "predict_video"]

PIXEL_MAX = 255.0
"""uint8 frames are divided by this: the model takes values in [0, 1]."""


@dataclass
class ClipResult:
    """The model's answer for one sampled clip (the whole video, or one window).

    Attributes:
        start: first second covered.
        end: last second covered.
        frames: video frame numbers (0-based) of the T sampled frames.
        times: their presentation times in seconds.
        label: predicted class after the snippet-based filter.
        probs: class probabilities after the filter (softmax of ``logits``).
        probs_seq: class probabilities before the filter (softmax of ``logits_seq``).
        filter_fired: whether Eq. 7 suppressed the neutral class.
        attention: per sampled frame, the class token's attention to that frame's token (rollout,
            paper Fig. 5); None for a frame without a token (NR-DFERNet fuses frames t and t+1
            into token t, so the last frame has none), or None for models without attention.
    """

    start: float
    end: float
    frames: list[int]
    times: list[float]
    label: str
    probs: dict[str, float]
    probs_seq: dict[str, float]
    filter_fired: bool
    attention: list[float | None] | None

    @property
    def label_seq(self) -> str:
        """The class predicted before the filter."""
        return max(self.probs_seq, key=self.probs_seq.__getitem__)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        weights = self.attention or [None] * len(self.frames)
        return {
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "label_before_filter": self.label_seq,
            "filter_fired": self.filter_fired,
            "probs": self.probs,
            "probs_before_filter": self.probs_seq,
            "sampled_frames": [
                {"frame": f, "time": t, "attention": w}
                for f, t, w in zip(self.frames, self.times, weights, strict=True)
            ],
        }


@dataclass
class VideoResult:
    """Everything ``nrdfer predict`` reports for one video.

    Attributes:
        path: the video file.
        classes: class names in output order.
        fps: frame rate of the container.
        duration: seconds covered by the kept frames.
        frames: frames kept (after ``detect_align.frame_stride``).
        detected_frames: kept frames in which the tracked face was detected.
        enhanced_frames: sampled face crops that were low-light enhanced.
        clip: the whole video as one test-protocol clip.
        windows: the timeline (one result per window); empty for a video within one window.
        timings: seconds spent in ``decode``, ``detect_align`` (detection, tracking, alignment,
            enhancement, resizing) and ``model``.
        crops: uint8 (T, S, S, 3) aligned face crops of ``clip`` (for the plot; not in JSON).
    """

    path: str
    classes: list[str]
    fps: float
    duration: float
    frames: int
    detected_frames: int
    enhanced_frames: int
    clip: ClipResult
    windows: list[ClipResult]
    timings: dict[str, float]
    crops: np.ndarray = field(repr=False)

    @property
    def label(self) -> str:
        """The video's class (whole video, after the filter)."""
        return self.clip.label

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the crops)."""
        clip = self.clip.to_dict()
        return {
            "path": self.path,
            "label": clip.pop("label"),
            "label_before_filter": clip.pop("label_before_filter"),
            "filter_fired": clip.pop("filter_fired"),
            "probs": clip.pop("probs"),
            "probs_before_filter": clip.pop("probs_before_filter"),
            "sampled_frames": clip.pop("sampled_frames"),
            "classes": self.classes,
            "fps": self.fps,
            "duration": self.duration,
            "frames": self.frames,
            "detected_frames": self.detected_frames,
            "enhanced_frames": self.enhanced_frames,
            "windows": [w.to_dict() for w in self.windows],
            "timings": self.timings,
        }


class _Timer:
    """Accumulates wall-clock seconds per named step."""

    def __init__(self, names: Sequence[str]) -> None:
        self.seconds = dict.fromkeys(names, 0.0)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


def _timed(frames: Iterator[Any], timer: _Timer, name: str) -> Iterator[Any]:
    """Re-yield ``frames``, counting the time spent producing each item under ``name``."""
    while True:
        with timer(name):
            item = next(frames, None)
        if item is None:
            return
        yield item


class Predictor:
    """A loaded model with its face detector and enhancer, reused across videos.

    Args:
        loaded: the model file's model and input settings.
        batch_size: clips per model call (the whole video plus its windows).
        detect_every: the first pass (which face to follow) runs the detector on every
            ``detect_every``-th kept frame only; the frames the test-protocol sampling picks are
            always detected themselves (second pass), so their crops are those of detecting
            every frame whenever the same face is followed. 1: every frame.
    """

    def __init__(self, loaded: LoadedModel, batch_size: int = 8, detect_every: int = 1) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        self.loaded = loaded
        self.batch_size = max(1, batch_size)
        self.detect_every = detect_every
        self.detector = build_detector(loaded.spec.detect_align, str(loaded.device))
        e = loaded.spec.enhance
        self.enhancer = None if e is None else build_enhancer(e, loaded.device)

    @torch.inference_mode()
    def classify(self, clips: np.ndarray) -> dict[str, np.ndarray | None]:
        """Run the model on uint8 clips (N, T, 3, S, S) in batches.

        Returns:
            ``probs`` and ``probs_seq`` (N, K), ``fired`` (N,) and ``attention`` (N, T') or None.
        """
        model, device = self.loaded.model, self.loaded.device
        parts: dict[str, list[np.ndarray]] = {"probs": [], "probs_seq": [], "fired": []}
        attention: list[np.ndarray] = []
        for start in range(0, len(clips), self.batch_size):
            batch = torch.from_numpy(clips[start : start + self.batch_size]).to(device)
            out = model(batch.float() / PIXEL_MAX)  # (B, T, 3, S, S) in [0, 1]
            parts["probs"].append(out.logits.float().softmax(-1).cpu().numpy())
            parts["probs_seq"].append(out.logits_seq.float().softmax(-1).cpu().numpy())
            parts["fired"].append(out.filter_fired.cpu().numpy())
            if out.attention is not None:
                attention.append(out.attention.float().cpu().numpy())
        result: dict[str, np.ndarray | None] = {k: np.concatenate(v) for k, v in parts.items()}
        result["attention"] = np.concatenate(attention) if attention else None
        return result


class _Every:
    """The positions ``p % every == 0`` as a container (the frames the first pass detects on)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __contains__(self, position: object) -> bool:
        return isinstance(position, int) and position % self.every == 0


def _same_size(rgb: np.ndarray, first: np.ndarray | None) -> np.ndarray:
    """A frame resized to the first frame's size after a mid-stream resolution change."""
    if first is None or rgb.shape == first.shape:
        return rgb
    return cv2.resize(rgb, (first.shape[1], first.shape[0]))


@dataclass
class _FirstPass:
    """What the first pass keeps of a video, in compact arrays.

    Attributes:
        found: the tracked face of the frames it detected on (positions 0, every, 2 every ...),
            stored exactly (float64).
        times: presentation time (s) of every kept frame.
        numbers: video frame number of every kept frame.
        every: the detector ran on every ``every``-th kept frame.
    """

    found: FaceTrack = field(default_factory=lambda: FaceTrack(np.float64))
    times: array = field(default_factory=lambda: array("d"))
    numbers: array = field(default_factory=lambda: array("q"))
    every: int = 1

    def __len__(self) -> int:
        return len(self.times)

    def face(self, position: int) -> Face | None:
        """The tracked face of a kept frame (None where it was not seen or not detected on)."""
        return None if position % self.every else self.found[position // self.every]

    def detected_mask(self) -> np.ndarray:
        """bool (n,): the kept frames the tracked face was detected in."""
        mask = np.zeros(len(self), dtype=bool)
        mask[:: self.every] = self.found.found()
        return mask


def _detect_all(stream: VideoStream, predictor: Predictor, timer: _Timer, every: int) -> _FirstPass:
    """First pass: the tracked face in every ``every``-th kept frame, with every kept frame's
    time and frame number."""
    chunk_size = predictor.loaded.spec.detect_align.batch_size
    tracker = FaceTracker()
    first = _FirstPass(every=every)
    found = first.found
    chunk: list[np.ndarray] = []
    size_of: np.ndarray | None = None  # the first frame: the others are brought to its size
    bar = tqdm(  # on a terminal only (disable=None): a long video shows how far detection is
        total=stream.frame_count() or None, desc=f"{stream.path.name}: faces", unit="frame",
        leave=False, disable=None,
    )  # fmt: skip
    frames = stream.frames(want=_Every(every))
    for frame in _timed(frames, timer, "decode"):
        bar.update()
        first.times.append(frame.time)
        first.numbers.append(frame.index)
        if frame.rgb is None:  # not a frame the first pass detects on
            continue
        rgb = _same_size(frame.rgb, size_of)
        size_of = rgb if size_of is None else size_of
        chunk.append(rgb)
        if len(chunk) >= chunk_size:
            with timer("detect_align"):
                for face in _tracked(np.stack(chunk), predictor, tracker):  # (n, H, W, 3)
                    found.append(face)
            chunk = []
    if chunk:
        with timer("detect_align"):
            for face in _tracked(np.stack(chunk), predictor, tracker):
                found.append(face)
    bar.close()
    return first


def _tracked(
    frames: np.ndarray, predictor: Predictor, tracker: FaceTracker | list[FaceTracker]
) -> list[Face | None]:
    return [face for _, face in detect_tracked(frames, predictor.detector, tracker)]


@dataclass
class _Classified:
    """What the streamed second pass returns: per clip (the whole video, then each window)
    the model's outputs, the whole video's crops, the count of enhanced crops and that of the
    sampled frames it found the tracked face in (those the first pass did not detect on)."""

    probs: dict[int, np.ndarray] = field(default_factory=dict)
    probs_seq: dict[int, np.ndarray] = field(default_factory=dict)
    fired: dict[int, bool] = field(default_factory=dict)
    attention: dict[int, np.ndarray | None] = field(default_factory=dict)
    crops: np.ndarray | None = None  # (T, S, S, 3) of the whole video's clip
    enhanced: int = 0
    detected: int = 0


def _classify_stream(
    stream: VideoStream,
    samples: list[np.ndarray],
    first: _FirstPass,
    predictor: Predictor,
    timer: _Timer,
) -> _Classified:
    """Second pass, streamed: decode the sampled frames in order, align each (a frame the first
    pass did not detect on is detected now, in detector batches, and the face that continues
    the track's nearest detection is taken; where none does, the nearest detection's landmarks
    are used), enhance the dark crops (in enhancer batches, in frame order), and classify each
    batch of clips (``predictor.batch_size``: the whole video and the first windows, then the
    next windows ...) as soon as its crops are ready. Frames and crops are let go once no
    batch needs them, so memory does not grow with the video's length; the batches, their
    order and contents are those of classifying everything at the end (same results)."""
    second = _SecondPass(samples, first, predictor, timer)
    detect_batch = predictor.loaded.spec.detect_align.batch_size
    wanted = set(second.groups_of)
    size_of: np.ndarray | None = None  # the first frame: the others are brought to its size
    for frame in _timed(stream.frames(want=wanted, stop=max(wanted)), timer, "decode"):
        if frame.rgb is None:
            continue
        rgb = _same_size(frame.rgb, size_of)
        size_of = rgb if size_of is None else size_of
        second.decoded.append((frame.position, rgb))
        if frame.position % first.every:
            second.undetected.append(frame.position)
            if len(second.undetected) == detect_batch:
                second.align_decoded()
        elif not second.undetected:
            second.align_decoded()
    if second.decoded:
        second.align_decoded()
    if second.dark:
        second.enhance_dark()
    if any(second.waiting_for):
        raise UserError(
            f"{stream.path}: the video decoded differently on the second pass; re-encode it"
        )
    return second.result


class _SecondPass:
    """The state of :func:`_classify_stream`: which batch of clips (group) needs which sampled
    frame, the frames decoded but not yet aligned, the crops waiting for the enhancer or for
    the rest of their group, and what the classified groups gave."""

    def __init__(
        self,
        samples: list[np.ndarray],
        first: _FirstPass,
        predictor: Predictor,
        timer: _Timer,
    ) -> None:
        self.samples, self.first, self.predictor, self.timer = samples, first, predictor, timer
        self.spec = spec = predictor.loaded.spec
        self.enhancer = predictor.enhancer if spec.enhance is not None else None
        self.enhance_batch = max(1, getattr(self.enhancer, "batch_size", 1))
        step = predictor.batch_size
        n = len(samples)
        self.groups = [list(range(g, min(g + step, n))) for g in range(0, n, step)]
        self.members = [sorted({int(i) for k in grp for i in samples[k]}) for grp in self.groups]
        self.groups_of: dict[int, list[int]] = {}  # frame position -> groups that use it
        for g, positions in enumerate(self.members):
            for p in positions:
                self.groups_of.setdefault(p, []).append(g)
        self.waiting_for = [len(positions) for positions in self.members]  # crops still needed
        self.users = {p: len(gs) for p, gs in self.groups_of.items()}  # groups not classified
        self.result = _Classified()
        self.crops: dict[int, np.ndarray] = {}
        self.decoded: list[tuple[int, np.ndarray]] = []  # frames not yet aligned, in order
        self.undetected: list[int] = []  # of those, the ones to detect first
        self.dark: list[tuple[int, np.ndarray]] = []  # crops waiting for the enhancer, in order
        with timer("detect_align"):  # the nearest frame with the face, for the sampled frames
            wanted = sorted(self.groups_of)
            nearest = nearest_detected_array(first.detected_mask(), np.asarray(wanted))
            self.source = dict(zip(wanted, nearest.tolist(), strict=True))

    def classify(self, g: int) -> None:
        """Classify group ``g`` (all its crops are ready) and let go of the crops no other
        group still needs."""
        samples, crops, result = self.samples, self.crops, self.result
        size = self.spec.size
        with self.timer("detect_align"):
            clips = np.stack(
                [resize_clip([crops[int(i)] for i in samples[k]], size) for k in self.groups[g]]
            )  # (clips, T, 3, size, size)
        with self.timer("model"):
            out = self.predictor.classify(clips)
        for j, k in enumerate(self.groups[g]):
            result.probs[k], result.probs_seq[k] = out["probs"][j], out["probs_seq"][j]  # type: ignore[index]
            result.fired[k] = bool(out["fired"][j])  # type: ignore[index]
            result.attention[k] = None if out["attention"] is None else out["attention"][j]
        if g == 0:
            result.crops = np.stack([crops[int(i)] for i in samples[0]])  # (T, S, S, 3)
        for p in self.members[g]:
            self.users[p] -= 1
            if not self.users[p]:
                del crops[p]

    def ready(self, p: int, crop: np.ndarray) -> None:
        """The crop of frame ``p`` is final: classify every group it completes."""
        self.crops[p] = crop
        for g in self.groups_of[p]:
            self.waiting_for[g] -= 1
            if not self.waiting_for[g]:
                self.classify(g)

    def enhance_dark(self) -> None:
        """Enhance the dark crops waiting, as one batch, and pass them on in frame order."""
        dark = self.dark
        stack = np.stack([c for _, c in dark])  # (n, S, S, 3)
        with self.timer("detect_align"):
            stack[...] = self.enhancer.enhance(stack)  # type: ignore[union-attr]
        self.result.enhanced += len(dark)
        done = [p for p, _ in dark]
        dark.clear()
        for p, crop in zip(done, stack, strict=True):
            self.ready(p, crop)

    def align_decoded(self) -> None:
        """Detect the decoded frames the first pass did not (one detector batch), align every
        decoded frame, and pass the crops on (the dark ones through the enhancer)."""
        first, source, size = self.first, self.source, self.spec.detect_align.output_size
        with self.timer("detect_align"):
            found: dict[int, Face | None] = {}  # the faces of the frames detected now
            if self.undetected:
                stack = np.stack([rgb for p, rgb in self.decoded if p in self.undetected])
                follow = [FaceTracker(first.face(source[p])) for p in self.undetected]
                faces = _tracked(stack, self.predictor, follow)  # stack: (n, H, W, 3)
                found = dict(zip(self.undetected, faces, strict=True))
                self.result.detected += sum(f is not None for f in faces)
                self.undetected.clear()
            aligned = []
            for p, rgb in self.decoded:
                face = found[p] if p in found else first.face(p)
                face = face if face is not None else first.face(source[p])
                matrix = similarity_transform(face.landmarks_array(), size)  # type: ignore[union-attr]
                aligned.append((p, warp(rgb, matrix, size)))
            self.decoded.clear()
        for p, crop in aligned:
            if self.enhancer is None or mean_luma(crop)[0] >= self.spec.enhance.dark_threshold:  # type: ignore[union-attr]
                self.ready(p, crop)
                continue
            self.dark.append((p, crop))
            if len(self.dark) == self.enhance_batch:
                self.enhance_dark()


def predict_video(path: str | Path, predictor: Predictor, window: float = 0.0) -> VideoResult:
    """Classify the expression of the tracked face in a video (paper §3, test protocol §3.2).

    Args:
        path: any video PyAV can read.
        predictor: the loaded model, detector and enhancer.
        window: timeline window in seconds; a longer video also gets one result per window
            (<= 0: no timeline).

    Raises:
        UserError: unreadable video, or no face in any frame.
    """
    path = Path(path)
    spec = predictor.loaded.spec
    classes = list(predictor.loaded.classes)
    timer = _Timer(("decode", "detect_align", "model"))
    stream = VideoStream(path, spec.detect_align.frame_stride)

    every = predictor.detect_every
    first = _detect_all(stream, predictor, timer, every)
    n = len(first)
    if first.found.detected == 0 and every > 1:  # a face only between the sparse frames: all
        first = _detect_all(stream, predictor, timer, 1)
    if first.found.detected == 0:
        raise UserError(f"{path}: no face found in any of its {n} frames; nothing to classify")

    # Test-protocol sampling of the whole video and of every window: positions (T,) each.
    times, numbers = first.times, first.numbers
    bounds = window_bounds(times, window, stream.frame_time)
    spans = [(0, n), *bounds]
    samples = [s + sample_indices(e - s, spec.U, spec.V, train=False) for s, e in spans]
    out = _classify_stream(stream, samples, first, predictor, timer)
    detected = first.found.detected + out.detected
    values = [*out.probs.values(), *out.probs_seq.values(), *out.attention.values()]
    if not all(v is None or np.isfinite(v).all() for v in values):
        raise UserError(
            f"{path}: the model's output holds NaN or Inf; the model file "
            f"{predictor.loaded.path} is damaged: use another one or re-run training"
        )

    frame_time = stream.frame_time
    results = []
    for k, ((s, e), idx) in enumerate(zip(spans, samples, strict=True)):
        probs, probs_seq, weights = out.probs[k], out.probs_seq[k], out.attention[k]
        attention = None if weights is None else _per_frame(weights, len(idx))
        results.append(
            ClipResult(
                start=times[s],
                end=times[e - 1] + frame_time,
                frames=[numbers[int(i)] for i in idx],
                times=[times[int(i)] for i in idx],
                label=classes[int(np.argmax(probs))],
                probs={c: float(p) for c, p in zip(classes, probs, strict=True)},
                probs_seq={c: float(p) for c, p in zip(classes, probs_seq, strict=True)},
                filter_fired=out.fired[k],
                attention=attention,
            )
        )
    return VideoResult(
        path=str(path),
        classes=classes,
        fps=stream.fps,
        duration=times[-1] - times[0] + frame_time,
        frames=n,
        detected_frames=detected,
        enhanced_frames=out.enhanced,
        clip=results[0],
        windows=results[1:],
        timings=dict(timer.seconds),
        crops=out.crops,  # type: ignore[arg-type]
    )


def _per_frame(weights: np.ndarray, frames: int) -> list[float | None]:
    """Token attention (T' <= T) -> one weight per sampled frame; frames past T' get None.

    NR-DFERNet's token t fuses frame t (static branch) with the motion t -> t+1 (Eq. 1-4), so
    token t is shown on frame t and the last frame has no token.
    """
    values: list[float | None] = [float(w) for w in weights[:frames]]
    return values + [None] * (frames - len(values))
