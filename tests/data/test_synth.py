"""The generated demo data set: determinism, exact layouts, noise rates, darkness, detection."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nrdfer.cli import main as cli_main
from nrdfer.data.synth import META_NAME, SHEET_NAME, generate
from nrdfer.data.synth.layouts import allocate, stratified_folds
from nrdfer.data.synth.noise import N1_KINDS, plan_n1, plan_n2
from nrdfer.labels import AFEW_FOLDERS, CLASSES, NEUTRAL
from nrdfer.params import load_section
from tests.conftest import ROOT

SPLIT = "EmoLabel_DataSplit"


def small_params(**changes):
    """The project's synth params, shrunk so a test renders in about a second."""
    p = load_section(ROOT / "params.yaml", "synth")
    small = dict(
        dfew_frames=(12, 20),
        afew_frames=(10, 14),
        workers=1,
        sheet_frames=4,
        sheet_clips_per_class=1,
        n1_rate=0.4,
        n2_rate=0.4,
        afew_dark_share=0.4,
        ferv39k_clips=0,  # DFEW and AFEW only, unless a test asks for the others
        mafw_clips=0,
    )
    small.update(changes)
    return replace(p, **small)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "demo"
    generate(out, small_params(), seed=7, clips=12, progress=False)
    return out


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every CSV, JPEG and JSON file under root (videos and PNG excluded)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".csv", ".jpg", ".json")
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["video_name", "label"], path
        return list(reader)


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_same_seed_same_bytes_other_seed_differs(tmp_path, demo):
    params = small_params()
    # same seed, other number of worker processes: byte-identical CSVs, frames and metadata
    generate(tmp_path / "a", params, seed=7, clips=12, workers=2, progress=False)
    a, ref = tree_hashes(tmp_path / "a"), tree_hashes(demo)
    assert a == ref and len(a) > 100
    generate(tmp_path / "c", params, seed=8, clips=5, layout="dfew", progress=False)
    c = tree_hashes(tmp_path / "c")
    first = [k for k in c if k.startswith("DFEW/Clip/clip_224x224/00001/")]
    assert first and all(c[k] != ref.get(k) for k in first)


def test_dfew_layout_is_exact(demo):
    root = demo / "DFEW"
    assert sorted(p.name for p in root.iterdir()) == ["Clip", SPLIT]
    assert sorted(p.name for p in (root / "Clip").iterdir()) == ["clip_224x224", "original"]
    clips = sorted((root / "Clip" / "clip_224x224").iterdir())
    assert [c.name for c in clips] == [f"{i:05d}" for i in range(1, 13)]
    meta = {m["video_name"]: m for m in json.loads((demo / META_NAME).read_text())["dfew"]}
    lengths = []
    for clip in clips:
        names = [p.name for p in clip.iterdir()]
        assert all(re.fullmatch(r"\d+\.jpg", n) for n in names), names
        numbers = sorted(int(n[:-4]) for n in names)
        assert numbers == list(range(1, len(names) + 1))
        assert len(names) == meta[int(clip.name)]["frames"]
        lengths.append(len(names))
        assert (root / "Clip" / "original" / f"{clip.name}.mp4").is_file()
    assert min(lengths) < 16 <= max(lengths)  # short clips exist (the pipeline pads them)
    # lexicographic order is not numeric order for these names: readers must sort by number
    assert sorted(p.name for p in clips[0].iterdir())[:3] == ["1.jpg", "10.jpg", "11.jpg"]
    import cv2

    frame = cv2.imread(str(clips[0] / "1.jpg"))
    side = small_params().dfew_frame_size  # the demo's crop side (224 in the real set)
    assert frame.shape == (side, side, 3)
    video = decode(root / "Clip" / "original" / "00001.mp4")
    assert video.shape == (meta[1]["frames"], 120, 160, 3)


