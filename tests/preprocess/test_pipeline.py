"""The detect_align and enhance stages end to end on a tiny AFEW-layout tree: layout, reports,
no-face and corrupt clips, resume, parallel workers."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from nrdfer.params import load_params
from nrdfer.preprocess.pipeline import detect_align_tree, enhance_tree
from nrdfer.preprocess.video import read_frames, read_video
from tests.conftest import ROOT, load_stage_module

from .conftest import moving_face_frames, write_video


def read_csv(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["clip"]: row for row in csv.DictReader(fh)}


@pytest.fixture
def afew_tree(tmp_path, face_patch) -> Path:
    root = tmp_path / "AFEW"
    write_video(root / "Train_AFEW/Happy/001.avi", moving_face_frames(face_patch, 4))
    write_video(root / "Train_AFEW/Sad/002.avi", moving_face_frames(face_patch, 4, brightness=0.2))
    write_video(root / "Val_AFEW/Angry/003.avi", np.full((3, 96, 96, 3), 100, np.uint8))
    bad = root / "Val_AFEW/Fear/004.avi"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"RIFF\x00\x00 not a video at all" * 10)
    return root


@pytest.fixture
def params_file(tmp_path) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["detect_align"].update(workers=1, output_size=64, batch_size=4)
    raw["enhance"].update(workers=1)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_video_reader(afew_tree):
    frames = read_video(afew_tree / "Train_AFEW/Happy/001.avi")
    assert frames.shape == (4, 160, 192, 3) and frames.dtype == np.uint8
    assert read_video(afew_tree / "Train_AFEW/Happy/001.avi", stride=2, max_frames=1).shape[0] == 1


def test_video_stream_counts_and_streams_the_same_frames(afew_tree):
    """The one PyAV reader: read_video is VideoStream's frames; frame_count (the progress bar's
    total) is what the container states, after the stride; 0 for a file it cannot open."""
    from nrdfer.preprocess.video import VideoStream

    path = afew_tree / "Train_AFEW/Happy/001.avi"
    stream = VideoStream(path)
    frames = [f.rgb for f in stream.frames()]
    assert stream.frame_count() == len(frames) == 4
    assert np.array_equal(np.stack(frames), read_video(path))
    assert VideoStream(path, stride=3).frame_count() == 2
    assert [f.rgb is None for f in stream.frames(want={1}, stop=2)] == [True, False, True]
    assert VideoStream(afew_tree / "missing.avi").frame_count() == 0


def test_stages_end_to_end_and_resume(afew_tree, params_file, tmp_path, capsys):
    faces, enhanced = tmp_path / "faces", tmp_path / "enhanced"
    det_report, enh_report = tmp_path / "detect_report.csv", tmp_path / "enhance_report.csv"
    detect = load_stage_module("stages/detect_align.py")
    detect.main(
        ["--params", str(params_file), "--videos", str(afew_tree), "--out", str(faces),
         "--report", str(det_report)]
    )  # fmt: skip
    rows = read_csv(det_report)
    assert rows["Train_AFEW/Happy/001"]["status"] == "ok"
    assert rows["Train_AFEW/Happy/001"]["frames"] == "4"
    assert rows["Train_AFEW/Sad/002"]["status"] == "ok"
    assert rows["Val_AFEW/Angry/003"]["status"] == "no_face"
    assert rows["Val_AFEW/Fear/004"]["status"] == "error"
    assert "004.avi" in rows["Val_AFEW/Fear/004"]["reason"]
    clip = faces / "Train_AFEW/Happy/001"
    assert sorted(p.name for p in clip.iterdir()) == [f"{i:05d}.jpg" for i in range(1, 5)]
    frames, _, _ = read_frames(clip)
    assert frames.shape == (4, 64, 64, 3)
    assert not (faces / "Val_AFEW/Angry/003").exists()
    assert not (faces / "Val_AFEW/Fear/004").exists()

    enhance = load_stage_module("stages/enhance.py")
    enhance.main(
        ["--params", str(params_file), "--faces", str(faces), "--out", str(enhanced),
         "--report", str(enh_report)]
    )  # fmt: skip
    erows = read_csv(enh_report)
    assert set(erows) == {"Train_AFEW/Happy/001", "Train_AFEW/Sad/002"}
    assert erows["Train_AFEW/Happy/001"]["enhanced_frames"] == "0"
    assert erows["Train_AFEW/Sad/002"]["enhanced_frames"] == "4"
    assert erows["Train_AFEW/Sad/002"]["enhanced"].split() == [f"{i:05d}.jpg" for i in range(1, 5)]
    dark_out, _, _ = read_frames(enhanced / "Train_AFEW/Sad/002")
    dark_in, _, _ = read_frames(faces / "Train_AFEW/Sad/002")
    assert dark_out.mean() > dark_in.mean() + 10

    # resume: done clips (ok and no_face) are skipped, the error is retried
    params = load_params(params_file, ["detect_align"])["detect_align"]
    mtime = (clip / "00001.jpg").stat().st_mtime_ns
    summary = detect_align_tree(afew_tree, faces, det_report, params)
    assert (summary.total, summary.skipped, summary.processed) == (4, 3, 1)
    assert summary.by_status == {"error": 1}
    assert (clip / "00001.jpg").stat().st_mtime_ns == mtime
    assert len(read_csv(det_report)) == 4
    # an interrupted clip (leftover temp folder, no state) is redone; a changed param redoes all
    (faces / ".state/Train_AFEW/Happy/001.json").unlink()
    assert detect_align_tree(afew_tree, faces, det_report, params).processed == 2
    bigger = dataclasses.replace(params, output_size=48)
    assert detect_align_tree(afew_tree, faces, det_report, bigger).processed == 4
    assert read_frames(clip)[0].shape == (4, 48, 48, 3)
    eparams = load_params(params_file, ["enhance"])["enhance"]
    assert enhance_tree(faces, enhanced, enh_report, eparams).processed == 2  # inputs changed


@pytest.mark.slow
def test_parallel_workers(afew_tree, params_file, tmp_path):
    params = load_params(params_file, ["detect_align"])["detect_align"]
    params = dataclasses.replace(params, workers=2)
    summary = detect_align_tree(afew_tree, tmp_path / "faces", tmp_path / "r.csv", params)
    assert summary.by_status == {"ok": 2, "no_face": 1, "error": 1}
    assert len(list((tmp_path / "faces").rglob("*.jpg"))) == 8


def test_detect_align_on_generated_demo_afew(tmp_path, params_file):
    synth = pytest.importorskip("nrdfer.data.synth")
    params = load_params(params_file, ["base", "synth", "detect_align"])
    sp = dataclasses.replace(params["synth"], afew_frames=(4, 5), afew_dark_share=0.5)
    synth.generate(tmp_path / "demo", sp, seed=1, clips=4, layout="afew", workers=1, progress=False)
    summary = detect_align_tree(
        tmp_path / "demo/AFEW", tmp_path / "faces", tmp_path / "r.csv", params["detect_align"]
    )
    assert summary.by_status == {"ok": 4}
    rows = read_csv(tmp_path / "r.csv")
    assert all(r["clip"].split("/")[0] in ("Train_AFEW", "Val_AFEW") for r in rows.values())
    assert all(int(r["detected_frames"]) >= 1 for r in rows.values())
