"""Per-clip face tracking, gap filling and the aligned face clip (paper §4.1, AFEW).

One face is followed through a clip: the track starts at the largest face of the first frame
with a detection and, frame by frame, continues with the face that overlaps the last tracked
box most (or, without overlap, whose centre is nearest and within one box diagonal). A frame
whose faces all lie elsewhere counts as a frame without a detection.

The detector runs on every ``detect_every``-th frame and the last (the key frames). In a frame
between two key frames where the face was found, the landmarks are those of the two key frames
carried to it by optical flow (corner points in the face box followed by pyramidal
Lucas-Kanade, a similarity transform fitted to them), blended by the frame's place between
them (:func:`track_between`); this costs a few per cent of a detector pass. Where the
detector's first (coarse) pass holds no face to start or continue the track, its second, finer
pass runs on that frame (:func:`detect_tracked`), so small faces are found without running the
fine pass on every frame. Frames with neither a detection nor an interpolation take
the alignment transform of the nearest frame with one (the earlier on a tie), so the clip keeps
every frame. A clip with no face at all is reported, not written.

:func:`faces_in_stream` is what the ``detect_align`` stage and ``nrdfer faces`` call on a
video: it holds one detector batch of frames at a time and keeps of every frame only a compact
record (8 bytes: the row of its face in a :class:`FaceTrack` and the number of faces found;
60 more where it holds the face); :func:`faces_in_video` is the same on frames in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from nrdfer.errors import UserError
from nrdfer.preprocess.align import similarity_transform, warp
from nrdfer.preprocess.faces import Face, FaceDetector, largest_face, merge_faces

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


class FaceTracker:
    """Follows one face through frames given in order: it starts at the largest face of the
    first frame with one and goes on with :func:`continue_track`."""

    def __init__(self, last: Face | None = None) -> None:
        self.last = last

    def pick(self, faces: Sequence[Face]) -> Face | None:
        """The face of ``faces`` the track would take (the track is not changed)."""
        return largest_face(faces) if self.last is None else continue_track(self.last, faces)

    def update(self, faces: Sequence[Face]) -> Face | None:
        """Take the next frame's faces; returns the tracked face, or None where it is not seen."""
        found = self.pick(faces)
        if found is not None:
            self.last = found
        return found


def detect_tracked(
    frames: np.ndarray, detector: FaceDetector, tracker: FaceTracker | Sequence[FaceTracker]
) -> list[tuple[list[Face], Face | None]]:
    """Detect faces in frames (N, H, W, 3) and advance ``tracker`` through them (one tracker
    for consecutive frames, or one tracker per frame).

    A detector with a finer second pass (``fine_scale``/``detect_fine``) runs it only on the
    frames whose first-pass faces hold none the tracker can take.

    Returns:
        Per frame: all faces found, and the tracked face (None where not seen).
    """
    fine = getattr(detector, "fine_scale", None)
    needs_fine = fine is not None and fine(*frames.shape[1:3]) is not None
    per_frame = detector.detect(frames, fine=False) if needs_fine else detector.detect(frames)  # type: ignore[call-arg]
    trackers = [tracker] * len(frames) if isinstance(tracker, FaceTracker) else list(tracker)
    out = []
    for i, (faces, follow) in enumerate(zip(per_frame, trackers, strict=True)):
        if needs_fine and follow.pick(faces) is None:
            more = detector.detect_fine(frames[i : i + 1])[0]  # type: ignore[attr-defined]
            faces = merge_faces(faces, more, nms_threshold=detector.nms_threshold)  # type: ignore[attr-defined]
        out.append((list(faces), follow.update(faces)))
    return out


FLOW_SIDE = 192
"""Optical flow runs on the region around the face between two key frames, shrunk so its
longer side is at most this many pixels."""

FLOW_POINTS = 60
"""Corner points followed inside the face box between key frames."""


