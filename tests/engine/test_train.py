"""The training loop on CPU: over-fitting, determinism, NaN guard, selection, dvclive, resume."""

from __future__ import annotations

import json

import pytest
import torch

from nrdfer.checkpoint import load_checkpoint
from nrdfer.engine.rng_state import seed_everything
from nrdfer.engine.train import (
    BEST_ON_TEST_NOTE,
    TrainingDiverged,
    WeightAverage,
    fit,
    lr_gamma,
)
from nrdfer.labels import CLASSES
from tests.engine.tiny_engine import BatchSource, NanAfter, TinyVideoNet, make_clips, train_params

CPU = torch.device("cpu")


def run_fit(tmp_path, params, *, seed=0, model=TinyVideoNet, data=None, name="ckpt.pt", **kwargs):
    seed_everything(seed)
    model = model()
    source = BatchSource(data if data is not None else make_clips(), batch_size=8, seed=seed)
    result = fit(
        model,
        source,
        params,
        seed=seed,
        device=CPU,
        checkpoint_path=tmp_path / name,
        run_identity={"train": params.__dict__, "seed": seed},
        classes=CLASSES,
        progress=False,
        **kwargs,
    )
    return model, result


def test_overfits_32_clips_to_full_train_accuracy(tmp_path):
    data = make_clips(32, seed=1)
    model, result = run_fit(
        tmp_path, train_params(epochs=40, lr=0.05, lr_final_factor=0.5), data=data
    )
    model.eval()
    with torch.no_grad():
        pred = model(data[0].float() / 255).logits_seq.argmax(1)
    assert (pred == data[1]).float().mean().item() == 1.0
    assert result.history[-1]["train_acc"] == 1.0
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_cpu_training_is_deterministic(tmp_path):
    params = train_params(epochs=2)
    _, a = run_fit(tmp_path / "a", params, model=lambda: TinyVideoNet(dropout=0.2))
    _, b = run_fit(tmp_path / "b", params, model=lambda: TinyVideoNet(dropout=0.2))
    assert a.history == b.history
    for k in a.model_state:
        assert torch.equal(a.model_state[k], b.model_state[k]), k
    _, c = run_fit(tmp_path / "c", params, seed=1, model=lambda: TinyVideoNet(dropout=0.2))
    assert c.history != a.history  # the seed matters


def test_lr_decays_exponentially_to_the_final_factor(tmp_path):
    params = train_params(epochs=4, lr=0.1, lr_final_factor=0.01)
    _, result = run_fit(tmp_path, params)
    lrs = [r["lr"] for r in result.history]
    assert lrs[0] == pytest.approx(0.1)
    assert lrs == pytest.approx([0.1 * lr_gamma(params) ** e for e in range(4)])
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["scheduler"]["_last_lr"][0] == pytest.approx(0.1 * 0.01)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_checkpoint(tmp_path):
    params = train_params(epochs=3)
    steps_per_epoch = 4  # 32 clips, batch 8

    def model():
        return NanAfter(TinyVideoNet(), n=steps_per_epoch + 3)  # epoch 2, step 3

    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 3") as info:
        run_fit(tmp_path, params, model=model)
    assert "after epoch 1" in str(info.value)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model_state"].values())


