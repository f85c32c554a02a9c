"""The CUDA-only paths on the CPU where torch allows it, against the plain path: evaluation
under bf16 autocast vs float32 (the parity `benchmarks/gpu_check.sh` measures on a GPU), and,
on a CUDA device, CUDA vs CPU."""

from __future__ import annotations

import pytest
import torch

from nrdfer.engine.precision import autocast, to_float_clips
from nrdfer.models import build_model
from nrdfer.params import load_section
from tests.conftest import ROOT


def demo_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_section(ROOT / "params.yaml", "model")).eval()


def clips(n: int = 8) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    return torch.randint(0, 256, (n, 16, 3, 48, 48), dtype=torch.uint8, generator=gen)


@torch.no_grad()
def run(model, x, device, precision):
    model = model.to(device)
    with autocast(torch.device(device), precision):
        out = model(to_float_clips(x, torch.device(device)))
    return out.logits_seq.float().cpu(), out.logits.float().cpu(), out.filter_fired.cpu()


def test_bf16_autocast_evaluation_matches_fp32_on_cpu():
    model, x = demo_model(), clips()
    seq32, fin32, fired32 = run(model, x, "cpu", "fp32")
    seq16, fin16, fired16 = run(model, x, "cpu", "bf16")
    probs32, probs16 = seq32.softmax(-1), seq16.softmax(-1)
    assert (probs32 - probs16).abs().max() < 0.05  # bf16 keeps 8 bits of mantissa
    top2 = seq32.topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.1  # predictions not decided by rounding
    assert torch.equal(seq32.argmax(-1)[clear], seq16.argmax(-1)[clear])
    assert torch.isfinite(fin16).all() and fired16.dtype == torch.bool


@pytest.mark.gpu
def test_cuda_evaluation_matches_cpu():
    model, x = demo_model(), clips()
    seq_cpu = run(model, x, "cpu", "fp32")[0]
    seq_gpu = run(model, x, "cuda", "fp32")[0]
    assert (seq_cpu.softmax(-1) - seq_gpu.softmax(-1)).abs().max() < 1e-3
    seq_bf16 = run(model, x, "cuda", "bf16")[0]
    assert (seq_cpu.softmax(-1) - seq_bf16.softmax(-1)).abs().max() < 0.05