def test_dfew_folds_are_disjoint_and_cover_all_clips(demo):
    base = demo / "DFEW" / SPLIT
    assert sorted(p.name for p in base.iterdir()) == [
        "test(single-labeled)",
        "train(single-labeled)",
    ]
    meta = {m["video_name"]: m for m in json.loads((demo / META_NAME).read_text())["dfew"]}
    seen: list[int] = []
    for k in range(1, 6):
        test = read_csv(base / "test(single-labeled)" / f"set_{k}.csv")
        train = read_csv(base / "train(single-labeled)" / f"set_{k}.csv")
        test_ids = [int(r["video_name"]) for r in test]
        train_ids = {int(r["video_name"]) for r in train}
        assert test_ids and not set(test_ids) & train_ids
        assert set(test_ids) | train_ids == set(meta)
        for row in test + train:
            assert not row["video_name"].startswith("0")  # not zero-padded
            assert int(row["label"]) == meta[int(row["video_name"])]["label"] + 1  # 1..7
        seen += test_ids
    assert sorted(seen) == sorted(meta)  # five disjoint test sets covering every clip


def test_underscore_spelling_switch(tmp_path):
    params = small_params(dfew_split_spelling="underscore", dfew_frames=(4, 5))
    generate(tmp_path / "u", params, seed=1, clips=5, layout="dfew", progress=False)
    names = sorted(p.name for p in (tmp_path / "u" / "DFEW" / SPLIT).iterdir())
    assert names == ["test(single_labeled)", "train(single_labeled)"]
    assert not (tmp_path / "u" / "AFEW").exists()


def test_afew_layout_is_exact(demo):
    root = demo / "AFEW"
    assert sorted(p.name for p in root.iterdir()) == ["Train_AFEW", "Val_AFEW"]
    meta = json.loads((demo / META_NAME).read_text())["afew"]
    videos = sorted(root.rglob("*.avi"))
    assert len(videos) == len(meta) == 12
    for video in videos:
        split, emotion = video.parts[-3], video.parts[-2]
        assert split in ("Train_AFEW", "Val_AFEW") and emotion in AFEW_FOLDERS
        assert re.fullmatch(r"\d{9}\.avi", video.name)
    m = meta[0]
    assert AFEW_FOLDERS[Path(m["path"]).parts[1]] == m["label"]
    frames = decode(root / m["path"])
    assert frames.shape == (m["frames"], 240, 320, 3)
    assert len(m["boxes"]) == len(m["face_visible"]) == m["frames"]


def test_dark_afew_clips_are_darker(demo):
    meta = json.loads((demo / META_NAME).read_text())["afew"]
    dark = [m for m in meta if m["dark_gain"] is not None]
    clean = [m for m in meta if m["dark_gain"] is None]
    assert dark and clean
    luma = {m["path"]: decode(demo / "AFEW" / m["path"]).mean() for m in (dark[0], clean[0])}
    assert luma[dark[0]["path"]] < 0.6 * luma[clean[0]["path"]]
    assert max(m["mean_luma"] for m in dark) < 60 < min(m["mean_luma"] for m in clean)


def test_contact_sheet_is_written(demo):
    import cv2

    sheet = cv2.imread(str(demo / SHEET_NAME))
    assert sheet is not None and sheet.shape[0] >= 96 * 5 and sheet.shape[1] > 400
    assert sheet.std() > 20  # not blank


def test_n1_and_n2_rates_follow_params():
    rng = np.random.default_rng(0)
    n = 2000
    n1 = [plan_n1(30, rng, 0.3, (0.1, 0.25)) for _ in range(n)]
    share = sum(k is not None for k, _ in n1) / n
    assert abs(share - 0.3) < 0.04
    assert {k for k, _ in n1 if k} == set(N1_KINDS)
    for kind, frames in n1:
        if kind:
            assert 3 <= len(frames) <= 8 and frames == tuple(range(frames[0], frames[-1] + 1))
    windows = [plan_n2(30, 0, rng, 0.25, (0.15, 0.3)) for _ in range(n)]
    assert abs(sum(w is not None for w in windows) / n - 0.25) < 0.04
    assert all(5 <= w[1] <= 9 and w[0] + w[1] <= 30 for w in windows if w)
    assert all(plan_n2(30, NEUTRAL, rng, 1.0, (0.15, 0.3)) is None for _ in range(50))
    assert all(plan_n1(30, rng, 0.0, (0.1, 0.25)) == (None, ()) for _ in range(50))


