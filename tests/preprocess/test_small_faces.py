"""Small faces in large frames (the detector's second pass) and sparse detection with landmark
interpolation (``detect_align.detect_every``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nrdfer.data.synth.face import sample_identity
from nrdfer.data.synth.scene import ClipSpec, render_clip
from nrdfer.params import DetectAlignParams, from_dict, load_params
from nrdfer.preprocess.align import similarity_transform, transform_points
from nrdfer.preprocess.faces import DETECTABLE_PX, TinyRetinaFace
from nrdfer.preprocess.tools import build_detector
from nrdfer.preprocess.track import (
    FaceTracker,
    detect_tracked,
    faces_in_video,
    fill_between,
)
from tests.conftest import ROOT

from .conftest import FACE_BOX


def _group_4k(astronaut, face_px: int, n: int = 4) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A 3840 x 2160 canvas with ``n`` astronaut heads whose faces are about ``face_px`` wide."""
    x1, y1, x2, y2 = FACE_BOX
    head = astronaut[y1:y2, x1:x2]
    s = face_px / 50.0  # the astronaut's face is about 50 px wide in the photo
    head = cv2.resize(head, (round(head.shape[1] * s), round(head.shape[0] * s)), cv2.INTER_AREA)
    canvas = np.full((2160, 3840, 3), 120, np.uint8)
    canvas[:, :, 1] = np.linspace(60, 200, 3840, dtype=np.uint8)[None, :]  # a gradient
    centres = []
    for i in range(n):
        ox, oy = 300 + i * 900, 400 + (i % 2) * 900
        canvas[oy : oy + head.shape[0], ox : ox + head.shape[1]] = head
        centres.append((ox + (225 - x1) * s, oy + (120 - y1) * s))  # the face centre
    return canvas, centres


def _hits(faces, centres, tol: float) -> int:
    return sum(
        any(np.hypot(f.center[0] - x, f.center[1] - y) < tol for f in faces) for x, y in centres
    )


def test_second_pass_finds_faces_of_1_5_percent_in_4k(astronaut):
    canvas, centres = _group_4k(astronaut, face_px=60)  # 1.6 % of 3840
    coarse = TinyRetinaFace(max_side=640).detect(canvas)[0]
    assert _hits(coarse, centres, 30) == 0  # 10 px after shrinking to 640: invisible
    two = TinyRetinaFace(max_side=640, min_face=0.015)
    assert two.fine_scale(2160, 3840) == pytest.approx(DETECTABLE_PX / (0.015 * 3840))
    faces = two.detect(canvas)[0]
    assert _hits(faces, centres, 30) == 4
    assert two.detect(canvas, fine=False)[0] == coarse  # fine=False: the first pass alone


def test_params_default_runs_the_second_pass():
    p = load_params(ROOT / "params.yaml", ["detect_align"])["detect_align"]
    det = build_detector(p)
    assert p.min_face == 0.015 and det.min_face == 0.015
    assert det.fine_scale(2160, 3840) is not None
    assert det.fine_scale(360, 640) is None  # no pass above full resolution: never needed
    assert TinyRetinaFace(max_side=640).fine_scale(2160, 3840) is None  # min_face 0


def test_second_pass_only_where_the_track_is_missed(astronaut, monkeypatch):
    canvas, _ = _group_4k(astronaut, face_px=60, n=1)
    big, _ = _group_4k(astronaut, face_px=300, n=1)  # found by the first pass
    det = TinyRetinaFace(max_side=640, min_face=0.015)
    calls = []
    real = det.detect_fine
    monkeypatch.setattr(det, "detect_fine", lambda f: calls.append(len(f)) or real(f))
    out = detect_tracked(np.stack([big, big]), det, FaceTracker())
    assert calls == [] and all(face is not None for _, face in out)
    out = detect_tracked(np.stack([canvas, canvas]), det, FaceTracker())
    assert calls == [1, 1] and all(face is not None for _, face in out)


def test_interpolation_between_key_frames():
    from nrdfer.preprocess.faces import Face

    a = Face((0, 0, 10, 10), 0.9, tuple((float(i), 0.0) for i in range(5)))
    b = Face((10, 0, 20, 10), 0.9, tuple((float(i) + 10, 4.0) for i in range(5)))
    track = fill_between([a, None, None, None, b, None, None], [0, 4, 6])
    assert track[2].box == (5.0, 0.0, 15.0, 10.0)
    np.testing.assert_allclose(track[1].landmarks_array()[:, 1], 1.0)
    assert track[5] is None  # the key frame 6 has no face: nothing to interpolate towards


def _moving_clip(seed: int, n: int = 30, size=(480, 360)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spec = ClipSpec(
        label=3, n_frames=n, size=size, face_size=(0.2, 0.24), position_spread=0.1,
        head_motion=1.5, intensity=(0.8, 1.0), n1_kind=None, n1_frames=(), n2_window=None,
        dark_gain=None,
    )  # fmt: skip
    return render_clip(spec, rng, sample_identity(rng)).frames


def test_interpolated_landmarks_within_2px_at_112():
    det = TinyRetinaFace(max_side=640)
    errors = []
    for seed in (1, 2):
        frames = _moving_clip(seed)
        every = faces_in_video(frames, det, 112, detect_every=1)
        sparse = faces_in_video(frames, det, 112, detect_every=5)
        keys = sorted({*range(0, len(frames), 5), len(frames) - 1})  # every 5th and the last
        assert sparse.keys == keys and every.keys == list(range(len(frames)))
        assert sparse.detected == every.detected == len(frames)
        for t in set(range(len(frames))) - set(sparse.keys):
            m = similarity_transform(every.track[t].landmarks_array(), 112)  # the true crop
            true = transform_points(every.track[t].landmarks_array(), m)
            interp = transform_points(sparse.track[t].landmarks_array(), m)
            errors.append(np.linalg.norm(true - interp, axis=1).mean())
        for k in sparse.keys:  # key frames: the same crops as detecting every frame
            np.testing.assert_array_equal(sparse.crops[k], every.crops[k])
    assert np.mean(errors) <= 2.0, np.mean(errors)


def test_detect_every_param_and_old_model_files():
    p = load_params(ROOT / "params.yaml", ["detect_align"])["detect_align"]
    assert p.detect_every == 5
    from nrdfer.model_file import input_spec

    old = {k: v for k, v in p.__dict__.items() if k not in ("detect_every", "min_face")}
    spec = input_spec({"U": 2, "V": 4, "size": 32, "detect_align": old, "enhance": None}, "old.pt")
    assert spec.detect_align.detect_every == 1 and spec.detect_align.min_face == 0.0
    assert from_dict(DetectAlignParams, p.__dict__).detect_every == 5
