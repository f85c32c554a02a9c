"""The one place a device setting (``base.device``, ``--device``) becomes a torch device: the
engine, the face tools of the detect_align and enhance stages and ``nrdfer predict`` / ``faces``
all resolve it here."""

from __future__ import annotations

import re

import torch

from nrdfer.errors import UserError

__all__ = ["resolve_device"]


def resolve_device(spec: str, local_rank: int = 0, *, name: str = "base.device") -> torch.device:
    """Turn ``base.device`` (or ``--device``: ``name``, for messages) into a device.

    Args:
        spec: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        local_rank: process index on this node under torchrun; ``"auto"``/``"cuda"`` pick
            ``cuda:<local_rank>`` so each process drives its own GPU.
        name: where ``spec`` came from, named by a refusal.
    """
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if match is None:
        raise UserError(f"{name} = {spec!r}: must be auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(
            f"{name} = {spec!r}: CUDA is not available on this machine; use auto or cpu"
        )
    count = torch.cuda.device_count()
    if match.group(1) is None:
        return torch.device("cuda", local_rank % count)
    if int(match.group(1)) >= count:
        raise UserError(
            f"{name} = {spec!r}: this machine has {count} CUDA device(s), cuda:0 to "
            f"cuda:{count - 1}"
        )
    return torch.device(spec)
