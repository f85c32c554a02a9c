"""The generated FERV39k and MAFW layouts: exact trees, their quirks, ingest, and DFEW/AFEW
unchanged by them."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest
from nrdfer.data.synth import META_NAME, generate
from nrdfer.data.synth.expressions import CLASS_ACTIONS, CLASS_EXPRESSIONS, EXPRESSIONS
from nrdfer.io import read_json
from nrdfer.labels import CLASSES, FERV39K, MAFW
from tests.data.helpers import decode, small_params, tree_hashes


def manifest(kind, root):
    return ingest(
        kind, root, dfew_frames="clip_224x224", min_frames=1, verify=True, progress=False
    ).set_index("clip_id")


@pytest.fixture(scope="module")
def ferv39k(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "f"
    generate(out, small_params(), seed=5, clips=24, layout="ferv39k", progress=False)
    return out


@pytest.fixture(scope="module")
def mafw(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "m"
    generate(out, small_params(), seed=5, clips=22, layout="mafw", progress=False)
    return out


def test_ferv39k_layout_and_quirks(ferv39k):
    root = ferv39k / "FERV39k"
    assert sorted(p.name for p in ferv39k.iterdir() if p.is_dir()) == ["FERV39k"]
    meta = read_json(ferv39k / META_NAME)["ferv39k"]
    lines = {}
    for split in ("train", "test"):
        for line in (root / "4_setups/All_scenes" / f"{split}_All.csv").read_text().splitlines():
            path, word = line.split(" ")  # space-delimited, no header
            assert re.fullmatch(r"\w+/\w+/\d{4}", path), line
            lines[path] = (split, word)
    assert len(lines) == len(meta) == 24
    by_number = defaultdict(set)
    for m in meta:
        scene, emotion, number = m["path"].split("/")
        assert emotion == m["class"] and lines[m["path"]] == (m["split"], m["split_label"])
        by_number[number].add((scene, emotion))
        frames = sorted(p.name for p in (root / "2_ClipsforFaceCrop" / m["path"]).iterdir())
        assert frames == [f"{i:04d}.jpg" for i in range(1, m["frames"] + 1)]  # zero-padded
    assert len(by_number["0001"]) > 1  # clip numbers repeat across scenes and emotions
    odd = {m["path"]: m["split_label"] for m in meta if m["split_label"] != m["class"]}
    assert len(odd) == 2 and "Contempt" in odd.values()  # one disagreeing, one unknown word
    table = manifest("ferv39k", root)
    left = table[table["status"] != "ok"]
    assert sorted(left["status"]) == ["bad_label", "path_label_conflict"]
    assert sorted(left["source"].str.removeprefix("2_ClipsforFaceCrop/")) == sorted(odd)
    folds = make_folds(table.reset_index(), "official", 5, 0.0, seed=0)
    assert list(folds["folds"]) == ["1"]
    assert len(folds["folds"]["1"]["test"]) == sum(m["split"] == "test" for m in meta)


def test_mafw_layout_and_quirks(mafw):
    root = mafw / "MAFW"
    meta = read_json(mafw / META_NAME)["mafw"]
    assert len(meta) == 22 and {m["class"] for m in meta} == set(MAFW.classes)
    splits = root / "Train & Test Set" / "single" / "no_caption"
    tests = {}
    for k in range(1, 6):
        test = (splits / f"set_{k}" / "test.txt").read_text().splitlines()
        train = (splits / f"set_{k}" / "train.txt").read_text().splitlines()
        assert not set(test) & set(train) and len(test) + len(train) == 22
        tests.update({line.split(" ")[0]: k for line in test})
    assert {f"{m['clip']}.mp4": m["test_fold"] for m in meta} == tests  # disjoint, cover all
    m = meta[0]
    frames = sorted(p.name for p in (root / "data" / "frames" / m["clip"]).iterdir())
    assert frames == [f"{i:05d}.jpg" for i in range(1, m["frames"] + 1)]
    video = decode(root / "data" / "clips" / f"{m['clip']}.mp4")
    assert video.shape[0] == m["frames"] and video.shape[2:0:-1] == (160, 120)  # whole scenes
    compound = [m for m in meta if "_" in m["split_label"]]
    assert len(compound) == 1
    extra = {m["class"]: m.get("expression") for m in meta if m["label"] >= 7}
    assert extra == {c: c.capitalize() for c in MAFW.classes[7:]}
    assert {m["expression"] for m in meta if m["class"] == "happiness"} == {"Happy"}
    table = manifest("mafw", root)
    assert table.loc[compound[0]["clip"], "status"] == "bad_label"
    assert (table["status"] == "ok").sum() == 21
    clips = manifest("mafw", root).index.tolist()
    assert clips == sorted(m["clip"] for m in meta)


def test_new_layouts_leave_dfew_afew_bytes_alone(tmp_path):
    generate(tmp_path / "a", small_params(), seed=3, clips=6, progress=False)
    with_more = small_params(ferv39k_clips=8, mafw_clips=6)
    generate(tmp_path / "b", with_more, seed=3, clips=6, progress=False)
    a, b = tree_hashes(tmp_path / "a"), tree_hashes(tmp_path / "b")
    old = {k: v for k, v in a.items() if k.startswith(("DFEW/", "AFEW/"))}
    assert old and old == {k: v for k, v in b.items() if k.startswith(("DFEW/", "AFEW/"))}
    assert any(k.startswith("FERV39k/") for k in b) and any(k.startswith("MAFW/") for k in b)
    # the same seed and layout again, with another worker count: the same bytes
    generate(tmp_path / "c", with_more, seed=3, clips=6, workers=2, progress=False)
    assert tree_hashes(tmp_path / "c") == b


def test_mafw_expressions_of_their_own():
    assert EXPRESSIONS[:7] == CLASSES and CLASS_EXPRESSIONS["ferv39k"] == tuple(range(7))
    mafw = CLASS_EXPRESSIONS["mafw"]
    assert [EXPRESSIONS[e] for e in mafw[:7]] == [
        "Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise",
    ]  # fmt: skip
    assert mafw[MAFW.neutral] == FERV39K.neutral == 2  # N2 noise keeps neutral clips clean
    units = {name: a.as_array() for name, a in CLASS_ACTIONS.items()}
    for name in EXPRESSIONS[7:]:
        nearest = min(np.abs(units[name] - units[o]).sum() for o in units if o != name)
        assert nearest > 0.5, name  # a face of its own, not a copy of another class


def test_layout_counts_checked(tmp_path):
    from nrdfer.errors import UserError

    with pytest.raises(UserError, match="MAFW clips must be at least 5"):
        generate(tmp_path / "x", small_params(), seed=1, clips=3, layout="mafw")
    with pytest.raises(UserError, match="no clips to write"):
        generate(tmp_path / "x", small_params(), seed=1, layout="ferv39k")  # ferv39k_clips 0
    with pytest.raises(UserError, match="layout must be one of"):
        generate(tmp_path / "x", small_params(), seed=1, layout="caer")


def test_cli_writes_one_new_layout(tmp_path, monkeypatch, capsys):
    from nrdfer.cli import main as cli_main
    from tests.conftest import ROOT

    monkeypatch.chdir(tmp_path)
    params = ["--params", str(ROOT / "params.yaml"), "-S", "synth.dfew_frames=[3,4]"]
    argv = ["synth", "--out", "x", "--seed", "1", "--clips", "5", "--layout", "mafw", *params]
    assert cli_main([*argv, "-S", "synth.workers=1"]) == 0
    assert sorted(p.name for p in (tmp_path / "x").iterdir() if p.is_dir()) == ["MAFW"]
    zero = ["-S", "synth.ferv39k_clips=0"]
    assert (
        cli_main(["synth", "--out", "y", "--seed", "1", "--layout", "ferv39k", *params, *zero]) == 2
    )
    assert "no clips to write" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["ferv39k", "mafw"])
def test_generated_tree_through_ingest_folds_shards(tmp_path, capsys, kind, ferv39k, mafw):
    from nrdfer.data.shards import ShardIndex, eval_loader
    from nrdfer.params import load_section
    from tests.data.helpers import run_stages, tiny_params

    root = (ferv39k / "FERV39k") if kind == "ferv39k" else (mafw / "MAFW")
    shards = run_stages(tmp_path, kind, root, tiny_params(tmp_path))
    printed = capsys.readouterr().out
    assert f"{kind} official folds" in printed
    index = ShardIndex(shards)
    assert index.folds == (["1"] if kind == "ferv39k" else ["1", "2", "3", "4", "5"])
    labels = {e["label"] for e in index.data["clips"].values()}
    assert max(labels) == (6 if kind == "ferv39k" else 10)  # MAFW's eleven classes stored
    data = load_section(tmp_path / "params.yaml", "data")
    keys = [k for _, _, ks in eval_loader(shards, 1, data, num_workers=0) for k in ks]
    assert sorted(keys) == index.ids(1, "test")


def test_shard_index_checks_labels_against_the_data_sets_classes(tmp_path):
    from nrdfer.data.shards.format import FORMAT, CorruptShardError
    from nrdfer.data.shards.index import _check_layout

    def index(dataset, label):
        clips = {"a": {"shard": "set_1-000000.tar", "label": label}}
        return {"format": FORMAT, "dataset": dataset, "parts": {}, "clips": clips, "folds": {}}

    _check_layout(index("mafw", 10), tmp_path / "index.json")
    for dataset in ("dfew", "ferv39k"):
        with pytest.raises(CorruptShardError, match="label 7, not a class index 0..6"):
            _check_layout(index(dataset, 7), tmp_path / "index.json")
    with pytest.raises(CorruptShardError, match="label 11, not a class index 0..10"):
        _check_layout(index("mafw", 11), tmp_path / "index.json")