def test_best_on_test_is_labelled_and_selection_is_last(tmp_path):
    data = make_clips(32, seed=2)
    test = BatchSource(make_clips(21, seed=3), batch_size=8)
    _, result = run_fit(
        tmp_path,
        train_params(epochs=3, eval_every_epoch=True),
        data=data,
        test_batches=test.eval,
        live_dir=tmp_path / "live",
    )
    assert result.selection == "last" and result.selected_epoch == 3
    best = result.best_on_test
    assert best["best_on_test_note"] == BEST_ON_TEST_NOTE
    assert all(k.startswith("best_on_test_") for k in best)
    wars = [r["test_war"] for r in result.history]
    assert best["best_on_test_war"] == max(wars)
    assert best["best_on_test_epoch"] == 1 + wars.index(max(wars))
    gain = result.history[-1]["test_sf_gain_war"]
    assert gain == pytest.approx(result.history[-1]["test_sf_war"] - result.history[-1]["test_war"])
    # dvclive: summary of the last epoch and one curve row per epoch, no dvc.yaml of its own
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert summary["step"] == 3 and summary["test"]["sf_war"] == result.history[-1]["test_sf_war"]
    rows = (tmp_path / "live" / "plots" / "metrics" / "test" / "war.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["1", "2", "3"]
    assert not (tmp_path / "live" / "dvc.yaml").exists()


def test_selection_val_keeps_the_best_validation_epoch(tmp_path):
    val = BatchSource(make_clips(14, seed=6), batch_size=7)
    _, result = run_fit(tmp_path, train_params(epochs=4, selection="val"), val_batches=val.eval)
    scores = [r["val_sf_war"] for r in result.history]
    best = 1 + scores.index(max(scores))
    assert result.selected_epoch == best
    if best != 4:  # the kept weights are the best epoch's, not the last one's
        last = load_checkpoint(tmp_path / "ckpt.pt")["model_state"]
        assert any(not torch.equal(last[k], v) for k, v in result.model_state.items())
    with pytest.raises(Exception, match="validation split"):
        run_fit(tmp_path / "x", train_params(selection="val"))


def test_resume_in_process_matches_uninterrupted_and_skips_finished_runs(tmp_path):
    params = train_params(epochs=4, eval_every_epoch=True)
    test = BatchSource(make_clips(14, seed=5), batch_size=7)
    _, full = run_fit(tmp_path / "full", params, test_batches=test.eval, live_dir=tmp_path / "l1")
    # a run with epochs=2 and the same identity is a prefix; continuing it to 4 epochs resumes
    short = train_params(epochs=4, eval_every_epoch=True)
    stop = {"n": 0}

    def interrupt(record):
        stop["n"] += 1
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit(tmp_path / "part", short, test_batches=test.eval, on_epoch_end=interrupt)
    _, resumed = run_fit(tmp_path / "part", short, test_batches=test.eval, live_dir=tmp_path / "l2")
    assert resumed.resumed_from_epoch == 2 and resumed.history == full.history
    for k in full.model_state:
        assert torch.equal(full.model_state[k], resumed.model_state[k]), k
    for name in ("metrics.json", "plots/metrics/test/sf_war.tsv", "plots/metrics/train/loss.tsv"):
        assert (tmp_path / "l1" / name).read_text() == (tmp_path / "l2" / name).read_text()
    # finished: nothing left to train, same result
    _, again = run_fit(tmp_path / "part", short, test_batches=test.eval)
    assert again.resumed_from_epoch == 4 and again.history == full.history
    # another identity (e.g. other params) is not resumed from
    _, other = run_fit(tmp_path / "part", train_params(epochs=1))
    assert other.resumed_from_epoch == 0 and len(other.history) == 1


def test_warmup_scales_the_first_steps_and_leaves_the_schedule_alone(tmp_path):
    """SGD without momentum or decay: a step moves the weights by lr * factor * grad, with
    factor n / warmup_steps for the n-th step; the epochs' rates are those without warm-up."""
    seen: list[float] = []
    original = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    params = train_params(epochs=2, momentum=0.0, weight_decay=0.0, lr=0.08, warmup_steps=6)
    torch.optim.SGD.step = spy
    try:
        _, result = run_fit(tmp_path, params)
    finally:
        torch.optim.SGD.step = original
    steps_per_epoch = 4  # 32 clips, batch 8
    epoch2 = 0.08 * lr_gamma(params)
    expected = [0.08 * n / 6 for n in range(1, 5)] + [epoch2 * n / 6 for n in (5, 6)] + [epoch2] * 2
    assert len(seen) == 2 * steps_per_epoch
    assert seen == pytest.approx(expected)
    assert [r["lr"] for r in result.history] == pytest.approx([0.08, epoch2])
    assert load_checkpoint(tmp_path / "ckpt.pt")["steps"] == 8


def test_weight_average_formula_and_kept_weights(tmp_path):
    lin = torch.nn.Linear(2, 1)
    avg = WeightAverage(lin, decay=0.5)
    w0 = lin.weight.detach().clone()
    seen = []
    for step in range(1, 4):  # weights after the steps: w0 + 1, w0 + 2, w0 + 3
        with torch.no_grad():
            lin.weight.add_(1.0)
        avg.update(lin)
        seen.append(w0 + step)
        # bias-corrected EMA: the initial weights never count
        weights = [0.5 ** (step - i) for i in range(1, step + 1)]
        expected = sum(w * s for w, s in zip(weights, seen, strict=True)) / sum(weights)
        assert torch.allclose(avg.model.weight, expected), step
    # a run with ema keeps (and evaluates) the average, not the last trained weights
    params = train_params(epochs=2, ema_decay=0.9)
    model, result = run_fit(tmp_path, params)
    trained = model.state_dict()
    assert any(not torch.equal(result.model_state[k], trained[k]) for k in trained)
    state = load_checkpoint(tmp_path / "ckpt.pt")
    for k in trained:
        assert torch.equal(state["weight_average"]["weights"][k], result.model_state[k]), k
        assert torch.equal(state["model_state"][k], trained[k].cpu()), k


def test_resume_with_warmup_and_weight_average_matches_uninterrupted(tmp_path):
    params = train_params(epochs=3, warmup_steps=5, ema_decay=0.8, label_smoothing=0.1)
    _, full = run_fit(tmp_path / "full", params)

    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_fit(tmp_path / "part", params, on_epoch_end=interrupt)
    _, resumed = run_fit(tmp_path / "part", params)
    assert resumed.resumed_from_epoch == 1 and resumed.history == full.history
    for k in full.model_state:
        assert torch.equal(full.model_state[k], resumed.model_state[k]), k


def test_cosine_schedule_anneals_to_the_final_factor(tmp_path):
    import math

    params = train_params(epochs=4, lr=0.1, lr_final_factor=0.01, schedule="cosine")
    _, result = run_fit(tmp_path, params)
    expected = [0.1 * (0.01 + 0.99 * (1 + math.cos(math.pi * e / 4)) / 2) for e in range(4)]
    assert [r["lr"] for r in result.history] == pytest.approx(expected)
    assert expected[0] == pytest.approx(0.1) and expected[-1] < 0.02


def test_recalibrated_norms_hold_the_statistics_of_the_given_batches():
    from nrdfer.engine.train import recalibrate_norms

    class FrameNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm2d(3)

        def forward(self, x):  # (B, T, 3, H, W)
            return self.bn(x.flatten(0, 1))

    model = FrameNorm()
    clips, labels, keys = make_clips(12, seed=3)
    batches = [(clips[i : i + 4], labels[i : i + 4], keys[i : i + 4]) for i in (0, 4, 8)]
    state = torch.get_rng_state()
    recalibrate_norms(model, batches, 2, CPU, "fp32")  # the first two batches only
    assert torch.equal(torch.get_rng_state(), state)
    frames = clips[:8].float().div(255).flatten(0, 1)  # (8*T, 3, H, W)
    assert torch.allclose(model.bn.running_mean, frames.mean(dim=(0, 2, 3)), atol=1e-5)
    assert model.bn.momentum == 0.1 and not model.training
