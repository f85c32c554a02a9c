"""NR-DFERNet end to end on tiny configs: shapes, invariants, gradients, dtypes, compile."""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F

from nrdfer.models import ModelOutput, build_model
from nrdfer.models.decision import snippet_filter
from nrdfer.models.nrdfernet import NRDFERNet
from nrdfer.models.registry import UnknownModelError, available_models, register
from nrdfer.models.temporal import DynamicClassToken, attention_rollout


def clip(p, batch=2, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, p.frames, 3, p.image_size, p.image_size, generator=g)


def built(p, seed=0) -> NRDFERNet:
    torch.manual_seed(seed)
    return build_model(p)


def capture_temporal_inputs(model):
    """Record the input tokens of the first temporal layer (after position embedding)."""
    seen = []
    handle = model.temporal.layers[0].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    return seen, handle


@pytest.mark.parametrize(
    ("frames", "width", "stride", "classes", "image"),
    [(8, 3, 2, 7, 32), (16, 3, 2, 7, 32), (16, 6, 3, 5, 32), (6, 2, 1, 3, 48), (4, 3, 1, 7, 16)],
)
def test_output_shapes(tiny, frames, width, stride, classes, image):
    p = tiny(
        frames=frames,
        snippet_len=width,
        snippet_stride=stride,
        num_classes=classes,
        image_size=image,
        neutral_index=min(2, classes - 1),
    )
    model = built(p)
    x = clip(p)
    n_snip = (frames - 1 - width) // stride + 1
    token_dim = p.widths[-1] * ((image // 16 + 1) // 2) ** 2  # C · ceil(H/16 / 2)^2

    model.train()
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.logits_seq.shape == (2, classes) and out.logits is out.logits_seq
    assert out.snippet_logits is None and out.attention is None
    assert out.filter_fired.shape == (2,) and not out.filter_fired.any()
    assert out.feature.shape == (2, token_dim)

    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.logits.shape == (2, classes)
    assert out.snippet_logits.shape == (2, n_snip, classes)
    assert out.attention.shape == (2, frames - 1)
    assert out.filter_fired.dtype == torch.bool
    assert torch.allclose(out.attention.sum(-1), torch.ones(2)) and (out.attention >= 0).all()


def test_paper_token_width_is_derived(paper_params):
    with torch.device("meta"):
        model = build_model(paper_params)
    assert model.token_dim == 4096  # 256 · 4 · 4 at 112 px (docs/model.md)
    assert model.temporal.pos_embed.shape == (16, 4096)
    assert model.dsf.static.pos_embed.shape == (16, 256)


def test_dct_equals_mean_of_frame_tokens(tiny):
    p = tiny(dropout=0.0)
    model = built(p).eval()
    x = clip(p)
    seen, handle = capture_temporal_inputs(model)
    with torch.no_grad():
        tokens = model.frame_tokens(x)
        model(x, return_attention=False)
    handle.remove()
    z = seen[0] - model.temporal.pos_embed  # (B, T, D) without the position embedding
    assert torch.allclose(z[:, 1:], tokens, atol=1e-6)
    assert torch.allclose(z[:, 0], tokens.mean(dim=1), atol=1e-6)
    assert torch.allclose(DynamicClassToken()(tokens)[:, 0], tokens.mean(dim=1))


def test_learned_token_is_the_same_for_every_clip(tiny):
    p = tiny(dct=False)
    model = built(p).eval()
    seen, handle = capture_temporal_inputs(model)
    with torch.no_grad():
        model(clip(p, batch=3), return_attention=False)
    handle.remove()
    z = seen[0] - model.temporal.pos_embed
    assert torch.allclose(z[:, 0], model.temporal.class_token.token.expand(3, -1))
    assert not torch.allclose(z[0, 0], z[0, 1:].mean(0))


def test_snippets_run_through_the_same_transformer_and_head(tiny):
    p = tiny(frames=10, snippet_len=3, snippet_stride=2)
    model = built(p).eval()
    x = clip(p)
    with torch.no_grad():
        out = model(x)
        tokens = model.frame_tokens(x)
        for j, start in enumerate(range(0, 9 - 3 + 1, 2)):
            logits, _, _ = model.temporal(tokens[:, start : start + 3])
            assert torch.allclose(out.snippet_logits[:, j], logits, atol=1e-5)
    expected, fired = snippet_filter(out.logits_seq, out.snippet_logits, p.mu1, p.mu2, 2)
    assert torch.equal(out.logits, expected) and torch.equal(out.filter_fired, fired)


def test_filter_that_never_fires_is_exact_identity(tiny):
    p = tiny(mu1=1.0)
    model = built(p).eval()
    with torch.no_grad():
        out = model(clip(p, batch=4))
    assert out.snippet_logits is not None
    assert not out.filter_fired.any()
    assert torch.equal(out.logits, out.logits_seq)


def test_filter_that_always_fires_suppresses_neutral(tiny):
    p = tiny(mu1=0.0, mu2=1.0)
    model = built(p).eval()
    with torch.no_grad():
        out = model(clip(p, batch=3))
    assert out.filter_fired.all()
    assert (out.logits.softmax(-1)[:, p.neutral_index] == 0).all()
    assert (out.logits.argmax(-1) != p.neutral_index).all()


def test_sf_off_has_no_snippets(tiny):
    p = tiny(sf=False)
    model = built(p).eval()
    with torch.no_grad():
        out = model(clip(p))
    assert out.snippet_logits is None and torch.equal(out.logits, out.logits_seq)
    assert out.attention is not None


def test_dsf_off_has_no_dynamic_branch(tiny):
    on, off = built(tiny(dsf=True)), built(tiny(dsf=False))
    assert on.dsf.dynamic is not None and off.dsf.dynamic is None
    n_dynamic = sum(q.numel() for q in on.dsf.dynamic.parameters())
    n_on = sum(q.numel() for q in on.parameters())
    assert sum(q.numel() for q in off.parameters()) == n_on - n_dynamic


def test_dsf_off_output_ignores_frame_differences(tiny):
    """Without DSF the features of frame i depend on frame i only (static branch)."""
    p = tiny(dsf=False, N=1)
    model = built(p).eval()
    x = clip(p, batch=1)
    y = x.clone()
    y[:, -1] = torch.rand_like(y[:, -1])  # the last frame only feeds the dynamic branch
    with torch.no_grad():
        assert torch.equal(model.frame_tokens(x), model.frame_tokens(y))
        model_on = built(tiny(N=1)).eval()
        assert not torch.equal(model_on.frame_tokens(x), model_on.frame_tokens(y))


@pytest.mark.parametrize(
    "switches",
    [{}, {"dsf": False}, {"dct": False}, {"sf": False}, {"M": 0}, {"dsf": False, "dct": False}],
)
def test_gradients_reach_every_used_parameter(tiny, switches):
    p = tiny(**switches)
    model = built(p).train()
    x = clip(p, batch=3)
    out = model(x)
    F.cross_entropy(out.logits_seq, torch.tensor([0, 2, 5])).backward()
    missing = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum()]
    assert missing == []


def test_float32_and_float64_agree(tiny):
    p = tiny()
    m32 = built(p).eval()
    m64 = copy.deepcopy(m32).double()
    x = clip(p)
    with torch.no_grad():
        a, b = m32(x), m64(x.double())
    assert b.logits_seq.dtype == torch.float64
    for name in ("logits_seq", "feature", "snippet_logits", "attention"):
        assert torch.allclose(getattr(a, name).double(), getattr(b, name), atol=1e-4, rtol=1e-4), (
            name
        )
    assert torch.equal(a.filter_fired, b.filter_fired)


def test_bf16_autocast_on_cpu(tiny):
    p = tiny()
    model = built(p)
    x = clip(p)
    model.eval()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.logits_seq.dtype == torch.bfloat16
    for name in ("logits", "logits_seq", "snippet_logits", "attention", "feature"):
        assert torch.isfinite(getattr(low, name).float()).all(), name
    scale = ref.logits_seq.abs().max()
    assert (low.logits_seq.float() - ref.logits_seq).abs().max() < 0.1 * scale + 0.05
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x).logits_seq.float(), torch.tensor([1, 2]))
    loss.backward()
    assert all(torch.isfinite(q.grad).all() for q in model.parameters())


