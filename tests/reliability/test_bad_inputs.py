"""Bad inputs the sub-system suites do not already cover (docs/reliability.md has the full
table): each gives a message naming the file and a next step, and the rest of the run goes on.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from nrdfer.data.manifest import read_manifest
from nrdfer.errors import UserError
from nrdfer.params import load_params
from nrdfer.preprocess.pipeline import enhance_tree
from tests.conftest import ROOT, load_stage_module
from tests.data.trees import make_afew, make_dfew, write_frames
from tests.preprocess.conftest import FACE_BOX, moving_face_frames

from .tiny import write_tiny_params

NEXT_STEP = ("pass ", "re-encode", "remove", "replace", "delete", "re-run", "run ", "check", "fix")
"""Words of a next step: every message must say what to do, not only what went wrong."""


def says_what_to_do(message: str) -> bool:
    return any(word in message.lower() for word in NEXT_STEP)


def rows_of(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["clip"]: row for row in csv.DictReader(fh)}


@pytest.fixture
def params(tmp_path) -> Path:
    return write_tiny_params(tmp_path / "params.yaml")


@pytest.fixture(scope="module")
def face_video_frames() -> np.ndarray:
    import skimage.data

    x1, y1, x2, y2 = FACE_BOX
    patch = cv2.resize(skimage.data.astronaut()[y1:y2, x1:x2], (85, 100))
    return moving_face_frames(patch, 3)


def _write(path: Path, frames: np.ndarray, fourcc: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def test_bad_videos_are_reported_and_the_others_processed(tmp_path, params, face_video_frames):
    videos = tmp_path / "AFEW"
    _write(videos / "Train_AFEW/Happy/good.avi", face_video_frames, "MJPG")
    (videos / "Train_AFEW/Sad").mkdir(parents=True)
    (videos / "Train_AFEW/Sad/empty.avi").write_bytes(b"")  # 0 bytes
    full = tmp_path / "full.mp4"
    _write(full, face_video_frames, "mp4v")
    raw = full.read_bytes()
    (videos / "Val_AFEW/Angry").mkdir(parents=True)
    (videos / "Val_AFEW/Angry/truncated.mp4").write_bytes(raw[: len(raw) // 3])
    (videos / "Val_AFEW/Fear/notes.mp4").parent.mkdir(parents=True)
    (videos / "Val_AFEW/Fear/notes.mp4").write_text("meeting notes, not a video\n" * 20)

    out, report = tmp_path / "faces", tmp_path / "report.csv"
    stage = load_stage_module("stages/detect_align.py")
    stage.main(["--params", str(params), "--videos", str(videos), "--out", str(out),
                "--report", str(report)])  # fmt: skip
    rows = rows_of(report)
    assert rows["Train_AFEW/Happy/good"]["status"] == "ok"  # the run went on
    assert len(list((out / "Train_AFEW/Happy/good").glob("*.jpg"))) == 3
    for clip, name in [("Train_AFEW/Sad/empty", "empty.avi"),
                       ("Val_AFEW/Angry/truncated", "truncated.mp4"),
                       ("Val_AFEW/Fear/notes", "notes.mp4")]:  # fmt: skip
        assert rows[clip]["status"] == "error", rows[clip]
        assert name in rows[clip]["reason"] and says_what_to_do(rows[clip]["reason"])
        assert not (out / clip).exists()


def test_corrupt_jpeg_in_a_clip_is_skipped_and_reported_in_enhance(tmp_path, params):
    """As in ingest: a frame that does not decode is skipped and listed, the clip is kept;
    a clip with no readable frame is reported as an error, the others finish."""
    faces = tmp_path / "faces"
    clips = {("Train_AFEW", "Sad", c): 3 for c in ("a", "b", "c")}
    make_afew(faces, clips, video=False)
    (faces / "Train_AFEW/Sad/b/00002.jpg").write_bytes(b"\xff\xd8\xff garbage")
    for frame in (faces / "Train_AFEW/Sad/c").iterdir():
        frame.write_bytes(b"not a jpeg")
    (faces / "Train_AFEW/Sad/empty").mkdir()  # a clip folder with zero frames: not a clip
    p = load_params(params, ["enhance"])["enhance"]
    summary = enhance_tree(faces, tmp_path / "out", tmp_path / "report.csv", p)
    assert summary.by_status == {"ok": 2, "error": 1}
    rows = rows_of(tmp_path / "report.csv")
    assert set(rows) == {"Train_AFEW/Sad/a", "Train_AFEW/Sad/b", "Train_AFEW/Sad/c"}
    assert rows["Train_AFEW/Sad/a"]["status"] == "ok" and rows["Train_AFEW/Sad/a"]["skipped"] == ""
    b = rows["Train_AFEW/Sad/b"]
    assert b["status"] == "ok" and b["frames"] == "2" and b["skipped"] == "00002.jpg"
    assert says_what_to_do(b["reason"])
    written = sorted(f.name for f in (tmp_path / "out/Train_AFEW/Sad/b").glob("*.jpg"))
    assert written == ["00001.jpg", "00003.jpg"]  # frame names kept, the damaged one left out
    c = rows["Train_AFEW/Sad/c"]
    assert c["status"] == "error" and "no readable image frame" in c["reason"]
    assert "3 do not decode" in c["reason"] and says_what_to_do(c["reason"])


def test_ingest_lists_each_left_out_clip_with_its_file(tmp_path, params, capsys):
    clips = {v: (1 + v % 7, 4) for v in range(1, 9)}
    clips[2] = (0, 4)  # label 0
    clips[3] = (8, 4)  # label 8
    root = make_dfew(tmp_path / "DFEW", clips, {v: 1 + v % 2 for v in clips},
                     extra_rows={"test/set_1": [("5", "6")]})  # fmt: skip  # 5 also in set_2
    (root / "Clip/clip_224x224/00004").mkdir(exist_ok=True)
    for f in (root / "Clip/clip_224x224/00004").iterdir():  # a clip folder with zero frames
        f.unlink()
    write_frames(root / "Clip/clip_224x224/00006", 0)
    (root / "Clip/clip_224x224/00007/00007_00002.jpg").write_bytes(b"broken")  # one bad frame
    stage = load_stage_module("stages/ingest.py")
    out = tmp_path / "m.parquet"
    stage.main(["--params", str(params), "--kind", "dfew", "--root", str(root), "--out", str(out)])
    text = capsys.readouterr().out
    table = read_manifest(out).set_index("clip_id")
    assert table.loc["00002", "status"] == table.loc["00003", "status"] == "bad_label"
    assert table.loc["00004", "status"] == "unreadable"
    assert table.loc["00005", "status"] == "duplicate_test"
    assert table.loc["00007", "status"] == "ok" and table.loc["00007", "bad_frames"] == 1
    assert (table["status"] == "ok").sum() == 4  # the rest goes on
    assert "re-run" in text and str(out) in text
    for clip in ("00002", "00003", "00004", "00005"):
        line = next(x for x in text.splitlines() if x.strip().startswith(clip))
        assert table.loc[clip, "status"] in line
    assert "Clip/clip_224x224/00004" in text


def test_duplicate_afew_ids_are_left_out_and_named(tmp_path):
    from nrdfer.data.manifest import describe_left_out, ingest

    tree = {("Train_AFEW", "Sad", "x1"): 3, ("Train_AFEW", "Happy", "x1"): 3,
            ("Train_AFEW", "Fear", "x2"): 3}  # fmt: skip
    table = ingest("afew", make_afew(tmp_path, tree, video=False), dfew_frames="x",
                   min_frames=1, verify=True)  # fmt: skip
    assert sorted(table["status"]) == ["duplicate_id", "duplicate_id", "ok"]
    lines = describe_left_out(table)
    assert len(lines) == 2 and all("x1" in x and "duplicate_id" in x for x in lines)


def _stage(name: str, args: dict[str, str], params: Path) -> None:
    argv = ["--params", str(params)]
    for flag, value in args.items():
        argv += [flag, value]
    load_stage_module(f"stages/{name}.py").main(argv)


MISSING_ROOT = {
    "detect_align": {"--videos": "{x}", "--out": "{t}/o", "--report": "{t}/r.csv"},
    "enhance": {"--faces": "{x}", "--out": "{t}/o", "--report": "{t}/r.csv"},
    "ingest": {"--kind": "afew", "--root": "{x}", "--out": "{t}/m.parquet"},
    "train": {"--shards": "{x}", "--fold": "1", "--checkpoint": "{t}/l.pt", "--model": "{t}/m.pt",
              "--live-metrics": "{t}/live/metrics.json",
              "--live-plots": "{t}/live/plots/metrics", "--summary": "{t}/s.json"},
}  # fmt: skip


@pytest.mark.parametrize("stage", list(MISSING_ROOT))
def test_a_data_root_that_does_not_exist(stage, tmp_path, params):
    missing = tmp_path / "no-such-root"
    args = {k: v.format(x=missing, t=tmp_path) for k, v in MISSING_ROOT[stage].items()}
    with pytest.raises(UserError) as info:
        _stage(stage, args, params)
    assert str(missing) in str(info.value) and says_what_to_do(str(info.value))


def test_shards_stage_with_a_missing_root(tmp_path, params):
    from nrdfer.data.folds import make_folds
    from nrdfer.data.manifest import ingest, write_manifest
    from nrdfer.io import write_json

    tree = {("Train_AFEW", "Sad", "a"): 2, ("Val_AFEW", "Sad", "b"): 2}
    table = ingest("afew", make_afew(tmp_path / "AFEW", tree, video=False), dfew_frames="x",
                   min_frames=1, verify=True)  # fmt: skip
    write_manifest(table, tmp_path / "m.parquet")
    write_json(tmp_path / "f.json", make_folds(table, "auto", 5, 0.0, seed=0))
    missing = tmp_path / "no-such-root"
    with pytest.raises(UserError) as info:
        _stage("shards", {"--manifest": str(tmp_path / "m.parquet"), "--folds":
                          str(tmp_path / "f.json"), "--root": str(missing),
                          "--out": str(tmp_path / "s")}, params)  # fmt: skip
    assert str(missing) in str(info.value) and says_what_to_do(str(info.value))


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda raw: raw["shards"].update(quallity=90), ["shards.quallity", "unknown"]),
        (lambda raw: raw["shards"].update(maxcount="many"), ["shards.maxcount", "int"]),
        (lambda raw: raw["shards"].update(maxcount=-1), ["shards.maxcount = -1", "[1, "]),
    ],
    ids=["unknown key", "wrong type", "out of range"],
)
def test_bad_params_exit_2_with_one_line_naming_key_and_file(tmp_path, edit, words):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(raw)
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "stages/shards.py", "--params", str(bad), "--manifest", "m",
         "--folds", "f", "--root", "r", "--out", str(tmp_path / "s")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert str(bad) in line and all(w in line for w in words), line
    assert not (tmp_path / "s").exists()  # nothing written


def test_training_in_a_git_repo_without_commits_says_commit(tmp_path, monkeypatch):
    from nrdfer.engine.train import _Live

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="git commit") as info:
        _Live(tmp_path / "live", [])
    assert str(tmp_path / "live") in str(info.value)
