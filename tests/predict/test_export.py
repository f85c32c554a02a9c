"""``nrdfer export``: ONNX with the snippet-based filter in the graph, checked by onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import torch

from nrdfer.cli import main
from nrdfer.labels import CLASSES, NEUTRAL
from nrdfer.models.decision import SUPPRESSION_MARGIN
from nrdfer.predict.loading import load_model_for_inference
from tests.predict.conftest import write_model_file


def test_export_matches_pytorch_and_keeps_the_filter(capsys, tmp_path):
    # mu1 = 0, mu2 = 1: the filter fires on every clip, so it must be in the graph to match.
    ckpt = write_model_file(tmp_path / "model.pt", mu1=0.0, mu2=1.0)
    out = tmp_path / "model.onnx"
    argv = ["export", "--checkpoint", str(ckpt), "--onnx", str(out), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["worst"] <= 1e-4 and report["fired_mismatch"] == 0
    assert report["input_shape"] == ["batch", 8, 3, 32, 32] and report["check_batches"] == [1, 8]
    assert report["outputs"] == ["logits_seq", "logits", "filter_fired", "attention"]

    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["nrdfer.classes"]) == list(CLASSES) and meta["nrdfer.U"] == "4"

    # An independent check on other random input, at batch 1 and 8 (the batch axis is dynamic).
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = load_model_for_inference(ckpt).model
    for batch in (1, 8):
        x = torch.rand(batch, 8, 3, 32, 32, generator=torch.Generator().manual_seed(7))
        logits_seq, logits, fired, attention = session.run(None, {"clips": x.numpy()})
        with torch.inference_mode():
            ref = model(x)
        assert logits_seq.shape == (batch, len(CLASSES))
        assert np.abs(logits_seq - ref.logits_seq.numpy()).max() <= 1e-4
        assert np.abs(attention - ref.attention.numpy()).max() <= 1e-4
        assert fired.dtype == np.bool_ and fired.all() and ref.filter_fired.all()
        keep = np.arange(len(CLASSES)) != NEUTRAL
        assert np.abs(logits[:, keep] - ref.logits.numpy()[:, keep]).max() <= 1e-4
        low = logits_seq[:, keep].min(axis=1)
        floor = low - SUPPRESSION_MARGIN - np.abs(low)
        assert np.allclose(logits[:, NEUTRAL], floor, atol=1e-2)  # suppressed in the graph


def test_export_without_the_filter_has_a_dynamic_batch(capsys, tmp_path):
    """model.sf false: no snippets in the graph; onnxruntime equals PyTorch at batch 1 and 8."""
    ckpt = write_model_file(tmp_path / "model.pt", sf=False)
    out = tmp_path / "plain.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--onnx", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = load_model_for_inference(ckpt).model
    for batch in (1, 8):
        x = torch.rand(batch, 8, 3, 32, 32, generator=torch.Generator().manual_seed(9))
        logits_seq, logits, fired, *_ = session.run(None, {"clips": x.numpy()})
        with torch.inference_mode():
            ref = model(x)
        assert np.abs(logits_seq - ref.logits_seq.numpy()).max() <= 1e-4
        assert np.array_equal(logits, logits_seq) and not fired.any()


def test_export_refuses_above_tolerance(capsys, tmp_path, model_file):
    out = tmp_path / "strict.onnx"
    argv = ["export", "--checkpoint", str(model_file), "--onnx", str(out), "--tolerance", "1e-15"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "onnxruntime differs from PyTorch" in err and str(out) in err
    assert not out.exists() and not list(tmp_path.glob(".strict.onnx*"))  # nothing left behind


def test_export_bad_checkpoint(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", "--checkpoint", str(bad), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert str(bad) in capsys.readouterr().err
