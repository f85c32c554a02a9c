"""Per-clip tracking, gap filling from the nearest detected frame, and clips without a face."""

from __future__ import annotations

import numpy as np

from nrdfer.preprocess.faces import Face, TinyRetinaFace
from nrdfer.preprocess.track import (
    STATUS_NO_FACE,
    STATUS_OK,
    FaceTracker,
    faces_in_video,
    nearest_detected,
)

from .conftest import scene


def face_at(x: float, y: float, size: float = 40, score: float = 0.99) -> Face:
    pts = ((x + 12, y + 15), (x + 28, y + 15), (x + 20, y + 24), (x + 14, y + 32), (x + 26, y + 32))
    return Face((x, y, x + size, y + size), score, pts)


def track_faces(per_frame):
    """One tracker through the frames' faces: the tracked face per frame (None where unseen)."""
    tracker = FaceTracker()
    return [tracker.update(faces) for faces in per_frame]


def test_track_keeps_the_continuing_face():
    # frame 0: one face at the left; from frame 1 a larger face appears at the right
    frames = [
        [face_at(10, 10)],
        [face_at(200, 10, size=80), face_at(14, 12)],
        [face_at(18, 14), face_at(204, 12, size=80)],
        [face_at(206, 12, size=80)],  # the tracked face is missed here
        [face_at(208, 14, size=80), face_at(24, 16)],
    ]
    track = track_faces(frames)
    assert [f.box[0] if f else None for f in track] == [10, 14, 18, None, 24]


def test_track_starts_with_largest_face():
    track = track_faces([[], [face_at(0, 0, 20), face_at(100, 0, 60)], [face_at(102, 2, 60)]])
    assert track[0] is None and track[1].box[0] == 100 and track[2].box[0] == 102


def test_nearest_detected_fills_gaps():
    assert nearest_detected([False, True, False, False, False, True, False]) == [
        1,
        1,
        1,
        1,
        5,
        5,
        5,
    ]
    assert nearest_detected([False, False, True]) == [2, 2, 2]


class FakeDetector:
    """Returns preset faces per frame (for exact fill tests)."""

    def __init__(self, per_frame):
        self.per_frame = per_frame

    def detect(self, frames):
        assert len(frames) == len(self.per_frame)
        return self.per_frame


def test_fill_uses_nearest_detected_frame_transform():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 80, 80, 3), dtype=np.uint8)
    det = FakeDetector([[], [face_at(10, 10)], [], [face_at(30, 30)]])
    result = faces_in_video(frames, det, 32)
    assert result.status == STATUS_OK and result.crops.shape == (4, 32, 32, 3)
    assert result.source == [1, 1, 1, 3]
    assert result.detected == 2
    # frame 0 and 2 are warped with frame 1's transform, frame 3 with its own
    ref = faces_in_video(frames, FakeDetector([[face_at(10, 10)]] * 4), 32)
    assert np.array_equal(result.crops[0], ref.crops[0])
    assert np.array_equal(result.crops[2], ref.crops[2])


def test_clip_without_face_is_reported():
    blank = np.full((3, 64, 64, 3), 120, np.uint8)
    result = faces_in_video(blank, TinyRetinaFace(), 112)
    assert result.status == STATUS_NO_FACE and result.crops is None and result.detected == 0


def test_real_two_face_scene(face_patch):
    # the small face on the left starts the track (only face in frame 0), a second appears
    small = face_patch
    frames = np.stack(
        [scene(small, [(10, 30)])]
        + [scene(small, [(10 + 2 * t, 30), (100, 40)]) for t in range(1, 3)]
    )
    result = faces_in_video(frames, TinyRetinaFace(), 56)
    assert result.status == STATUS_OK and max(result.faces_per_frame) == 2
    assert all(f is not None and f.center[0] < 96 for f in result.track)


class OneFacePerFrame:
    """A detector that finds one new Face object in every frame, as a real one does."""

    batch_size = 16

    def detect(self, frames):
        return [[face_at(10.0 + (i % 3) * 0.5, 10.0)] for i in range(len(frames))]


def test_track_stream_keeps_a_few_bytes_per_frame():
    """What the first pass keeps of each frame with the face is a compact record (about 70
    bytes), not Face objects (about 1 KB per frame): measured between 4096 and 12288 frames
    (whole blocks of the record)."""
    import gc
    import itertools
    import tracemalloc

    from nrdfer.preprocess.track import track_stream

    frame = np.zeros((8, 8, 3), np.uint8)
    kept = {}
    tracemalloc.start()
    try:
        for n in (4096, 12288):
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            result, _ = track_stream(itertools.repeat(frame, n), OneFacePerFrame())
            gc.collect()
            kept[n] = tracemalloc.get_traced_memory()[0] - before
            assert result.detected == n and result.max_faces == 1
            del result
    finally:
        tracemalloc.stop()
    per_frame = (kept[12288] - kept[4096]) / (12288 - 4096)
    assert 0 < per_frame < 100, per_frame


def test_nearest_detected_for_some_frames_equals_all_frames():
    from nrdfer.preprocess.track import nearest_detected_array

    rng = np.random.default_rng(0)
    for _ in range(200):
        detected = rng.random(int(rng.integers(1, 60))) < rng.random()
        if not detected.any():
            continue
        frames = np.sort(rng.choice(len(detected), int(rng.integers(1, len(detected) + 1))))
        assert np.array_equal(
            nearest_detected_array(detected, frames), nearest_detected_array(detected)[frames]
        )


def test_float64_face_track_keeps_the_faces_exactly():
    """A float64 FaceTrack hands back the box and score appended (the float32 one rounds them)
    and the landmarks at the warp's float32 precision in both."""
    from nrdfer.preprocess.track import FaceTrack

    face = Face((10.1, 20.3, 50.7, 61.9), 0.987654321, ((1.1, 2.2), (3.3, 4.4), (5.5, 6.6),
                (7.7, 8.8), (9.9, 10.01)))  # fmt: skip
    exact, rounded = FaceTrack(np.float64), FaceTrack()
    for track in (exact, rounded):
        track.append(None)
        track.append(face)
    assert exact[0] is None and exact[1].box == face.box and exact[1].score == face.score
    assert rounded[1].box != face.box
    for track in (exact, rounded):
        got = track.landmarks(1)
        assert got.dtype == np.float32 and np.array_equal(got, face.landmarks_array())
        assert np.array_equal(track[1].landmarks_array(), face.landmarks_array())
