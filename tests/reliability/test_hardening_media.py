"""Hostile media and model files (docs/reliability.md, "Hostile media and model files"):
same-stem videos, rotated phone videos, damaged or oversized model files, bad ``--window``
values, interrupted and piped ``nrdfer predict``, and the long-video helpers that keep memory
flat. Each case gives the right answer or exit 2 with one ``error:`` line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nrdfer.cli import main
from nrdfer.params import load_params
from nrdfer.preprocess.pipeline import clip_conflicts, detect_align_tree
from nrdfer.preprocess.video import VideoStream, orientation_of_matrix
from tests.conftest import ROOT
from tests.predict.conftest import face_frames, write_model_file
from tests.preprocess.conftest import FACE_BOX, moving_face_frames, write_video

from .tiny import write_tiny_params


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def face_patch() -> np.ndarray:
    import skimage.data

    x1, y1, x2, y2 = FACE_BOX
    return cv2.resize(skimage.data.astronaut()[y1:y2, x1:x2], (85, 100))


@pytest.fixture
def detect_params(tmp_path):
    path = write_tiny_params(tmp_path / "params.yaml")
    return load_params(path, ["detect_align"])["detect_align"]


# ------------------------------------------------------------------------------------------
# one clip folder per input
# ------------------------------------------------------------------------------------------


def test_clip_conflicts_names_same_stems_and_nested_clips():
    rels = ["V/Happy/clip1.avi", "V/Happy/clip1.mp4", "V/Happy/clip2.avi", "V/Sad/clip1.avi",
            "a/b.avi", "a/b/c.avi", "a/bc.avi"]  # fmt: skip
    out = clip_conflicts(rels)
    assert set(out) == {"V/Happy/clip1", "a/b", "a/b/c"}
    assert out["V/Happy/clip1"]["status"] == "duplicate_id"
    assert "clip1.avi, clip1.mp4" in out["V/Happy/clip1"]["reason"]
    assert out["a/b"]["status"] == out["a/b/c"]["status"] == "nested_clip"
    assert "c.avi" in out["a/b"]["reason"] and "b.avi" in out["a/b/c"]["reason"]
    assert clip_conflicts(["x/1.avi", "x/2.mp4", "y/1.avi"]) == {}


def test_same_stem_videos_are_both_left_out_and_listed_once(
    tmp_path, detect_params, face_patch, capsys
):
    """``clip1.avi`` and ``clip1.mp4`` in one folder: both refused (``duplicate_id``, as raw
    AFEW ingest does), one report row, nothing written under ``clip1``; a re-run redoes no
    work; an earlier run's folder for one of them is removed."""
    videos, out, report = tmp_path / "AFEW", tmp_path / "faces", tmp_path / "report.csv"
    frames = moving_face_frames(face_patch, 3)
    write_video(videos / "Val_AFEW/Happy/clip1.avi", frames)
    write_video(videos / "Val_AFEW/Happy/clip2.avi", frames)
    # a run before the second copy existed
    detect_align_tree(videos, out, report, detect_params)
    assert (out / "Val_AFEW/Happy/clip1/00001.jpg").is_file()
    (videos / "Val_AFEW/Happy/clip1.mp4").write_bytes(
        (videos / "Val_AFEW/Happy/clip1.avi").read_bytes()
    )
    summary = detect_align_tree(videos, out, report, detect_params)
    assert summary.by_status == {"duplicate_id": 2} and summary.refused == 2
    assert (summary.total, summary.processed, summary.skipped) == (3, 0, 1)
    rows = rows_of(report)
    assert [r["clip"] for r in rows] == ["Val_AFEW/Happy/clip1", "Val_AFEW/Happy/clip2"]
    dup = rows[0]
    assert dup["status"] == "duplicate_id"
    assert "clip1.avi, clip1.mp4" in dup["reason"] and "rename or remove" in dup["reason"]
    assert not (out / "Val_AFEW/Happy/clip1").exists()
    assert "left out Val_AFEW/Happy/clip1" in capsys.readouterr().err
    before = report.read_bytes()
    state = out / ".state/Val_AFEW/Happy/clip1.json"
    mtime = state.stat().st_mtime_ns
    again = detect_align_tree(videos, out, report, detect_params)
    assert (again.processed, again.skipped) == (0, 1)
    assert report.read_bytes() == before and state.stat().st_mtime_ns == mtime
    # one copy removed: the other is processed on the next run
    (videos / "Val_AFEW/Happy/clip1.mp4").unlink()
    assert detect_align_tree(videos, out, report, detect_params).processed == 1
    assert (out / "Val_AFEW/Happy/clip1/00001.jpg").is_file()
    assert [r["status"] for r in rows_of(report)] == ["ok", "ok"]


