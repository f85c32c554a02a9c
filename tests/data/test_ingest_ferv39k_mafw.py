"""Ingest of FERV39k and MAFW trees with their quirks; their official folds."""

from __future__ import annotations

import pytest

from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import describe_left_out, ingest
from nrdfer.errors import UserError
from nrdfer.labels import FERV39K, MAFW
from tests.data.trees import make_ferv39k, make_mafw


def run(kind, root, **kw):
    return ingest(
        kind, root, dfew_frames="clip_224x224", min_frames=2, verify=True, progress=False, **kw
    )


def ferv39k_tree(root, nested=False):
    clips = {
        "Action/Sad/0010": 5,
        "Daily/Sad/0010": 6,  # the same clip number in another scene
        "Action/Happy/0010": 4,  # ... and under another emotion
        "Action/Angry/0002": 3,
        "Daily/Fear/0003": 5,  # label column says Happy: disagrees with the path
        "Daily/Neutral/0004": 5,  # label word unknown
        "Daily/Surprise/0005": 1,  # too few frames (min_frames 2)
        "Action/Disgust/0006": 4,  # listed twice in train
        "Action/Neutral/0007": 4,  # in train and test
        "Action/Happy/0001": 12,  # 1 corrupt frame, kept
        "Action/Angry/0003": 3,
    }
    train = [
        "Action/Sad/0010 Sad",
        "Daily/Sad/0010 Sad",
        "Action/Angry/0002 Angry",
        "Daily/Fear/0003 Happy",
        "Daily/Neutral/0004 Calm",
        "Daily/Surprise/0005 Surprise",
        "Action/Disgust/0006 Disgust",
        "Action/Disgust/0006 Disgust",
        "Action/Neutral/0007 Neutral",
        "Action/Happy/0001 Happy",
        "/Action/Angry/0003/ Angry",  # slashes around the path: read as Action/Angry/0003
        "Action/Fear/0099 Fear",  # no folder on disk
        "OnlyOneField",
    ]
    test = ["Action/Happy/0010 Happy", "Action/Neutral/0007 Neutral", "../../etc/0001 Sad"]
    make_ferv39k(root, clips, {"train": train, "test": test}, nested=nested)
    base = root / "2_ClipsforFaceCrop" / ("2_ClipsforFaceCrop" if nested else "")
    (base / "Action/Happy/0001/0003.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.mark.parametrize("nested", [False, True])
def test_ferv39k_every_listed_clip_used_or_reported(tmp_path, nested):
    table = run("ferv39k", ferv39k_tree(tmp_path, nested)).set_index("clip_id")
    status = table["status"].to_dict()
    for clip in ("Action_Sad_0010", "Daily_Sad_0010", "Action_Happy_0010", "Action_Angry_0002"):
        assert status[clip] == "ok", clip
    assert table.loc["Daily_Sad_0010", "n_frames"] == 6  # repeated clip numbers stay apart
    assert table.loc["Action_Happy_0010", "partition"] == "test"
    assert table.loc["Action_Sad_0010", "partition"] == "train"
    assert table.loc["Action_Sad_0010", "label_name"] == "Sad"
    assert table.loc["Action_Sad_0010", "label"] == FERV39K.index_of("Sad") == 1
    prefix = "2_ClipsforFaceCrop/2_ClipsforFaceCrop/" if nested else "2_ClipsforFaceCrop/"
    assert table.loc["Action_Sad_0010", "source"] == prefix + "Action/Sad/0010"
    assert status["Daily_Fear_0003"] == "path_label_conflict"
    assert table.loc["Daily_Fear_0003", "label"] == -1  # path and column disagree: no label
    assert "path says 'Fear', label column 'Happy'" in table.loc["Daily_Fear_0003", "detail"]
    assert status["Daily_Neutral_0004"] == "bad_label"
    assert "train_All.csv:5" in table.loc["Daily_Neutral_0004", "detail"]
    assert status["Daily_Surprise_0005"] == "too_short"
    assert status["Action_Disgust_0006"] == "duplicate_row"
    assert status["Action_Neutral_0007"] == "train_test_overlap"
    assert status["Action_Fear_0099"] == "missing"
    assert status["OnlyOneField"] == "bad_row"
    assert status["______etc_0001"] == "bad_row"  # a path outside the clip folder is not read
    assert table.loc["______etc_0001", "source"] == ""
    row = table.loc["Action_Happy_0001"]
    assert row["status"] == "ok" and row["n_frames"] == 11 and row["bad_frames"] == 1
    assert "0003.jpg" in row["detail"]
    assert status["Action_Angry_0003"] == "ok"
    assert table.loc["Action_Angry_0003", "source"] == prefix + "Action/Angry/0003"
    assert len(table) == 14 and sum(s == "ok" for s in status.values()) == 6
    lines = describe_left_out(table.reset_index(), limit=20)
    assert any("Daily_Fear_0003 (" in line and "path_label_conflict" in line for line in lines)


def test_ferv39k_official_single_fold(tmp_path):
    table = run("ferv39k", ferv39k_tree(tmp_path))
    for scheme in ("official", "auto"):
        folds = make_folds(table, scheme, k=5, val_fraction=0.0, seed=0)
        assert folds["scheme"] == "official" and list(folds["folds"]) == ["1"]
        fold = folds["folds"]["1"]
        assert fold["test"] == ["Action_Happy_0010"]
        assert fold["train"] == sorted(
            [
                "Action_Sad_0010",
                "Daily_Sad_0010",
                "Action_Angry_0002",
                "Action_Angry_0003",
                "Action_Happy_0001",
            ]
        )
        assert fold["train_parts"] == ["train"] and fold["test_parts"] == ["test"]


def test_ferv39k_missing_parts_are_errors(tmp_path):
    with pytest.raises(UserError, match="All_scenes: 4_setups/All_scenes/ not found"):
        run("ferv39k", tmp_path)
    make_ferv39k(tmp_path, {"A/Sad/0001": 3}, {"train": ["A/Sad/0001 Sad"]})
    with pytest.raises(UserError, match="test_All.csv: split file not found"):
        run("ferv39k", tmp_path)


def mafw_tree(root):
    clips = {f"{i:05d}": 4 + i % 3 for i in range(1, 11)}
    clips["00009"] = 0  # listed, not on disk
    folds = {}
    for k in range(1, 6):
        test = [f"{i:05d}.mp4 {MAFW.classes[i]}" for i in range(1, 11) if i % 5 == k - 1]
        train = [f"{i:05d}.mp4 {MAFW.classes[i]}" for i in range(1, 11) if i % 5 != k - 1]
        folds[k] = {"train": train, "test": test}
    folds[1]["test"].append("00011.mp4 anger_disgust")  # a compound label is not read
    folds[2]["train"][0] = "00001.mp4 contempt"  # 00001 (fear) is in set_2 train: conflict
    folds[3]["train"].append("00012.mp4 anxiety")  # in no test list
    return make_mafw(root, clips, folds)


def test_mafw_five_folds_and_reports(tmp_path):
    table = run("mafw", mafw_tree(tmp_path)).set_index("clip_id")
    status = table["status"].to_dict()
    assert status["00001"] == "label_conflict"
    assert status["00009"] == "missing"
    assert status["00011"] == "bad_label" and "anger_disgust" in table.loc["00011", "detail"]
    assert status["00012"] == "no_test_set" and "set_3 only" in table.loc["00012", "detail"]
    row = table.loc["00010"]  # listed with MAFW.classes[10]
    assert row["status"] == "ok" and row["label"] == 10 and row["label_name"] == "disappointment"
    assert row["partition"] == "set_1" and row["train_sets"] == "2,3,4,5"
    assert row["source"] == "data/frames/00010" and row["source_kind"] == "frames"
    assert table.loc["00007", "label_name"] == "contempt"
    folds = make_folds(table.reset_index(), "official", k=5, val_fraction=0.0, seed=0)
    assert list(folds["folds"]) == ["1", "2", "3", "4", "5"]
    ok = sorted(c for c, s in status.items() if s == "ok")
    tests = sorted(c for f in folds["folds"].values() for c in f["test"])
    assert tests == ok  # the five test sets are disjoint and cover every usable clip
    for name, fold in folds["folds"].items():
        assert not set(fold["train"]) & set(fold["test"])
        assert fold["test_parts"] == [f"set_{name}"]


def test_mafw_videos_and_layout_errors(tmp_path):
    with pytest.raises(UserError, match="no single/no_caption/ split folder"):
        run("mafw", tmp_path)
    make_mafw(tmp_path, {"00001": 3}, {1: {"train": [], "test": ["00001.mp4 neutral"]}})
    with pytest.raises(UserError, match="data/clips/ nor clips/ found"):
        run("mafw", tmp_path, mafw_frames="clips")
    table = run("mafw", tmp_path)
    assert table["status"].tolist() == ["ok"] and table["label"].tolist() == [MAFW.neutral]
    with pytest.raises(UserError, match="ingest.mafw_frames='faces'"):
        run("mafw", tmp_path, mafw_frames="faces")


def test_official_scheme_never_falls_back(tmp_path):
    table = run("mafw", mafw_tree(tmp_path))
    table.loc[table["clip_id"] == "00002", "partition"] = ""
    with pytest.raises(UserError, match="00002.*no official test set"):
        make_folds(table, "official", k=5, val_fraction=0.0, seed=0)


@pytest.mark.parametrize("kind", ["ferv39k", "mafw"])
def test_ingest_and_folds_stages(tmp_path, capsys, kind):
    from tests.conftest import load_stage_module
    from tests.data.helpers import tiny_params

    root = (ferv39k_tree if kind == "ferv39k" else mafw_tree)(tmp_path / kind)
    params = tiny_params(tmp_path, ingest={"min_frames": 2})
    out = tmp_path / "out"
    load_stage_module("stages/ingest.py").main(
        ["--params", params, "--kind", kind, "--root", str(root), "--out", str(out / "m.parquet")]
    )
    load_stage_module("stages/folds.py").main(
        ["--params", params, "--manifest", str(out / "m.parquet"), "--out", str(out / "f.json")]
    )
    printed = capsys.readouterr().out
    if kind == "ferv39k":
        assert (
            "ingest ferv39k: 14 clips, 6 ok, 1 bad_label, 2 bad_row, 1 duplicate_row, 1 missing"
            in printed
        )
        assert (
            "Daily_Fear_0003 (2_ClipsforFaceCrop/Daily/Fear/0003): path_label_conflict" in printed
        )
        assert "ferv39k official folds (train/val/test) 1: " in printed
    else:
        assert (
            "ingest mafw: 12 clips, 8 ok, 1 bad_label, 1 label_conflict, 1 missing, 1 no_test_set"
            in printed
        )
        assert "00009 (data/frames/00009): missing: data/frames/00009 not found" in printed
        assert "mafw official folds (train/val/test) 1: " in printed and " 5: " in printed


def test_mafw_clips_as_videos_or_face_folders(tmp_path):
    from tests.data.trees import write_avi, write_frames

    release = make_mafw(
        tmp_path / "MAFW",
        {},
        {
            1: {"train": ["00001.mp4 anger"], "test": ["00002.mp4 sadness", "00003.mp4 fear"]},
            2: {"train": ["00002.mp4 sadness", "00003.mp4 fear"], "test": ["00001.mp4 anger"]},
        },
        split_parent="split",
    )
    write_avi(release / "data" / "clips" / "00001.avi", 5)
    write_avi(release / "data" / "clips" / "00002.avi", 4)
    table = run("mafw", release, mafw_frames="clips").set_index("clip_id")
    assert table.loc["00001", "source"] == "data/clips/00001.avi"
    assert table.loc["00001", "source_kind"] == "video" and table.loc["00001", "n_frames"] == 5
    assert table.loc["00003", "status"] == "missing"
    # detect_align over the MAFW tree mirrors it: faces/data/clips/<clip>/ frame folders
    faces = tmp_path / "faces"
    write_frames(faces / "data" / "clips" / "00002", 6, pattern="{frame:05d}")
    table = run("mafw", faces, mafw_frames="clips", splits_root=release).set_index("clip_id")
    assert table.loc["00002", "source"] == "data/clips/00002"
    assert table.loc["00002", "source_kind"] == "frames" and table.loc["00002", "status"] == "ok"
    assert table.loc["00001", "status"] == "missing"  # no face folder written for it
    with pytest.raises(UserError, match="no single/no_caption/ split folder"):
        run("mafw", faces, mafw_frames="clips")
    # a folder of face-crop folders straight under the root
    crops = release / "data" / "frames" / "crops"
    write_frames(crops / "00003", 7, pattern="{frame:05d}")
    table = run("mafw", crops, mafw_frames="root", splits_root=release).set_index("clip_id")
    assert table.loc["00003", "source"] == "00003" and table.loc["00003", "n_frames"] == 7
    assert table.loc["00003", "status"] == "ok" and table.loc["00002", "status"] == "missing"
    with pytest.raises(UserError, match="for mafw only"):
        run("ferv39k", faces, splits_root=release)
