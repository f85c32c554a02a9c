"""Checkpoints: atomic writes, weights_only loading, RNG states, model files; metrics with SF."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from nrdfer.checkpoint import load_checkpoint, save_checkpoint
from nrdfer.device import resolve_device
from nrdfer.engine.evaluate import compute_metrics, predict
from nrdfer.engine.precision import autocast, resolve_precision
from nrdfer.engine.rng_state import capture_rng_state, restore_rng_state
from nrdfer.errors import UserError
from nrdfer.labels import CLASSES
from nrdfer.model_file import load_model_file, model_file_state
from tests.engine.tiny_engine import BatchSource, TinyVideoNet, make_clips


def draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    np.random.standard_normal()  # leave a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng_state()})
    expected = draws()
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert draws() == expected


class NotAllowed:
    pass


def test_save_is_atomic_and_load_is_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(2)})
    with pytest.raises(Exception):  # noqa: B017 - a lambda cannot be pickled
        save_checkpoint(path, {"epoch": 2, "bad": lambda: 0})
    assert load_checkpoint(path)["epoch"] == 1  # the old file survives the failed write
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind
    torch.save({"format": 1, "obj": NotAllowed()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="evil.pt: refused: the checkpoint holds pickled"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_model_file_carries_what_rebuilds_the_model(tmp_path):
    model = TinyVideoNet()
    state = model_file_state(
        model.state_dict(),
        model_params={"name": "tiny", "widths": [4, 8]},
        classes=CLASSES,
        preprocess={"frames": 4, "size": 16},
        info={"selected_epoch": 3},
    )
    save_checkpoint(tmp_path / "m.pt", state)
    loaded = load_model_file(tmp_path / "m.pt")
    assert loaded["classes"] == list(CLASSES) and loaded["preprocess"]["frames"] == 4
    again = TinyVideoNet()
    again.load_state_dict(loaded["model_state"])
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)
    save_checkpoint(tmp_path / "t.pt", {"kind": "training"})
    with pytest.raises(UserError, match="not a model file"):
        load_model_file(tmp_path / "t.pt")


def test_predict_and_metrics_with_and_without_the_filter():
    torch.manual_seed(0)
    model = TinyVideoNet(mu1=0.0, mu2=1.0)  # thresholds that always fire: neutral suppressed
    source = BatchSource(make_clips(21, seed=1), batch_size=8)
    pred = predict(model, source.eval(), torch.device("cpu"))
    assert model.training  # train mode restored
    assert pred.keys == source.keys and pred.filter_fired.all()
    assert not (pred.pred == CLASSES.index("Neutral")).any()
    m = compute_metrics(pred, CLASSES)
    assert m["clips"] == 21 and m["sf_fired_fraction"] == 1.0
    assert m["war"] == pytest.approx((pred.pred_seq == pred.labels).mean())
    assert m["sf_war"] == pytest.approx((pred.pred == pred.labels).mean())
    assert m["sf_gain_war"] == pytest.approx(m["sf_war"] - m["war"])
    never = predict(TinyVideoNet(mu1=1.0, mu2=0.0), source.eval(), torch.device("cpu"))
    mn = compute_metrics(never, CLASSES)
    assert mn["sf_fired_fraction"] == 0.0 and mn["sf_war"] == mn["war"]  # filter off = identity


def test_device_and_precision_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    with pytest.raises(UserError):
        resolve_precision("fp16", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16
