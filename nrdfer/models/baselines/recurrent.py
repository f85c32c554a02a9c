"""Two-stage CNN + RNN baselines of paper Tables 4-5: a 2D CNN per frame, a recurrent network
over the frame features, a linear classifier on the last hidden state.

- ``resnet18_lstm``: ResNet-18 (He et al. 2016) + LSTM (Hochreiter & Schmidhuber 1997).
- ``resnet18_gru``: ResNet-18 + GRU (Cho et al. 2014).
- ``vgg11_lstm``: VGG-11 (Simonyan & Zisserman 2015, configuration "A") + LSTM.

Data flow of ``resnet18_lstm`` at the paper's sizes::

    clip (B, 16, 3, 112, 112) → frames (B·16, 3, 112, 112)
      ↓ ResNet-18 without classifier → global average pool     (B·16, 512)
      ↓ reshape (B, 16, 512) → LSTM, hidden 512                 (B, 16, 512)
      ↓ last hidden state = feature (B, 512) → Linear → logits  (B, K)

VGG-11 keeps torchvision's classifier trunk up to fc7: its 3x3 maps (at 112 px) are average-pooled
to 7x7 as torchvision does, then fc6 25088 → 4096 and fc7 4096 → 4096 give the frame feature.

This module also registers thop's counting rules for ``nn.LSTM`` / ``nn.GRU`` with
:mod:`nrdfer.models.flops` (paper convention).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nrdfer.models.baselines.blocks import (
    READS,
    ResNet2d,
    check_clip,
    clip_output,
    init_cnn,
    scale_width,
    width_scale,
)
from nrdfer.models.flops import paper_rule
from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import register

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = [
    "FrameRNN",
    "VGG",
    "build_resnet18_gru",
    "build_resnet18_lstm",
    "build_vgg11_lstm",
    "resnet18_frames",
]

RESNET18_WIDTHS = (64, 128, 256, 512)
RESNET18_BLOCKS = (2, 2, 2, 2)
VGG11_CONVS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG_POOL = 7  # torchvision's AdaptiveAvgPool2d((7, 7)) before fc6
VGG_FC = 4096
RNN_HIDDEN = 512


class _ResNetFrames(nn.Module):
    """ResNet per frame + global average pool: (B', 3, H, W) -> (B', C)."""

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.cnn = ResNet2d(widths, blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.cnn(x)).flatten(1)  # (B', C)


def resnet18_frames(scale: float) -> _ResNetFrames:
    """ResNet-18 frame encoder (512-d at ``scale`` 1)."""
    return _ResNetFrames(tuple(scale_width(c, scale) for c in RESNET18_WIDTHS), RESNET18_BLOCKS)


class VGG(nn.Module):
    """VGG frame encoder: 3x3 convs (with bias) and 2x2 max-pools, then fc6, fc7 (torchvision).

    Args:
        convs: channels of the convolutions, "M" for a max-pool.
        pool: side of the adaptive average pool before fc6.
        fc_dim: width of fc6 and fc7 (the frame feature).
        dropout: dropout after fc6 and fc7.
    """

    def __init__(
        self, convs: tuple[int | str, ...], pool: int, fc_dim: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for item in convs:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = int(item)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc = nn.Sequential(
            nn.Linear(in_ch * pool * pool, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.out_features = fc_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', 3, H, W) -> (B', fc_dim)."""
        return self.fc(self.pool(self.features(x)).flatten(1))


