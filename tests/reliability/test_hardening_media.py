"""Hostile media and model files (docs/reliability.md, "Hostile media and model files"):
same-stem videos, rotated phone videos, damaged or oversized model files, bad ``--window``
values, interrupted and piped ``nrdfer predict``, and the long-video helpers that keep memory
flat. Each case gives the right answer or exit 2 with one ``error:`` line."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from nrdfer.params import load_params
from nrdfer.preprocess.pipeline import clip_conflicts, detect_align_tree
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
