"""Per-clip face tracking, gap filling and the aligned face clip (paper §4.1, AFEW).

One face is followed through a clip: the track starts at the largest face of the first frame
with a detection and, frame by frame, continues with the face that overlaps the last tracked
box most (or, without overlap, whose centre is nearest and within one box diagonal). A frame
whose faces all lie elsewhere counts as a frame without a detection. Frames without a
detection take the alignment transform of the nearest frame with one (the earlier on a tie), so
the clip keeps every frame. A clip with no face at all is reported, not written.

:func:`faces_in_video` is the one function the ``detect_align`` stage and single-video
inference both call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nrdfer.preprocess.align import similarity_transform, warp
from nrdfer.preprocess.faces import Face, FaceDetector, largest_face

STATUS_OK = "ok"
STATUS_NO_FACE = "no_face"
STATUS_ERROR = "error"


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _continues(prev: Face, cand: Face) -> float | None:
    """How well ``cand`` continues a track last seen at ``prev`` (higher is better), or None."""
    overlap = iou(prev.box, cand.box)
    if overlap > 0:
        return 1.0 + overlap
    diag = float(np.hypot(prev.box[2] - prev.box[0], prev.box[3] - prev.box[1]))
    dist = float(np.hypot(cand.center[0] - prev.center[0], cand.center[1] - prev.center[1]))
    if diag > 0 and dist <= diag:
        return 1.0 - dist / diag  # in [0, 1]: always below any overlapping candidate
    return None


def continue_track(prev: Face, faces: Sequence[Face]) -> Face | None:
    """The face of ``faces`` that best continues a track last seen at ``prev``, or None."""
    scored = [(s, f) for f in faces if (s := _continues(prev, f)) is not None]
    return max(scored, key=lambda sf: (sf[0], sf[1].score))[1] if scored else None


def track_faces(per_frame: Sequence[Sequence[Face]]) -> list[Face | None]:
    """Pick one face per frame that continues a single track (None where it is not seen)."""
    track: list[Face | None] = [None] * len(per_frame)
    last: Face | None = None
    for t, faces in enumerate(per_frame):
        if last is None:
            last = largest_face(faces)
            track[t] = last
            continue
        found = continue_track(last, faces)
        if found is not None:
            last = found
            track[t] = last
    return track


def nearest_detected(detected: Sequence[bool]) -> list[int]:
    """For each frame, the index of the nearest frame with a detection (earlier on a tie).

    Raises:
        ValueError: no frame has a detection.
    """
    idx = np.flatnonzero(np.asarray(detected, dtype=bool))
    if idx.size == 0:
        raise ValueError("no frame has a detection")
    frames = np.arange(len(detected))
    # distance of every frame to every detected frame: (T, D); argmin takes the first = earlier
    dist = np.abs(frames[:, None] - idx[None, :])
    return idx[dist.argmin(1)].tolist()


@dataclass
class VideoFaces:
    """The tracked, aligned face clip of one video.

    Attributes:
        status: ``ok`` or ``no_face``.
        crops: uint8 (T, S, S, 3) aligned RGB crops, or None when no face was found.
        track: the tracked face per frame (None where not detected).
        source: for each frame, the index of the frame whose landmarks aligned it.
        faces_per_frame: number of faces the detector returned per frame.
    """

    status: str
    crops: np.ndarray | None
    track: list[Face | None]
    source: list[int]
    faces_per_frame: list[int]

    @property
    def detected(self) -> int:
        """Frames where the tracked face was detected (not filled)."""
        return sum(f is not None for f in self.track)


def align_track(
    frames: np.ndarray, track: Sequence[Face | None], output_size: int
) -> tuple[np.ndarray, list[int]]:
    """Aligned crops (T, S, S, 3) of a track, gaps filled from the nearest detected frame."""
    source = nearest_detected([f is not None for f in track])
    matrices = {
        i: similarity_transform(track[i].landmarks_array(), output_size)  # type: ignore[union-attr]
        for i in set(source)
    }
    crops = np.stack([warp(frames[t], matrices[s], output_size) for t, s in enumerate(source)])
    return crops, source  # (T, S, S, 3)


def faces_in_video(frames: np.ndarray, detector: FaceDetector, output_size: int) -> VideoFaces:
    """Detect, track and align the face of a clip.

    Args:
        frames: uint8 RGB frames (T, H, W, 3).
        detector: a face detector backend.
        output_size: side of the aligned square crops.

    Returns:
        The aligned clip, or status ``no_face`` (crops None) when no frame has a face.
    """
    per_frame = detector.detect(frames)
    track = track_faces(per_frame)
    counts = [len(f) for f in per_frame]
    if all(f is None for f in track):
        return VideoFaces(STATUS_NO_FACE, None, track, [], counts)
    crops, source = align_track(frames, track, output_size)
    return VideoFaces(STATUS_OK, crops, track, source, counts)