class FrameRNN(nn.Module):
    """Frame encoder → recurrent network over time → linear classifier on the last state.

    Args:
        encoder: (B·T, 3, H, W) -> (B·T, D) module with attribute ``out_features`` = D.
        rnn: "lstm" or "gru".
        hidden: hidden size of the recurrent network (the clip feature width).
        num_classes: K.
        frames, image_size: the expected clip shape.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        *,
        encoder: nn.Module,
        rnn: str,
        hidden: int,
        num_classes: int,
        frames: int,
        image_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        rnns = {"lstm": nn.LSTM, "gru": nn.GRU}
        if rnn not in rnns:
            raise ValueError(f"rnn must be one of {sorted(rnns)}, got {rnn!r}")
        self.frames = frames
        self.image_size = image_size
        self.encoder = encoder
        self.rnn = rnns[rnn](encoder.out_features, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """(B, T, 3, H, W) clips in [0, 1] -> :class:`ModelOutput` (feature: last hidden state)."""
        check_clip(x, self.frames, self.image_size)
        b, t, c, h, w = x.shape
        frames = self.encoder(x.reshape(b * t, c, h, w))  # (B*T, D)
        states, _ = self.rnn(frames.reshape(b, t, -1))  # (B, T, hidden)
        feature = states[:, -1]  # (B, hidden): h_T
        return clip_output(self.fc(self.drop(feature)), feature)


def _build(p: ModelParams, encoder: nn.Module, rnn: str) -> FrameRNN:
    return FrameRNN(
        encoder=encoder,
        rnn=rnn,
        hidden=scale_width(RNN_HIDDEN, width_scale(p)),
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
        dropout=p.dropout,
    )


@register("resnet18_lstm", reads=READS)
def build_resnet18_lstm(p: ModelParams) -> FrameRNN:
    """ResNet-18 + LSTM (hidden 512)."""
    return _build(p, resnet18_frames(width_scale(p)), "lstm")


@register("resnet18_gru", reads=READS)
def build_resnet18_gru(p: ModelParams) -> FrameRNN:
    """ResNet-18 + GRU (hidden 512)."""
    return _build(p, resnet18_frames(width_scale(p)), "gru")


@register("vgg11_lstm", reads=READS)
def build_vgg11_lstm(p: ModelParams) -> FrameRNN:
    """VGG-11 (fc7 4096-d frame feature) + LSTM (hidden 512)."""
    scale = width_scale(p)
    convs = tuple(c if c == "M" else scale_width(int(c), scale) for c in VGG11_CONVS)
    return _build(p, VGG(convs, VGG_POOL, scale_width(VGG_FC, scale), p.dropout), "lstm")


# ------------------------------------------------------------------------------------------
# thop's recurrent counting rules (paper convention, nrdfer.models.flops)
# ------------------------------------------------------------------------------------------


def _gates(input_size: int, hidden: int, bias: bool) -> int:
    """thop: one gate ``W_i x + b_i + W_h h + b_h``."""
    return (input_size + hidden) * hidden + hidden + (2 * hidden if bias else 0)


def _lstm_cell(input_size: int, hidden: int, bias: bool) -> int:
    """thop ``_count_lstm_cell``: four gates, ``c' = f*c + i*g`` (3h), ``h' = o*tanh(c')`` (h)."""
    return 4 * _gates(input_size, hidden, bias) + 3 * hidden + hidden


def _gru_cell(input_size: int, hidden: int, bias: bool) -> int:
    """thop ``_count_gru_cell``: r, z gates, n gate, ``r * (…)`` (h), ``h' = (1−z)n + zh`` (3h)."""
    return 3 * _gates(input_size, hidden, bias) + hidden + 3 * hidden


def _rnn_rule(cell: Any) -> Any:
    def rule(m: nn.Module, inputs: tuple[Any, ...], out: Any) -> int:
        x = inputs[0]
        batch, steps = (x.shape[0], x.shape[1]) if m.batch_first else (x.shape[1], x.shape[0])
        directions = 2 if m.bidirectional else 1
        total = cell(m.input_size, m.hidden_size, m.bias) * directions
        for _ in range(m.num_layers - 1):
            total += cell(m.hidden_size * directions, m.hidden_size, m.bias) * directions
        return total * steps * batch

    return rule


paper_rule(nn.LSTM)(_rnn_rule(_lstm_cell))
paper_rule(nn.GRU)(_rnn_rule(_gru_cell))
