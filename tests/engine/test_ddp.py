"""Two CPU processes with gloo (DistributedDataParallel) train the same model as one process."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

from nrdfer.checkpoint import load_checkpoint
from nrdfer.engine.distributed import DistContext
from nrdfer.engine.rng_state import seed_everything
from nrdfer.engine.train import fit
from nrdfer.labels import CLASSES
from tests.engine.tiny_engine import BatchSource, TinyVideoNet, ddp_worker, make_clips, train_params


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)

    seed_everything(0)
    single = fit(
        TinyVideoNet(),
        BatchSource(make_clips(32, seed=11), batch_size=8),
        train_params(epochs=3),
        seed=0,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "single.pt",
        run_identity={},
        classes=CLASSES,
        ctx=DistContext(),
        progress=False,
    )
    h0 = json.loads((tmp_path / "history0.json").read_text())
    h1 = json.loads((tmp_path / "history1.json").read_text())
    assert h0 == h1  # the reduced epoch metrics agree on every rank
    for ddp_rec, one_rec in zip(h0, single.history, strict=True):
        assert ddp_rec["train_loss"] == pytest.approx(one_rec["train_loss"], rel=1e-5, abs=1e-6)
        assert ddp_rec["train_acc"] == pytest.approx(one_rec["train_acc"])
    w0 = torch.load(tmp_path / "final0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "final1.pt", weights_only=True)
    for key, value in single.model_state.items():
        assert torch.equal(w0[key], w1[key]), key  # DDP keeps the replicas in sync
        torch.testing.assert_close(w0[key], value, rtol=1e-4, atol=1e-5)
    # only rank 0 wrote the checkpoint, and it carries both ranks' RNG states
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["epoch"] == 3 and len(state["rng"]) == 2
