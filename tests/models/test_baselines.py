"""The Table 4-5 baselines: shapes and output contract, paper GMACs, a few training steps, losses."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nrdfer.models import ModelOutput, available_models, build_model
from nrdfer.models.baselines.losses import AuxLossModel, CenterLoss, ECSTFLLoss
from nrdfer.models.flops import count_macs, model_cost

PAPER_GMACS = {  # paper Tables 4-5, FLOPs (G) column
    "c3d": 38.57,
    "r2plus1d_18": 42.36,
    "resnet3d_18": 8.32,
    "i3d_rgb": 6.99,
    "vgg11_lstm": 31.65,
    "resnet18_lstm": 7.78,
    "resnet18_gru": 7.78,
    "resnet3d_18_center": 8.32,
    "ec_stfl": 8.32,
    "former_dfer": 9.11,
}
TOLERANCE = dict.fromkeys(PAPER_GMACS, 0.05)
TOLERANCE["former_dfer"] = 0.10  # published code vs paper (docs/baselines.md)
NAMES = list(PAPER_GMACS)
AUX = {"resnet3d_18_center", "ec_stfl"}


@pytest.fixture
def small(paper_params):
    """``small(name)``: the baseline at 1/8 width (widths[0] = 8), 16 frames of 32 px."""

    def make(name: str, **changes):
        base = dict(name=name, frames=16, image_size=32, widths=(8, 16, 32))
        base.update(changes)
        return dataclasses.replace(paper_params, **base)

    return make


def clips(p, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, p.frames, 3, p.image_size, p.image_size, generator=g)


def test_all_baselines_registered():
    assert set(NAMES) <= set(available_models())


@pytest.mark.parametrize("name", NAMES)
def test_forward_contract(small, name):
    p = small(name, num_classes=5)
    torch.manual_seed(0)
    model = build_model(p)
    for mode in (model.train, model.eval):
        mode()
        out = model(clips(p, 2))
        assert isinstance(out, ModelOutput)
        assert out.logits_seq.shape == (2, 5)
        assert out.logits is out.logits_seq
        assert out.filter_fired.dtype == torch.bool and not out.filter_fired.any()
        assert out.filter_fired.shape == (2,)
        assert out.feature.dim() == 2 and out.feature.shape[0] == 2
        assert out.snippet_logits is None
        assert torch.isfinite(out.logits).all() and torch.isfinite(out.feature).all()
        if name == "former_dfer" and not model.training:
            assert out.attention.shape == (2, p.frames)
            assert torch.allclose(out.attention.sum(dim=1), torch.ones(2), atol=1e-5)
        else:
            assert out.attention is None
    assert hasattr(model, "extra_loss") == (name in AUX)


@pytest.mark.parametrize("name", NAMES)
def test_rejects_wrong_clip_shape(small, name):
    p = small(name)
    model = build_model(p).eval()
    with pytest.raises(ValueError, match="clip batch"):
        model(torch.rand(1, p.frames, 3, p.image_size + 8, p.image_size + 8))


def test_c3d_rejects_too_short_clips(small):
    with pytest.raises(ValueError, match="C3D needs larger clips"):
        build_model(small("c3d", frames=8))


def test_eval_is_deterministic_and_batch_independent(small):
    """BN in eval mode: a clip's logits do not depend on the rest of the batch."""
    p = small("resnet3d_18")
    model = build_model(p).eval()
    x = clips(p, 3)
    with torch.no_grad():
        full = model(x).logits
        one = model(x[1:2]).logits
    assert torch.allclose(full[1:2], one, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_training_steps_lower_the_loss(small, name):
    """Six Adam steps on one generated batch of 4 class-coloured clips: the loss drops >10 %."""
    p = small(name, num_classes=3)
    torch.manual_seed(0)
    model = build_model(p).train()
    y = torch.tensor([0, 1, 2, 1])
    colour = torch.eye(3)[y][:, None, :, None, None]  # (4, 1, 3, 1, 1): class -> RGB channel
    x = 0.5 * clips(p, 4, seed=1) + 0.5 * colour
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_of(out: ModelOutput) -> torch.Tensor:
        loss = F.cross_entropy(out.logits_seq, y)
        if hasattr(model, "extra_loss"):
            loss = loss + model.extra_loss(out, y)
        return loss

    losses = []
    for _ in range(6):
        loss = loss_of(model(x))
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", NAMES)
def test_paper_gmacs(paper_params, name):
    """GMACs of one 16x112x112 clip (thop convention) against the paper's FLOPs column."""
    cost = model_cost(dataclasses.replace(paper_params, name=name))
    got = cost.macs_paper / 1e9
    assert abs(got - PAPER_GMACS[name]) / PAPER_GMACS[name] < TOLERANCE[name], got
    assert cost.macs <= cost.macs_paper * 1.01  # thop adds BN/LSTM element-wise terms


def test_recurrent_rules_match_thop_formulas():
    """thop's LSTM/GRU cell counts, by hand, for input 5, hidden 3, 4 steps, batch 2."""
    x = torch.zeros(2, 4, 5)
    i, h = 5, 3
    gate = (i + h) * h + h + 2 * h
    lstm_cell = 4 * gate + 4 * h
    gru_cell = 3 * gate + 4 * h
    assert count_macs(nn.LSTM(i, h, batch_first=True), x).paper == lstm_cell * 4 * 2
    assert count_macs(nn.GRU(i, h, batch_first=True), x).paper == gru_cell * 4 * 2
    two = nn.LSTM(i, h, num_layers=2, bidirectional=True, batch_first=True)
    two_cell = 2 * lstm_cell + 2 * (4 * ((2 * h + h) * h + 3 * h) + 4 * h)
    assert count_macs(two, x).paper == two_cell * 4 * 2


def test_width_scale_shrinks_channels(small, paper_params):
    full = model_cost(dataclasses.replace(paper_params, name="resnet3d_18"))
    narrow = model_cost(small("resnet3d_18", frames=16, image_size=112))
    assert narrow.params < full.params / 40  # 1/8 width: about 1/64 of the weights
    assert narrow.macs_paper < full.macs_paper / 10  # the 3-channel stem shrinks only 8x


# ------------------------------------------------------------------------------------------
# auxiliary losses
# ------------------------------------------------------------------------------------------


def test_center_loss_value_and_gradient():
    loss = CenterLoss(num_classes=3, dim=2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]))
    feature = torch.tensor([[0.0, 0.0], [1.0, 3.0]], requires_grad=True)
    labels = torch.tensor([0, 1])
    value = loss(feature, labels)
    assert value.item() == pytest.approx(0.5 * (0.0 + 4.0) / 2)
    value.backward()
    assert torch.allclose(loss.centers.grad[1], torch.tensor([0.0, -1.0]))  # (c - x) / B
    assert loss.centers.grad[2].abs().sum() == 0  # absent class untouched