def test_generated_noise_matches_meta(demo):
    meta = json.loads((demo / META_NAME).read_text())
    for m in meta["dfew"] + meta["afew"]:
        assert all(0 <= f < m["frames"] for f in m["n1_frames"])
        assert (m["n1_kind"] is None) == (not m["n1_frames"])
        if m["n2_window"]:
            assert m["label"] != NEUTRAL and sum(m["n2_window"]) <= m["frames"]
    for m in meta["afew"]:
        hidden = [i for i, v in enumerate(m["face_visible"]) if not v]
        assert hidden == m["n1_frames"]
    assert any(m["n1_kind"] for m in meta["dfew"]) and any(m["n2_window"] for m in meta["dfew"])


def test_class_frequencies_follow_dfew_imbalance():
    counts = dict(zip(CLASSES, (2445, 1894, 2669, 2173, 1469, 145, 902), strict=True))
    labels = allocate(counts, 1000, "dfew_class_counts")
    got = np.bincount(labels, minlength=7)
    assert got.sum() == 1000
    expected = np.array(list(counts.values())) / sum(counts.values()) * 1000
    assert np.all(np.abs(got - expected) <= 1)
    folds = stratified_folds(labels, 5, np.random.default_rng(0))
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1
    for c in range(7):  # every fold gets its share of each class
        per = np.bincount(folds[np.asarray(labels) == c], minlength=5)
        assert per.max() - per.min() <= 1


def test_rerun_replaces_whole_and_failure_keeps_old(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    params = small_params(dfew_frames=(4, 5))
    generate(out, params, seed=1, clips=6, layout="dfew", progress=False)
    (out / "stale.txt").write_text("old")
    generate(out, params, seed=1, clips=5, layout="dfew", progress=False)
    assert not (out / "stale.txt").exists()
    assert len(list((out / "DFEW" / "Clip" / "clip_224x224").iterdir())) == 5
    import nrdfer.data.synth as synth

    def boom(job):
        raise RuntimeError("render failed")

    monkeypatch.setattr(synth, "render_job", boom)
    with pytest.raises(RuntimeError):
        generate(out, params, seed=2, clips=5, layout="dfew", progress=False)
    assert len(list((out / "DFEW" / "Clip" / "clip_224x224").iterdir())) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no temp dirs left


def test_cli_requires_params_outside_the_project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["synth", "--out", "x", "--seed", "1", "--clips", "2"]) == 2
    assert "--params" in capsys.readouterr().err
    code = cli_main(
        [
            "synth",
            "--out",
            "x",
            "--seed",
            "1",
            "--clips",
            "5",
            "--layout",
            "dfew",
            "--params",
            str(ROOT / "params.yaml"),
            "-S",
            "synth.dfew_frames=[3,4]",
            "-S",
            "synth.workers=1",
        ]
    )
    assert code == 0 and (tmp_path / "x" / "DFEW" / SPLIT).is_dir()


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix
    return ix / union


@pytest.mark.slow
def test_retinaface_finds_the_generated_faces(tmp_path, monkeypatch):
    """On clean (no N1) frames of AFEW-layout output, >= 90 % get a detection with IoU >= 0.5."""
    monkeypatch.setenv("HOME", str(tmp_path))  # onnxruntime's telemetry id goes here
    from retinaface import detect_faces

    params = small_params(afew_frames=(16, 20), n1_rate=0.0, afew_dark_share=0.3)
    generate(tmp_path / "d", params, seed=11, clips=10, layout="afew", progress=False)
    meta = json.loads((tmp_path / "d" / META_NAME).read_text())["afew"]
    hits = total = 0
    for m in meta:
        frames = decode(tmp_path / "d" / "AFEW" / m["path"])
        idx = [i for i in range(0, len(frames), 2) if m["face_visible"][i]]
        dets = detect_faces(frames[idx], score_threshold=0.9, nms_threshold=0.4)
        for i, faces in zip(idx, dets, strict=True):
            boxes = [(f.x, f.y, f.x + f.width, f.y + f.height) for f in faces]
            hits += any(_iou(b, m["boxes"][i]) >= 0.5 for b in boxes)
            total += 1
    assert total >= 60
    assert hits / total >= 0.9, f"detected {hits}/{total}"