def _face_region(
    frames: np.ndarray, a: Face, b: Face
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Grey crops of ``frames`` around the boxes of ``a`` and ``b`` (half a box added on each
    side), shrunk to :data:`FLOW_SIDE`; returns them, the crop's origin (x, y) and scale."""
    h, w = frames.shape[1:3]
    x1, y1 = min(a.box[0], b.box[0]), min(a.box[1], b.box[1])
    x2, y2 = max(a.box[2], b.box[2]), max(a.box[3], b.box[3])
    pad = 0.5 * max(a.box[2] - a.box[0], a.box[3] - a.box[1], 1.0)
    c0, r0 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
    c1, r1 = int(min(w, x2 + pad + 1)), int(min(h, y2 + pad + 1))
    c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
    scale = min(1.0, FLOW_SIDE / max(c1 - c0, r1 - r0))
    size = (max(1, round((c1 - c0) * scale)), max(1, round((r1 - r0) * scale)))
    grays = []
    for f in frames:
        g = cv2.cvtColor(f[r0:r1, c0:c1], cv2.COLOR_RGB2GRAY)
        grays.append(g if scale == 1.0 else cv2.resize(g, size, interpolation=cv2.INTER_AREA))
    return grays, np.float32([c0, r0]), scale


def carry_landmarks(
    grays: Sequence[np.ndarray], face: Face, order: Sequence[int], origin: np.ndarray, scale: float
) -> list[np.ndarray | None]:
    """The landmarks of ``face`` (seen in ``grays[order[0]]``) carried through the frames
    ``order`` by optical flow: corner points inside the face box are followed frame to frame
    (pyramidal Lucas-Kanade), and the similarity transform from their first to their current
    positions (RANSAC) moves the landmarks. Frame pixel p is grey pixel (p - origin) * scale.
    None from the step where fewer than 6 points remain."""
    out: list[np.ndarray | None] = [face.landmarks_array()]
    g0 = grays[order[0]]
    box = (np.float32(face.box).reshape(2, 2) - origin) * scale  # (2, 2): two corners
    (x1, y1), (x2, y2) = np.round(box).astype(int)
    mask = np.zeros_like(g0)
    mask[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 255
    pts = cv2.goodFeaturesToTrack(g0, FLOW_POINTS, 0.01, 3, mask=mask)
    if pts is None or len(pts) < 6:
        return out + [None] * (len(order) - 1)
    start = pts.reshape(-1, 2)  # (P, 2)
    keep = np.arange(len(start))
    current = pts  # (P, 1, 2) float32
    landmarks = (face.landmarks_array() - origin) * scale  # (5, 2) in grey pixels
    for i in range(1, len(order)):
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            grays[order[i - 1]], grays[order[i]], current, None, winSize=(15, 15), maxLevel=2
        )
        ok = status.ravel() == 1
        current, keep = moved[ok], keep[ok]
        matrix = None
        if len(keep) >= 6:
            matrix, _ = cv2.estimateAffinePartial2D(
                start[keep], current.reshape(-1, 2), method=cv2.RANSAC, ransacReprojThreshold=1.0
            )
        if matrix is None:
            return out + [None] * (len(order) - i)
        out.append((landmarks @ matrix[:, :2].T + matrix[:, 2]) / scale + origin)  # (5, 2)
        current = current.reshape(-1, 1, 2)
    return out


def track_between(
    frames: np.ndarray, track: Sequence[Face | None], keys: Sequence[int]
) -> list[Face | None]:
    """The track with every frame between two consecutive key frames that both hold the face
    filled in: landmarks carried forward from the earlier and backward from the later key
    frame by optical flow (:func:`carry_landmarks`), blended by the frame's place between
    them; the box and score are interpolated. Where the flow is lost, the landmarks are
    interpolated linearly. Frames next to a key frame without the face stay None."""
    out = fill_between(track, keys)
    for k0, k1 in zip(keys[:-1], keys[1:], strict=True):
        a, b = track[k0], track[k1]
        if a is None or b is None or k1 - k0 < 2:
            continue
        grays, origin, scale = _face_region(frames[k0 : k1 + 1], a, b)
        n = k1 - k0
        forward = carry_landmarks(grays, a, range(0, n + 1), origin, scale)
        backward = carry_landmarks(grays, b, range(n, -1, -1), origin, scale)[::-1]
        for i in range(1, n):
            f, r = forward[i], backward[i]
            if f is None and r is None:
                continue  # the linear interpolation stays
            pts = f if r is None else r if f is None else (1 - i / n) * f + (i / n) * r  # (5, 2)
            linear = out[k0 + i]
            out[k0 + i] = Face(
                box=linear.box,  # type: ignore[union-attr]
                score=linear.score,  # type: ignore[union-attr]
                landmarks=tuple((float(x), float(y)) for x, y in pts),
            )
    return out


def interpolate_face(a: Face, b: Face, w: float) -> Face:
    """The face ``w`` of the way from ``a`` to ``b`` (box, landmarks and score linear)."""
    box = tuple(float((1 - w) * p + w * q) for p, q in zip(a.box, b.box, strict=True))
    pts = (1 - w) * a.landmarks_array() + w * b.landmarks_array()  # (5, 2)
    return Face(
        box=box,  # type: ignore[arg-type]
        score=float((1 - w) * a.score + w * b.score),
        landmarks=tuple((float(x), float(y)) for x, y in pts),
    )


def fill_between(track: list[Face | None], keys: Sequence[int]) -> list[Face | None]:
    """The track with every frame between two consecutive key frames that both hold the face
    interpolated (frames next to a key frame without the face stay None)."""
    out = list(track)
    for k0, k1 in zip(keys[:-1], keys[1:], strict=True):
        a, b = track[k0], track[k1]
        if a is None or b is None:
            continue
        for t in range(k0 + 1, k1):
            out[t] = interpolate_face(a, b, (t - k0) / (k1 - k0))
    return out


def nearest_detected(detected: Sequence[bool]) -> list[int]:
    """For each frame, the index of the nearest frame with a detection (earlier on a tie).

    Raises:
        ValueError: no frame has a detection.
    """
    return nearest_detected_array(np.asarray(detected, dtype=bool)).tolist()


def nearest_detected_array(detected: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """:func:`nearest_detected` of a bool array (T,), as an int64 array (T,); or, given
    ``frames`` (F,), only for those frames, as an int64 array (F,)."""
    idx = np.flatnonzero(detected)  # (D,) sorted
    if idx.size == 0:
        raise ValueError("no frame has a detection")
    frames = np.arange(len(detected)) if frames is None else np.asarray(frames, np.int64)
    # the detected frames on either side of each frame: O(T log D) time, O(T) memory
    after = np.minimum(np.searchsorted(idx, frames), idx.size - 1)  # first >= frame (or last)
    before = np.maximum(after - 1, 0)
    later, earlier = idx[after], idx[before]
    return np.where(np.abs(earlier - frames) <= np.abs(later - frames), earlier, later)


class _Column:
    """Values of one dtype and row shape appended one at a time, kept in numpy blocks of
    :attr:`BLOCK` rows: no Python object per row, at most one block not yet filled."""

    BLOCK = 4096

    def __init__(self, dtype: type, shape: tuple[int, ...] = ()) -> None:
        self.dtype, self.shape = dtype, shape
        self._blocks: list[np.ndarray] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, value: float | np.ndarray) -> None:
        if self._n % self.BLOCK == 0:
            self._blocks.append(np.empty((self.BLOCK, *self.shape), dtype=self.dtype))
        self._blocks[-1][self._n % self.BLOCK] = value
        self._n += 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self._blocks[i // self.BLOCK][i % self.BLOCK]

    def array(self) -> np.ndarray:
        """All values, (n, *shape) (a copy)."""
        if not self._blocks:
            return np.empty((0, *self.shape), dtype=self.dtype)
        return np.concatenate(self._blocks)[: self._n]


class FaceTrack(Sequence):
    """The tracked face of each frame of a video in compact arrays: 4 bytes per frame (the row
    of its face, -1 without) and 60 more per frame with the face (box, score and landmarks as
    float32; 120 as float64), where a list of :class:`Face` takes about 1 KB per frame with
    the face.

    ``track[t]`` is frame ``t``'s face (its box and score rounded to float32, or as appended
    with ``dtype`` float64) or None. The landmarks are kept at the precision the warp uses
    (:meth:`Face.landmarks_array`), so a crop aligned from :meth:`landmarks` is the crop of the
    face appended.

    Args:
        dtype: of the stored values: float32, or float64 where a track must continue from the
            exact box (``nrdfer predict``'s second pass).
    """

    _FIELDS = 15  # box (4), score, landmarks (5 x 2)

    def __init__(self, dtype: type = np.float32) -> None:
        self._row = _Column(np.int32)  # per frame: its row in ``_faces``, -1 without a face
        self._faces = _Column(dtype, (self._FIELDS,))

    def append(self, face: Face | None) -> None:
        """Add the next frame's tracked face (None where it is not seen)."""
        if face is None:
            self._row.append(-1)
            return
        self._row.append(len(self._faces))
        lm = face.landmarks_array().reshape(-1)  # (10,) float32: what the warp uses
        dtype = self._faces.dtype
        self._faces.append(
            np.concatenate([np.asarray(face.box, dtype), np.asarray([face.score], dtype), lm])
        )

    def __len__(self) -> int:
        return len(self._row)

    @property
    def detected(self) -> int:
        """Frames with the face."""
        return len(self._faces)

    def found(self) -> np.ndarray:
        """bool (T,): the frames with the face."""
        return self._row.array() >= 0

    def landmarks(self, t: int) -> np.ndarray:
        """The landmarks of frame ``t``'s face, float32 (5, 2) (``self[t].landmarks_array()``)."""
        row = int(self._row[t])
        if row < 0:
            raise ValueError(f"frame {t} holds no tracked face")
        return self._faces[row][5:].reshape(5, 2).astype(np.float32)  # a copy

    def __getitem__(self, t):  # type: ignore[override]
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(len(self)))]
        if t < 0:
            t += len(self)
        if not 0 <= t < len(self):
            raise IndexError(t)
        row = int(self._row[t])
        if row < 0:
            return None
        v = self._faces[row].tolist()  # 15 Python floats
        return Face(
            box=tuple(v[:4]),  # type: ignore[arg-type]
            score=v[4],
            landmarks=tuple(zip(v[5::2], v[6::2], strict=True)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaceTrack):
            return NotImplemented
        return np.array_equal(self._row.array(), other._row.array()) and np.array_equal(
            self._faces.array(), other._faces.array()
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass
class VideoFaces:
    """The tracked, aligned face clip of one video.

    Attributes:
        status: ``ok`` or ``no_face``.
        crops: uint8 (T, S, S, 3) aligned RGB crops, or None when no face was found (and
            from :func:`faces_in_stream`, which hands the crops out one at a time).
        track: the tracked face per frame: detected on a key frame or interpolated between
            two (None where neither), in compact arrays.
        face_counts: int32 (T,): number of faces the detector returned per key frame (0
            elsewhere).
        detect_every: the detector ran on every ``detect_every``-th frame and the last.
    """

    status: str
    crops: np.ndarray | None
    track: FaceTrack
    face_counts: np.ndarray
    detect_every: int

    @property
    def detected(self) -> int:
        """Frames with the tracked face, detected or interpolated (not filled)."""
        return self.track.detected

    @property
    def max_faces(self) -> int:
        """The most faces the detector returned in one frame."""
        return int(self.face_counts.max(initial=0))

    @property
    def faces_per_frame(self) -> list[int]:
        """:attr:`face_counts` as a list."""
        return self.face_counts.tolist()

    @property
    def keys(self) -> list[int]:
        """The frames the detector ran on."""
        n = len(self.track)
        keys = list(range(0, n, max(1, self.detect_every)))
        return keys + [n - 1] if keys and keys[-1] != n - 1 else keys

    @property
    def source(self) -> list[int]:
        """For each frame, the index of the frame whose landmarks align it ([] without a face)."""
        return nearest_detected(self.track.found()) if self.detected else []


def warp_track(
    frames: Iterable[np.ndarray],
    track: FaceTrack,
    output_size: int,
    name: str = "the video",
) -> Iterator[np.ndarray]:
    """The aligned crop (S, S, 3) of each frame, one at a time: frame ``t`` warped with the
    transform of the landmarks of the nearest frame with the face (:func:`nearest_detected`).

    Raises:
        UserError: ``frames`` holds another number of frames than the track (a video that
            decodes differently the second time; ``name`` names it).
    """
    source = nearest_detected_array(track.found())  # (T,) int64: 8 bytes per frame
    current, matrix = -1, None
    count = 0
    for frame in frames:
        if count == len(source):
            count += 1  # one more than the track: stop
            break
        if source[count] != current:  # source never decreases: each transform is made once
            current = int(source[count])
            matrix = similarity_transform(track.landmarks(current), output_size)
        yield warp(frame, matrix, output_size)
        count += 1
    if count != len(source):
        raise UserError(
            f"{name}: decoded to another number of frames on the second pass than on the "
            f"first ({len(source)}); re-encode it"
        )


RETAIN_BYTES = 256 * 2**20
"""A clip whose decoded frames take at most this many bytes is kept in memory between tracking
and warping (AFEW's clips: one decode); a longer video is decoded a second time for the warp,
so memory does not grow with its length."""


def track_stream(
    frames: Iterable[np.ndarray],
    detector: FaceDetector,
    detect_every: int = 1,
    retain_bytes: float = 0,
) -> tuple[VideoFaces, list[np.ndarray] | None]:
    """Detect and track the face through frames given one at a time (the first pass of
    :func:`faces_in_stream`). Holds at most one detector batch of key frames and the frames
    between them, plus the frames themselves while they take at most ``retain_bytes``; what
    it keeps of every frame is the compact :class:`FaceTrack` record and a face count.

    Returns:
        The track (``crops`` None) and the frames when they were kept, else None.
    """
    every = max(1, detect_every)
    batch = getattr(detector, "batch_size", 16)
    tracker = FaceTracker()
    track = FaceTrack()  # frames before ``base``
    counts = _Column(np.int32)  # faces found per frame, frames before ``base``
    # from frame ``base`` (the last key frame detected, 0 at first) on:
    held: list[np.ndarray] = []  # the frames
    live: list[Face | None] = []  # the tracked face
    live_counts: list[int] = []
    keys: list[int] = []  # the key frames
    pending: list[int] = []  # the key frames not yet detected
    base = 0
    kept: list[np.ndarray] | None = []
    kept_bytes = 0

    def commit(upto: int) -> None:
        """Move the frames before ``upto`` (relative to ``base``) to the compact record."""
        nonlocal held, live, live_counts
        for face, count in zip(live[:upto], live_counts[:upto], strict=True):
            track.append(face)
            counts.append(count)
        held, live, live_counts = held[upto:], live[upto:], live_counts[upto:]

    def flush() -> None:
        nonlocal base, keys, pending
        stack = np.stack([held[k - base] for k in pending])  # (n, H, W, 3)
        for k, (faces, face) in zip(pending, detect_tracked(stack, detector, tracker), strict=True):
            live[k - base], live_counts[k - base] = face, len(faces)
        for k0, k1 in zip(keys[:-1], keys[1:], strict=True):  # one interval at a time
            if k1 - k0 < 2:
                continue  # no frame between them
            a, b = k0 - base, k1 - base
            between = np.stack(held[a : b + 1])  # (k1 - k0 + 1, H, W, 3)
            filled = track_between(between, live[a : b + 1], [0, k1 - k0])
            live[a + 1 : b] = filled[1:-1]
        commit(keys[-1] - base)
        base, keys, pending = keys[-1], keys[-1:], []

    n = 0
    for t, frame in enumerate(frames):
        n = t + 1
        held.append(frame)
        live.append(None)
        live_counts.append(0)
        if kept is not None:
            kept_bytes += frame.nbytes
            kept.append(frame)
            if kept_bytes > retain_bytes:
                kept = None
        if t % every == 0:
            keys.append(t)
            pending.append(t)
            if len(pending) == batch:
                flush()
    if n == 0:
        raise ValueError("no frames")
    if keys[-1] != n - 1:
        keys.append(n - 1)
        pending.append(n - 1)
    if pending:
        flush()
    commit(len(live))
    status = STATUS_OK if track.detected else STATUS_NO_FACE
    return VideoFaces(status, None, track, counts.array(), every), kept


def faces_in_stream(
    open_frames: Callable[[], Iterable[np.ndarray]],
    detector: FaceDetector,
    output_size: int,
    detect_every: int = 1,
    retain_bytes: float = RETAIN_BYTES,
    name: str = "the video",
) -> tuple[VideoFaces, Iterator[np.ndarray] | None]:
    """:func:`faces_in_video` in constant memory: the frames are read once to track the face,
    and once more (from memory when they took at most ``retain_bytes``, else by calling
    ``open_frames`` again) to warp them.

    Args:
        open_frames: returns an iterable over the clip's frames, the same each call.
        detector: a face detector backend.
        output_size: side of the aligned square crops.
        detect_every: run the detector on every n-th frame and the last.
        retain_bytes: keep the decoded frames for the warp while they take at most this.
        name: the video, for the error of one that decodes differently the second time.

    Returns:
        The track (``crops`` None) and an iterator over the aligned crops (S, S, 3), or None
        when no frame has a face.
    """
    result, kept = track_stream(open_frames(), detector, detect_every, retain_bytes)
    if result.status != STATUS_OK:
        return result, None
    frames = kept if kept is not None else open_frames()
    return result, warp_track(frames, result.track, output_size, name)


def faces_in_video(
    frames: np.ndarray, detector: FaceDetector, output_size: int, detect_every: int = 1
) -> VideoFaces:
    """Detect, track and align the face of a clip.

    Args:
        frames: uint8 RGB frames (T, H, W, 3).
        detector: a face detector backend.
        output_size: side of the aligned square crops.
        detect_every: run the detector on every n-th frame and the last; the landmarks of
            the frames between two key frames with the face are carried by optical flow
            (1: every frame).

    Returns:
        The aligned clip, or status ``no_face`` (crops None) when no frame has a face.
    """
    result, crops = faces_in_stream(
        lambda: iter(frames), detector, output_size, detect_every, retain_bytes=math.inf
    )
    if crops is not None:
        result.crops = np.stack(list(crops))  # (T, S, S, 3)
    return result