def test_a_clip_folder_inside_another_clip_folder_is_refused(tmp_path, detect_params, face_patch):
    """``a/b.avi`` next to ``a/b/c.avi``: writing ``a/b`` would replace the folder holding
    ``a/b/c``; both are left out (``nested_clip``)."""
    videos, out, report = tmp_path / "v", tmp_path / "faces", tmp_path / "report.csv"
    frames = moving_face_frames(face_patch, 3)
    write_video(videos / "a/b.avi", frames)
    write_video(videos / "a/b/c.avi", frames)
    summary = detect_align_tree(videos, out, report, detect_params)
    assert summary.by_status == {"nested_clip": 2}
    assert {r["clip"]: r["status"] for r in rows_of(report)} == {
        "a/b": "nested_clip", "a/b/c": "nested_clip"
    }  # fmt: skip
    assert not list(out.rglob("*.jpg"))


# ------------------------------------------------------------------------------------------
# display rotation (phone videos)
# ------------------------------------------------------------------------------------------


def write_shown_as(path: Path, shown: np.ndarray, degrees: int = 0, hflip: bool = False) -> Path:
    """A lossless video (FFV1, .mkv) whose display matrix (PyAV ``set_display_rotation``:
    ``degrees`` counter-clockwise, then a mirror) shows ``shown`` (T, H, W, 3): the frames
    stored are ``shown`` turned back, as a phone stores a portrait video."""
    import av

    stored = shown[:, :, ::-1] if hflip else shown
    stored = np.ascontiguousarray(np.rot90(stored, -(degrees // 90), axes=(1, 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height = stored.shape[2], stored.shape[1]
        stream.pix_fmt = "bgr0"  # lossless RGB: the shown frames come back bit for bit
        if degrees or hflip:
            stream.set_display_rotation(degrees, hflip=hflip)
        for frame in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("degrees", [0, 90, 180, 270, -90])
@pytest.mark.parametrize("hflip", [False, True])
def test_every_display_orientation_is_applied(tmp_path, degrees, hflip):
    """The frames come out as shown for the eight orientations a display matrix can state
    (PyAV reads ``frame.rotation`` back; the stored frames are landscape, shown portrait)."""
    shown = np.random.default_rng(0).integers(0, 256, (3, 40, 24, 3), dtype=np.uint8)
    path = write_shown_as(tmp_path / "v.mkv", shown, degrees, hflip)
    got = np.stack([f.rgb for f in VideoStream(path).frames()])
    assert np.array_equal(got, shown)


def test_orientation_of_matrix_rounds_to_quarter_turns():
    c, s = np.cos(np.radians(80)), np.sin(np.radians(80))
    assert orientation_of_matrix([c, -s, 0, s, c, 0, 0, 0, 1]) == (1, False)
    assert orientation_of_matrix([0, 0, 0, 0, 0, 0, 0, 0, 1]) == (0, False)  # degenerate
    assert orientation_of_matrix([-1, 0, 0, 0, 1, 0, 0, 0, 1]) == (0, True)


def test_portrait_videos_give_the_upright_results_everywhere(
    tmp_path, face_patch, detect_params, model_file, capsys
):
    """A face video stored turned (display rotation 90, 180 or 270 degrees) gives, in
    detect_align, ``nrdfer faces`` and ``nrdfer predict``, what its upright copy gives."""
    upright = moving_face_frames(face_patch, 4)  # (4, 160, 192, 3)
    tree = tmp_path / "AFEW"
    for degrees in (0, 90, 180, 270):
        write_shown_as(tree / f"Val_AFEW/R{degrees}/clip.mkv", upright, degrees)
    out = tmp_path / "faces"
    summary = detect_align_tree(tree, out, tmp_path / "report.csv", detect_params)
    assert summary.by_status == {"ok": 4}
    crops = {d: sorted((out / f"Val_AFEW/R{d}/clip").iterdir()) for d in (0, 90, 180, 270)}
    for d in (90, 180, 270):
        assert [p.read_bytes() for p in crops[d]] == [p.read_bytes() for p in crops[0]]

    def faces(video: Path) -> dict:
        argv = ["faces", str(video), "--json", "--params", str(ROOT / "params.yaml")]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    want = faces(tree / "Val_AFEW/R0/clip.mkv")
    assert (want["width"], want["height"]) == (192, 160) and want["frames"][0]["faces"]
    got = faces(tree / "Val_AFEW/R90/clip.mkv")
    assert got["frames"] == want["frames"] and (got["width"], got["height"]) == (192, 160)

    videos = [
        write_shown_as(tmp_path / f"p{d}.mkv", face_frames(face_patch, 12), d) for d in (0, 90)
    ]
    assert main(["predict", *map(str, videos), "--checkpoint", str(model_file), "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)["results"]
    for key in ("label", "probs", "sampled_frames", "detected_frames"):
        assert a[key] == b[key]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_model_file(tmp_path_factory.mktemp("model") / "model.pt")
