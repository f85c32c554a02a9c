"""Parameter and multiply-accumulate (MAC) counts of one clip, two ways.

- **True MACs**: every multiply-accumulate of convolutions, linear layers and attention matmuls
  actually executed by the forward pass, counted by ``torch.utils.flop_counter.FlopCounterMode``
  (which reports 2 FLOPs per MAC) under ``sdpa_kernel(SDPBackend.MATH)`` so fused attention is
  counted too. Normalisation and activations are not MACs and are not counted.
- **Paper convention**: the numbers of the paper's Tables 3-5, which were measured with *thop*
  on the authors' code (docs/model.md): module hooks count convolutions
  (``out.numel() · (C_in/groups · k_h·k_w + bias)``), linear layers (``in_features ·
  out.numel()``) and normalisation layers (``2 · in.numel()``), but *no* functional op (the
  attention matmuls are missed); and the authors' residual wrapper called every transformer
  sub-block twice, so everything inside a module whose class sets ``paper_call_count = 2`` is
  counted twice. Snippets are part of the eval forward pass (44 temporal tokens at the
  defaults), so they are counted by running it, not by formula.

Both counts come from ONE eval-mode forward pass of a batch of one clip, for any registered
model: a baseline opts into the double-call convention only through ``paper_call_count`` and
can add thop rules for further layer types with :func:`paper_rule`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = [
    "MacCount",
    "ModelCost",
    "PAPER_RULES",
    "count_macs",
    "count_params",
    "model_cost",
    "paper_rule",
]

PaperRule = Callable[[nn.Module, tuple[Any, ...], Any], int]
PAPER_RULES: dict[type[nn.Module], PaperRule] = {}
"""Module type -> thop-convention MAC count of one call ``(module, inputs, output) -> int``."""


def paper_rule(*types: type[nn.Module]) -> Callable[[PaperRule], PaperRule]:
    """Register a thop-convention counting rule for ``types`` (and their subclasses)."""

    def deco(rule: PaperRule) -> PaperRule:
        for tp in types:
            PAPER_RULES[tp] = rule
        return rule

    return deco


@paper_rule(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv_rule(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> int:
    kernel = math.prod(m.kernel_size)
    bias = 1 if m.bias is not None else 0
    return out.numel() * (m.in_channels // m.groups * kernel + bias)


@paper_rule(nn.Linear)
def _linear_rule(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> int:
    return m.in_features * out.numel()


@paper_rule(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)
def _norm_rule(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> int:
    return 2 * inputs[0].numel()


def _rule_for(module: nn.Module) -> PaperRule | None:
    for klass in type(module).__mro__:
        if klass in PAPER_RULES:
            return PAPER_RULES[klass]
    return None


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass: ``true`` as executed, ``paper`` in the thop/double-call convention."""

    true: int
    paper: int


@dataclass(frozen=True)
class ModelCost:
    """Size and cost of a model for one clip (``nrdfer flops``)."""

    params: int  # trainable parameters
    macs: int  # true MACs of one clip
    macs_paper: int  # MACs in the paper's convention

    def as_dict(self) -> dict[str, float | int]:
        """The JSON of ``nrdfer flops --json``: ``params``, ``gmacs``, ``gmacs_paper``."""
        return {
            "params": self.params,
            "gmacs": self.macs / 1e9,
            "gmacs_paper": self.macs_paper / 1e9,
        }


class _PaperCounter:
    """Forward hooks applying :data:`PAPER_RULES`, times the enclosing ``paper_call_count``s."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.total = 0
        self.multiplier = [1]
        self.handles: list[Any] = []

    def __enter__(self) -> _PaperCounter:
        for module in self.model.modules():
            calls = getattr(module, "paper_call_count", 1)
            if calls != 1:
                self.handles.append(module.register_forward_pre_hook(self._push(calls)))
                self.handles.append(module.register_forward_hook(self._pop))
            rule = _rule_for(module)
            if rule is not None:
                self.handles.append(module.register_forward_hook(self._count(rule)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()

    def _push(self, calls: int) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            self.multiplier.append(self.multiplier[-1] * calls)

        return hook

    def _pop(self, module: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
        self.multiplier.pop()

    def _count(self, rule: PaperRule) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
            self.total += int(rule(module, inputs, out)) * self.multiplier[-1]

        return hook


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, clip: torch.Tensor) -> MacCount:
    """Count the MACs of ``model(clip)`` in eval mode, both ways (module docstring).

    Works on the ``meta`` device (no memory, no arithmetic), which is how :func:`model_cost`
    runs it. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        with (
            _PaperCounter(model) as paper,
            FlopCounterMode(display=False) as counter,
            sdpa_kernel(SDPBackend.MATH),
            torch.no_grad(),
        ):
            model(clip)
    finally:
        model.train(was_training)
    return MacCount(true=counter.get_total_flops() // 2, paper=paper.total)


def model_cost(params: ModelParams, device: str | torch.device = "meta") -> ModelCost:
    """Parameters and MACs of one clip (1, T, 3, H, W) for the model named by ``params``."""
    from nrdfer.models.registry import build_model

    with torch.device(device):
        model = build_model(params)
        clip = torch.zeros(1, params.frames, 3, params.image_size, params.image_size)
    macs = count_macs(model, clip)
    return ModelCost(params=count_params(model), macs=macs.true, macs_paper=macs.paper)
