"""Ingest of DFEW / AFEW trees into the manifest, bad input reported, and fold assignments."""

from __future__ import annotations

import numpy as np
import pytest

from nrdfer.data.folds import make_folds
from nrdfer.data.frames import list_frames
from nrdfer.data.manifest import ingest, read_manifest, summarize, write_manifest
from nrdfer.errors import UserError
from tests.data.trees import make_afew, make_dfew, write_frames


def dfew(root, **kw):
    return ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=True, **kw)


def test_frames_sorted_by_trailing_integer(tmp_path):
    folder = tmp_path / "c"
    write_frames(folder, 12, pattern="{frame}")  # 1.jpg ... 12.jpg: lexical order is wrong
    assert [p.stem for p in list_frames(folder)] == [str(i) for i in range(1, 13)]


@pytest.mark.parametrize("spelling", ["-", "_"])
def test_dfew_both_split_spellings(tmp_path, spelling):
    clips = {v: (1 + v % 7, 3 + v) for v in range(1, 11)}
    tests = {v: 1 + v % 5 for v in clips}
    make_dfew(tmp_path, clips, tests, spelling=spelling)
    table = dfew(tmp_path, progress=False)
    assert (table["status"] == "ok").all() and len(table) == 10
    row = table.set_index("clip_id").loc["00007"]
    assert row["label"] == (1 + 7 % 7) - 1 and row["label_name"] == "Happy"
    assert row["n_frames"] == 10 and row["partition"] == f"set_{1 + 7 % 5}"
    assert row["source"] == "Clip/clip_224x224/00007"
    assert row["train_sets"] == ",".join(str(k) for k in range(1, 6) if k != 1 + 7 % 5)


def test_dfew_bad_input_reported_never_dropped(tmp_path):
    clips = {v: (1 + v % 7, 6) for v in range(1, 11)}
    clips[3] = (3, 0)  # CSV row, no folder on disk
    clips[4] = (0, 6)  # label 0
    clips[5] = (8, 6)  # label 8
    tests = {v: 1 + v % 2 for v in clips}
    extra = {"test/set_2": [("6", "7"), ("abc", "1")]}  # clip 6 (label 7) is in set_1 too
    make_dfew(tmp_path, clips, tests, extra_rows=extra)
    folder = tmp_path / "Clip" / "clip_224x224"
    (folder / "00007" / "00007_00002.jpg").write_bytes(b"not a jpeg")  # one corrupt frame
    for f in (folder / "00008").iterdir():  # every frame corrupt
        f.write_bytes(b"\xff\xd8 truncated")
    table = dfew(tmp_path, progress=False).set_index("clip_id")
    status = table["status"].to_dict()
    assert status["00003"] == "missing"
    assert status["00004"] == "bad_label" and status["00005"] == "bad_label"
    assert status["00006"] == "duplicate_test"
    assert status["abc"] == "bad_row"
    assert status["00008"] == "unreadable"
    assert status["00007"] == "ok" and table.loc["00007", "bad_frames"] == 1
    assert table.loc["00007", "n_frames"] == 5 and "00007_00002.jpg" in table.loc["00007", "detail"]
    assert sum(s == "ok" for s in status.values()) == 5
    line = summarize(table.reset_index(), pad_to=16)
    for word in (
        "11 clips",
        "5 ok",
        "1 missing",
        "2 bad_label",
        "1 duplicate_test",
        "1 unreadable",
    ):
        assert word in line
    assert "5 shorter than 16" in line


def test_dfew_user_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        dfew(tmp_path / "nowhere")
    make_dfew(tmp_path, {1: (1, 4), 2: (2, 4)}, {1: 1, 2: 2})
    csv = tmp_path / "EmoLabel_DataSplit" / "test(single-labeled)" / "set_1.csv"
    csv.write_text("video,label\n1,1\n")
    with pytest.raises(UserError, match=r"set_1\.csv.*video_name"):
        dfew(tmp_path)
    with pytest.raises(UserError, match="clip_224x224_16f"):
        ingest("dfew", tmp_path, dfew_frames="clip_224x224_16f", min_frames=1, verify=False)


