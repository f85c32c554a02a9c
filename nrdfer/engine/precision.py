"""In which precision and layout a model runs on its device (resolved by :mod:`nrdfer.device`):
fp32/bf16/fp16 autocast, the gradient scaler, channels-last weights, uint8 clips to floats.

``precision="auto"`` means bf16 autocast on a CUDA device that supports it (fp16 with a
gradient scaler on older GPUs) and plain fp32 on CPU. bf16 on CPU is honoured only when asked
for explicitly (tests use it to exercise the autocast path without a GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from nrdfer.errors import UserError

Precision = Literal["fp32", "bf16", "fp16"]

_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(spec: str, device: torch.device) -> Precision:
    """``train.precision`` -> the precision actually used on ``device``.

    ``auto``: bf16 on CUDA when supported, else fp16 on CUDA; fp32 on CPU. ``fp16`` on CPU is
    refused (no CPU kernels worth having); ``bf16`` on CPU is allowed on request.
    """
    if spec == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if spec == "fp16" and device.type != "cuda":
        raise UserError("precision fp16 needs a CUDA device; use fp32 or bf16 on CPU")
    if spec not in ("fp32", "bf16", "fp16"):
        raise UserError(f"unknown precision '{spec}': use auto, fp32, bf16 or fp16")
    return spec  # type: ignore[return-value]


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Mixed-precision context for the forward pass (a no-op for fp32)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_DTYPES[precision]):
        yield


def make_grad_scaler(device: torch.device, precision: Precision) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (bf16 and fp32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def prepare_model(model: nn.Module, device: torch.device, *, channels_last: bool) -> nn.Module:
    """Move ``model`` to ``device``, with channels-last conv weights on CUDA.

    Channels-last only pays off with cuDNN (tensor cores), so it is applied on CUDA only; convs
    then run channels-last whatever the input layout.
    """
    model = model.to(device)
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def to_float_clips(clips: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 clips (B, T, 3, H, W) -> float in [0, 1] on ``device`` (converted after the copy,
    so the host-to-device transfer moves bytes, not floats)."""
    clips = clips.to(device, non_blocking=True)
    if clips.dtype == torch.uint8:
        return clips.float().div_(255.0)
    return clips.float()
