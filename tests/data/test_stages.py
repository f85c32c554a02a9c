"""The ingest, folds and shards stage scripts end to end on a tiny tree (and on the demo set)."""

from __future__ import annotations

import importlib.util

import pytest

from nrdfer.data.manifest import ingest
from nrdfer.data.shards import ShardIndex, eval_loader
from nrdfer.errors import UserError
from nrdfer.params import load_section
from tests.conftest import ROOT, load_stage_module
from tests.data.helpers import run_stages, tiny_params
from tests.data.trees import make_afew, make_dfew


def test_dfew_stages_end_to_end(tmp_path, capsys):
    clips = {v: (1 + v % 7, 4 + v % 5) for v in range(1, 16)}
    clips[99] = (9, 5)  # label outside 1..7: reported, not sharded
    make_dfew(tmp_path / "DFEW", clips, {v: 1 + v % 5 for v in clips})
    shards = run_stages(tmp_path, "dfew", tmp_path / "DFEW", tiny_params(tmp_path))
    printed = capsys.readouterr().out
    assert "ingest dfew: 16 clips, 15 ok, 1 bad_label" in printed
    assert "dfew official folds" in printed and "shards dfew: 15 clips" in printed
    index = ShardIndex(shards)
    assert index.folds == ["1", "2", "3", "4", "5"] and "00099" not in index.data["clips"]
    data = load_section(tmp_path / "params.yaml", "data")
    keys = [k for _, _, ks in eval_loader(shards, 3, data, num_workers=0) for k in ks]
    assert sorted(keys) == index.ids(3, "test")


def test_afew_stages_and_stratified_scheme(tmp_path):
    clips = {
        (split, emotion, f"{split[0]}{emotion}{i}"): 5
        for split in ("Train_AFEW", "Val_AFEW")
        for emotion in ("Happy", "Sad", "Fear")
        for i in range(3)
    }
    make_afew(tmp_path / "AFEW", clips, video=False)
    params = tiny_params(tmp_path, folds={"scheme": "stratified", "k": 3, "val_fraction": 0.0})
    index = ShardIndex(run_stages(tmp_path, "afew", tmp_path / "AFEW", params))
    assert index.data["scheme"] == "stratified" and len(index.folds) == 3
    assert sorted(index.data["parts"]) == ["fold_1", "fold_2", "fold_3"]


def test_stage_missing_root_is_a_user_error(tmp_path):
    module = load_stage_module("stages/ingest.py")
    with pytest.raises(UserError, match="not found"):
        module.main(
            ["--kind", "dfew", "--root", str(tmp_path / "no"), "--out", str(tmp_path / "m.csv")]
        )


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("nrdfer.data.synth") is None, reason="demo generator not present"
)
def test_generated_demo_set_ingests(tmp_path):
    from nrdfer.data.synth import generate

    params = load_section(ROOT / "params.yaml", "synth")
    generate(tmp_path / "demo", params, seed=0, clips=5, layout="both", workers=1, progress=False)
    shards = run_stages(tmp_path, "dfew", tmp_path / "demo" / "DFEW", tiny_params(tmp_path))
    index = ShardIndex(shards)
    assert len(index.data["clips"]) == 5 and not index.data["skipped"]
    table = ingest("afew", tmp_path / "demo" / "AFEW", dfew_frames="x", min_frames=1, verify=True)
    assert len(table) == 5 and (table["status"] == "ok").all()
    assert (table["source_kind"] == "video").all() and (table["n_frames"] > 0).all()