def test_ec_stfl_loss_properties():
    loss = ECSTFLLoss()
    labels = torch.tensor([0, 0, 1, 1])
    tight = torch.tensor([[0.0, 0.0], [0.0, 0.2], [5.0, 5.0], [5.0, 5.2]])
    loose = torch.tensor([[0.0, 0.0], [3.0, 3.0], [5.0, 5.0], [2.0, 1.0]])
    assert loss(tight, labels) < loss(loose, labels)
    # S_w = 4 * 0.1^2 = 0.04; S_b = 4 * (2.5^2 + 2.5^2) = 50
    assert loss(tight, labels).item() == pytest.approx(0.04 / 50)
    assert loss(3.0 * loose, labels).item() == pytest.approx(loss(loose, labels).item())
    one_class = torch.rand(3, 2, requires_grad=True)
    zero = loss(one_class, torch.tensor([2, 2, 2]))
    assert zero.item() == 0.0
    zero.backward()
    assert one_class.grad is not None


def test_aux_loss_model_weights_the_feature_loss(small):
    p = small("ec_stfl", aux_loss_weight=0.5)
    model = build_model(p)
    assert isinstance(model, AuxLossModel) and model.weight == 0.5
    out = model(clips(p, 4))
    y = torch.tensor([0, 1, 0, 1])
    expected = 0.5 * ECSTFLLoss()(out.feature, y)
    assert torch.allclose(model.extra_loss(out, y), expected)
    center = build_model(small("resnet3d_18_center"))
    assert "aux_loss.centers" in dict(center.named_parameters())


def test_engine_adds_the_extra_loss(small, tmp_path):
    """``nrdfer.engine.train.fit`` calls ``model.extra_loss``: the centre-loss centres move."""
    from nrdfer.engine.train import fit
    from nrdfer.labels import CLASSES
    from tests.engine.tiny_engine import BatchSource, make_clips, train_params

    torch.manual_seed(0)
    model = build_model(small("resnet3d_18_center", num_classes=len(CLASSES)))
    calls = []
    original = model.extra_loss
    model.extra_loss = lambda out, y: calls.append(len(y)) or original(out, y)
    before = model.aux_loss.centers.detach().clone()
    data = make_clips(n=8, frames=16, size=32)
    params = train_params(epochs=1, weight_decay=0.0)
    fit(
        model,
        BatchSource(data, batch_size=4),
        params,
        seed=0,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "ckpt.pt",
        run_identity={"train": params.__dict__},
        classes=CLASSES,
        progress=False,
    )
    assert calls == [4, 4]
    assert not torch.allclose(model.aux_loss.centers.detach(), before)


@pytest.mark.parametrize("side", [7, 8, 13, 14, 28, 56])
def test_i3d_pools_follow_tf_same(side):
    """Every I3D max-pool gives ceil(side / stride), TensorFlow's "SAME" size."""
    from nrdfer.models.baselines.i3d import POOL_BEFORE, _same_max_pool

    for kernel, stride in [((1, 3, 3), (1, 2, 2)), *POOL_BEFORE.values()]:
        pool = _same_max_pool(kernel, stride)
        out = pool(torch.zeros(1, 1, side, side, side))
        assert tuple(out.shape[2:]) == tuple(-(-side // s) for s in stride), (kernel, side)