@pytest.mark.slow
def test_torch_compile_matches_eager(tiny):
    """Dynamo captures the whole forward (eval: snippets + filter + rollout) without errors.

    ``aot_eager`` traces exactly what inductor would receive but skips C++ code generation,
    which takes minutes on the 2-core CI machines; inductor itself was checked by hand
    (docs/model.md).
    """
    p = tiny(N=1, M=1)
    model = built(p).eval()
    x = clip(p)
    compiled = torch.compile(model, backend="aot_eager", dynamic=False)
    with torch.no_grad():
        ref, out = model(x), compiled(x)
    for name in ("logits", "logits_seq", "snippet_logits", "attention", "feature"):
        assert torch.allclose(getattr(out, name), getattr(ref, name), atol=1e-4, rtol=1e-4), name
    assert torch.equal(out.filter_fired, ref.filter_fired)


def test_rollout_hand_cases():
    n = 4  # class token + 3 frames
    onto_frame3 = torch.zeros(1, 1, n, n)
    onto_frame3[0, 0, :, 3] = 1.0  # everyone attends to frame 3 (token 3)
    assert torch.allclose(attention_rollout([onto_frame3]), torch.tensor([[0.0, 0.0, 1.0]]))
    uniform = torch.full((1, 2, n, n), 1.0 / n)
    assert torch.allclose(attention_rollout([uniform]), torch.full((1, 3), 1.0 / 3))
    # layer 1: class attends to itself, token 1 attends to token 2; layer 2: class -> token 1
    first = torch.eye(n)[None, None].clone()
    first[0, 0, 1] = torch.tensor([0.0, 0.0, 1.0, 0.0])
    second = torch.eye(n)[None, None].clone()
    second[0, 0, 0] = torch.tensor([0.0, 1.0, 0.0, 0.0])
    # R[0] = ((e0 + e1) / 2) · Â1 = e0/2 + (e1 + e2)/4 -> frames 1, 2 share the attention
    assert torch.allclose(attention_rollout([first, second]), torch.tensor([[0.5, 0.5, 0.0]]))


def test_bad_inputs_are_rejected(tiny):
    p = tiny()
    model = built(p)
    with pytest.raises(ValueError, match="clip batch"):
        model(torch.rand(1, p.frames + 1, 3, p.image_size, p.image_size))
    with pytest.raises(ValueError, match="frames, got"):
        model(torch.rand(1, p.frames, 3, p.image_size + 16, p.image_size + 16))
    with pytest.raises(ValueError, match="snippet width"):
        build_model(tiny(snippet_len=p.frames))
    with pytest.raises(ValueError, match="neutral_index"):
        build_model(tiny(neutral_index=7))


def test_registry(tiny):
    assert "nrdfernet" in available_models()
    with pytest.raises(UnknownModelError, match="unknown model 'nope'.*nrdfernet"):
        build_model(types.SimpleNamespace(name="nope"))  # nrdfer.params refuses it earlier
    with pytest.raises(ValueError, match="registered twice"):
        register("nrdfernet", reads=())(lambda params: None)
