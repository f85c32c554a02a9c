"""FastMaxPool2d: the same bits as nn.MaxPool2d, forward and backward, ties included."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from nrdfer.models.layers import FastMaxPool2d


def _maps(seed: int) -> torch.Tensor:
    """(N, C, H, W) ReLU maps with flat regions: exact ties, zeros and positive plateaus."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 8, 24, 24, generator=g).relu()
    x[:, :, 4:12, 4:12] = 0.75  # a plateau: every window inside is a tie of a positive value
    x[:, :3, 14:, :] = 0.0  # all-zero windows (after ReLU)
    x[0, 0, ::2, ::2] = 2.0  # ties on a grid, across overlapping windows
    return x


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_same_values_indices_and_gradients_as_the_plain_pool(kernel, stride, padding):
    x = _maps(kernel * 10 + stride)
    plain, fast = nn.MaxPool2d(kernel, stride, padding), FastMaxPool2d(kernel, stride, padding)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    ya, yb = plain(a), fast(b)
    assert torch.equal(ya, yb)
    assert yb.is_contiguous()  # the input's layout, not channels-last
    grad = torch.randn(ya.shape, generator=torch.Generator().manual_seed(1))
    ya.backward(grad)
    yb.backward(grad)
    assert torch.equal(a.grad, b.grad)  # every tie sends its gradient to the same position
    assert b.grad.is_contiguous()


def test_a_model_trains_to_the_same_bits():
    """Three SGD steps of conv -> BN -> ReLU -> pool -> head with either pool: equal weights."""

    def net(pool: nn.Module) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            pool, nn.Flatten(), nn.Linear(8 * 12 * 12, 5),
        )  # fmt: skip

    x = torch.rand(16, 3, 48, 48)
    x[:, :, :10] = 0.0  # flat border: ties after the stem
    y = torch.randint(0, 5, (16,), generator=torch.Generator().manual_seed(2))
    weights = []
    for pool in (nn.MaxPool2d(3, 2, 1), FastMaxPool2d(3, 2, 1)):
        model = net(pool)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_non_contiguous_and_traced_inputs_take_the_plain_operator():
    pool = FastMaxPool2d(3, 2, 1)
    x = _maps(3)
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(pool(cl), nn.MaxPool2d(3, 2, 1)(x))
    traced = torch.jit.trace(pool, x)
    assert torch.equal(traced(x), pool(x))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)  # no layout conversion baked into the graph
    assert "contiguous" not in traced.code