def test_min_frames_and_fast_count_and_manifest_roundtrip(tmp_path):
    make_dfew(tmp_path, {1: (1, 2), 2: (2, 9)}, {1: 1, 2: 2})
    table = ingest("dfew", tmp_path, dfew_frames="clip_224x224", min_frames=3, verify=False)
    assert table["status"].tolist() == ["too_short", "ok"]
    assert table["n_frames"].tolist() == [2, 9]
    for name in ("m.parquet", "m.csv"):
        write_manifest(table, tmp_path / name)
        back = read_manifest(tmp_path / name)
        assert back["clip_id"].tolist() == ["00001", "00002"]
        assert back["train_sets"].tolist() == table["train_sets"].tolist()
    with pytest.raises(UserError, match="manifest not found"):
        read_manifest(tmp_path / "none.parquet")


@pytest.mark.parametrize("video", [True, False], ids=["avi", "frames"])
def test_afew_videos_and_face_folders(tmp_path, video):
    clips = {
        ("Train_AFEW", "Angry", "000146"): 7,
        ("Train_AFEW", "Happy", "011603"): 5,
        ("Val_AFEW", "Fear", "000201"): 6,
        ("Val_AFEW", "Bored", "000202"): 4,  # not an AFEW class
    }
    make_afew(tmp_path, clips, video=video)
    table = ingest("afew", tmp_path, dfew_frames="clip_224x224", min_frames=1, verify=True)
    table = table.set_index("clip_id")
    assert table.loc["train_000146", "label_name"] == "Angry"
    assert table.loc["train_000146", "label"] == 3 and table.loc["train_000146", "n_frames"] == 7
    assert table.loc["val_000201", "label"] == 6 and table.loc["val_000201", "partition"] == "val"
    assert table.loc["val_000202", "status"] == "bad_label"
    assert table.loc["train_011603", "source_kind"] == ("video" if video else "frames")
    with pytest.raises(UserError, match="Train_AFEW"):
        ingest("afew", tmp_path / "Train_AFEW", dfew_frames="x", min_frames=1, verify=False)


def _table(tmp_path, n=40):
    clips = {v: (1 + v % 7, 4) for v in range(1, n + 1)}
    make_dfew(tmp_path, clips, {v: 1 + v % 5 for v in clips})
    return dfew(tmp_path, progress=False)


def test_official_folds_disjoint_and_cover(tmp_path):
    table = _table(tmp_path)
    folds = make_folds(table, "auto", 5, 0.25, seed=1)
    assert folds["scheme"] == "official" and sorted(folds["folds"]) == ["1", "2", "3", "4", "5"]
    tests = [set(f["test"]) for f in folds["folds"].values()]
    assert set().union(*tests) == set(table["clip_id"]) and sum(map(len, tests)) == 40
    for name, fold in folds["folds"].items():
        train, val, test = map(set, (fold["train"], fold["val"], fold["test"]))
        assert not (train & val or train & test or val & test)
        assert train | val | test == set(table["clip_id"])
        assert fold["test_parts"] == [f"set_{name}"] and f"set_{name}" not in fold["train_parts"]
        assert 0 < len(val) < len(train)
    assert folds == make_folds(table, "official", 5, 0.25, seed=1)
    assert (
        folds["folds"]["1"]["val"] != make_folds(table, "official", 5, 0.25, 2)["folds"]["1"]["val"]
    )


def test_stratified_folds_balanced_and_seeded(tmp_path):
    table = _table(tmp_path, n=70)
    folds = make_folds(table, "stratified", 5, 0.0, seed=3)
    parts = folds["partitions"]
    assert sorted(parts) == [f"fold_{i}" for i in range(1, 6)]
    assert sorted(c for cs in parts.values() for c in cs) == sorted(table["clip_id"])
    labels = folds["labels"]
    for cs in parts.values():  # 10 clips per class -> exactly 2 per class per fold
        assert np.bincount([labels[c] for c in cs], minlength=7).tolist() == [2] * 7
    assert all(f["val"] == [] for f in folds["folds"].values())
    assert folds == make_folds(table, "stratified", 5, 0.0, seed=3)
    assert parts != make_folds(table, "stratified", 5, 0.0, seed=4)["partitions"]


def test_afew_fold_and_official_without_splits(tmp_path):
    make_afew(tmp_path, {("Train_AFEW", "Sad", "a"): 3, ("Val_AFEW", "Sad", "b"): 3}, video=False)
    table = ingest("afew", tmp_path, dfew_frames="x", min_frames=1, verify=False)
    folds = make_folds(table, "auto", 5, 0.0, seed=0)
    assert folds["folds"]["1"]["train"] == ["train_a"] and folds["folds"]["1"]["test"] == ["val_b"]
    table["partition"] = ""
    with pytest.raises(UserError, match="stratified"):
        make_folds(table, "official", 5, 0.0, seed=0)
