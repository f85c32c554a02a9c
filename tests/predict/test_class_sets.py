"""An 11-class data set (MAFW) through the whole chain: shards -> model (head size, the
snippet-based filter's neutral index) -> metrics -> model file -> predict and export, each
following the data set's class set, and a model whose classes do not fit the shards refused in
one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nrdfer.cli import main
from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest
from nrdfer.data.shards import ShardIndex, write_shards
from nrdfer.data.shards.format import ShardSpec
from nrdfer.engine.pipeline import EvalOutputs, TrainOutputs, evaluate_fold, train_fold
from nrdfer.errors import UserError
from nrdfer.labels import DFEW, MAFW
from nrdfer.model_file import load_model_file
from nrdfer.params import load_section
from nrdfer.predict.loading import load_model_for_inference
from nrdfer.predict.predictor import Predictor, predict_video
from tests.conftest import ROOT
from tests.data.trees import make_mafw
from tests.engine.tiny_engine import train_params
from tests.predict.conftest import tiny_model_params, write_model_file


@pytest.fixture(scope="module")
def mafw_shards(tmp_path_factory):
    """Shards of a MAFW tree: 22 clips, two per class, five official folds."""
    tmp = tmp_path_factory.mktemp("mafw")
    names = [f"{i:05d}" for i in range(1, 23)]
    label = {n: MAFW.classes[i % MAFW.num_classes] for i, n in enumerate(names)}
    folds = {
        k: {
            part: [f"{n}.mp4 {label[n]}" for i, n in enumerate(names) if (i % 5 == k - 1) == test]
            for part, test in (("train", False), ("test", True))
        }
        for k in range(1, 6)
    }
    root = make_mafw(tmp / "MAFW", dict.fromkeys(names, 10), folds)
    table = ingest("mafw", root, dfew_frames="clip_224x224", min_frames=1, verify=False,
                   progress=False)  # fmt: skip
    assert (table["status"] == "ok").all()
    fold_plan = make_folds(table, "official", 5, 0.0, seed=0)
    write_shards(table, fold_plan, root, tmp / "shards", ShardSpec(32, 90, 64, 0), progress=False)
    return tmp / "shards"


def settings():
    base = dataclasses.replace(load_section(ROOT / "params.yaml", "base"), device="cpu")
    data = dataclasses.replace(
        load_section(ROOT / "params.yaml", "data"), U=4, V=2, size=32, batch_size=8,
        num_workers=0, shuffle_buffer=16, augment_on="loader",
    )  # fmt: skip
    evaluate = dataclasses.replace(
        load_section(ROOT / "params.yaml", "evaluate"), precision="fp32", save_features=False
    )
    return base, data, evaluate


def test_eleven_classes_model_filter_metrics_model_file_predict(
    mafw_shards, tmp_path, videos, capsys
):
    base, data, evaluate = settings()
    assert ShardIndex(mafw_shards).class_set == MAFW
    outputs = TrainOutputs(tmp_path / "last.pt", tmp_path / "model.pt", None, tmp_path / "s.json")
    detect = dataclasses.replace(
        load_section(ROOT / "params.yaml", "detect_align"), batch_size=8, output_size=64
    )
    run = dict(base=base, data=data, train=train_params(epochs=1), outputs=outputs,
               detect_align=detect, progress=False)  # fmt: skip

    # params that do not fit the data set: one line naming the key and the shard index
    for wrong, key in (({}, "num_classes"), ({"num_classes": 11}, "neutral_index")):
        with pytest.raises(UserError, match=rf"model\.{key} = \d+, but .*index\.json holds mafw"):
            train_fold(mafw_shards, "1", model_params=tiny_model_params(**wrong), **run)
    assert not outputs.model.exists()

    # mu1 = 0, mu2 = 1: every snippet is "clear" (Eq. 7), so the filter always fires and
    # moves every clip away from the neutral class: index 4 in MAFW, not DFEW's 2
    params = tiny_model_params(num_classes=11, neutral_index=4, mu1=0.0, mu2=1.0)
    train_fold(mafw_shards, "1", model_params=params, **run)
    state = load_model_file(outputs.model)
    assert state["classes"] == list(MAFW.classes) and state["info"]["dataset"] == "mafw"
    assert state["model_state"]["temporal.head.weight"].shape[0] == 11

    m = evaluate_fold(mafw_shards, "1", outputs.model, base=base, data=data, evaluate=evaluate,
                      outputs=EvalOutputs(details=tmp_path / "e.json",
                                          predictions=tmp_path / "p.csv"),
                      progress=False)  # fmt: skip
    assert {f"sf_acc_{c}" for c in MAFW.classes} <= set(m)
    assert not any(k.endswith(("_Happy", "_Neutral")) for k in m)
    assert m["sf_acc_neutral"] == 0.0  # only the neutral clips of the test fold are its
    predicted = set(np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=3,
                               dtype=str))  # fmt: skip
    assert predicted <= set(MAFW.classes) - {"neutral"}

    loaded = load_model_for_inference(outputs.model)
    assert loaded.classes == MAFW.classes and loaded.model.filter.neutral_index == 4
    result = predict_video(videos["short"], Predictor(loaded))
    assert list(result.clip.probs) == list(MAFW.classes)
    assert result.clip.filter_fired and result.clip.probs["neutral"] == 0.0
    assert result.clip.label in MAFW.classes and result.clip.label != "neutral"

    # nrdfer export: the ONNX file names MAFW's classes and suppresses MAFW's neutral in the graph
    onnx_file = tmp_path / "mafw.onnx"
    argv = ["export", "--checkpoint", str(outputs.model), "--onnx", str(onnx_file), "--json"]
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["ok"]
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert json.loads(meta["nrdfer.classes"]) == list(MAFW.classes)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    clips = np.random.default_rng(0).random((2, 8, 3, 32, 32), dtype=np.float32)
    logits_seq, logits, fired, _ = session.run(None, {"clips": clips})
    assert logits_seq.shape == (2, 11) and fired.all()
    assert (logits.argmax(1) != MAFW.neutral).all() and (logits[:, 4] < logits[:, :4].min(1)).all()

    # a model of DFEW's classes evaluated on MAFW shards: refused
    dfew = write_model_file(tmp_path / "dfew.pt", enhance=False)
    with pytest.raises(UserError, match="predicts 7 classes .* holds mafw"):
        evaluate_fold(mafw_shards, "1", dfew, base=base, data=data, evaluate=evaluate,
                      outputs=EvalOutputs(details=tmp_path / "d.json"), progress=False)  # fmt: skip
    assert load_model_file(dfew)["classes"] == list(DFEW.classes)
