"""I3D, RGB stream (Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the
Kinetics Dataset", CVPR 2017): row "I3D-RGB" of paper Tables 4-5.

Inception-v1 (Szegedy et al. 2015) with every 2D kernel inflated to 3D. TensorFlow's "SAME"
padding (output side = ceil(input / stride)) is written as symmetric padding for the odd kernels
and as ``ceil_mode`` for the even 2x2x2 pool: identical output sizes. Data flow at the paper's
sizes::

    clip (B, 16, 3, 112, 112) → (B, 3, 16, 112, 112)
      ↓ Conv 7x7x7/2 64 → MaxPool (1,3,3)/(1,2,2)             (B, 64, 8, 28, 28)
      ↓ Conv 1x1x1 64 → Conv 3x3x3 192 → MaxPool (1,3,3)/(1,2,2)  (B, 192, 8, 14, 14)
      ↓ Mixed 3b, 3c → MaxPool 3x3x3/2                        (B, 480, 4, 7, 7)
      ↓ Mixed 4b-4f → MaxPool 2x2x2/2 (ceil)                  (B, 832, 2, 4, 4)
      ↓ Mixed 5b, 5c → global average pool = feature          (B, 1024)
      ↓ dropout → Linear (the 1x1x1 logits conv) → logits     (B, K)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nrdfer.models.baselines.blocks import (
    READS,
    ConvBNReLU3d,
    check_clip,
    clip_output,
    init_cnn,
    scale_width,
    to_volume,
    width_scale,
)
from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import register

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = ["I3D", "InceptionBlock3d", "build_i3d_rgb"]

STEM = (64, 64, 192)  # Conv3d_1a_7x7, Conv3d_2b_1x1, Conv3d_2c_3x3
MIXED: dict[str, tuple[int, int, int, int, int, int]] = {
    # name: (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj) output channels (Inception-v1)
    "3b": (64, 96, 128, 16, 32, 32),
    "3c": (128, 128, 192, 32, 96, 64),
    "4b": (192, 96, 208, 16, 48, 64),
    "4c": (160, 112, 224, 24, 64, 64),
    "4d": (128, 128, 256, 24, 64, 64),
    "4e": (112, 144, 288, 32, 64, 64),
    "4f": (256, 160, 320, 32, 128, 128),
    "5b": (256, 160, 320, 32, 128, 128),
    "5c": (384, 192, 384, 48, 128, 128),
}
POOL_BEFORE = {"4b": ((3, 3, 3), (2, 2, 2)), "5b": ((2, 2, 2), (2, 2, 2))}
"""Max-pools inserted before a Mixed block: (kernel, stride)."""


def _same_max_pool(kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.MaxPool3d:
    """Max-pool with TF "SAME" output sizes, ceil(side / stride) on every axis.

    Odd kernels: symmetric padding k // 2, rounding down ((n + 2·(k//2) - k) // s + 1 =
    ceil(n / s)). Even kernels (k = s = 2 here): no padding, rounding up. Rounding up with the
    odd kernel's padding as well would add a row (14 -> 8 instead of 7 at 112 px) and cost
    +12 % MACs.
    """
    if all(k % 2 for k in kernel):
        return nn.MaxPool3d(kernel, stride=stride, padding=tuple(k // 2 for k in kernel))
    if all(k == s for k, s in zip(kernel, stride, strict=True)):
        return nn.MaxPool3d(kernel, stride=stride, ceil_mode=True)
    raise ValueError(f"no SAME rule for a max-pool of kernel {kernel}, stride {stride}")


class InceptionBlock3d(nn.Module):
    """An inflated Inception module: four branches concatenated on channels.

    Branches: 1x1x1; 1x1x1 → 3x3x3; 1x1x1 → 3x3x3; 3x3x3/1 max-pool → 1x1x1.

    Args:
        in_ch: input channels.
        widths: (b0, b1 reduce, b1, b2 reduce, b2, b3) output channels.
    """

    def __init__(self, in_ch: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1r, b1, b2r, b2, b3 = widths
        one = (1, 1, 1)
        three, pad = (3, 3, 3), (1, 1, 1)
        self.branch0 = ConvBNReLU3d(in_ch, b0, one)
        self.branch1 = nn.Sequential(
            ConvBNReLU3d(in_ch, b1r, one), ConvBNReLU3d(b1r, b1, three, padding=pad)
        )
        self.branch2 = nn.Sequential(
            ConvBNReLU3d(in_ch, b2r, one), ConvBNReLU3d(b2r, b2, three, padding=pad)
        )
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(three, stride=1, padding=pad), ConvBNReLU3d(in_ch, b3, one)
        )
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, C_out, T, H, W)."""
        return torch.cat(
            [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1
        )


class I3D(nn.Module):
    """I3D-RGB classifier (module docstring).

    Args:
        num_classes: K.
        frames, image_size: the expected clip shape.
        stem: channels of the three stem convolutions.
        mixed: Mixed-block name -> branch widths, in order.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        frames: int,
        image_size: int,
        stem: tuple[int, int, int],
        mixed: dict[str, tuple[int, int, int, int, int, int]],
        dropout: float,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.image_size = image_size
        layers: list[nn.Module] = [
            ConvBNReLU3d(3, stem[0], (7, 7, 7), stride=(2, 2, 2), padding=(3, 3, 3)),
            _same_max_pool((1, 3, 3), (1, 2, 2)),
            ConvBNReLU3d(stem[0], stem[1], (1, 1, 1)),
            ConvBNReLU3d(stem[1], stem[2], (3, 3, 3), padding=(1, 1, 1)),
            _same_max_pool((1, 3, 3), (1, 2, 2)),
        ]
        in_ch = stem[2]
        for name, widths in mixed.items():
            if name in POOL_BEFORE:
                kernel, stride = POOL_BEFORE[name]
                layers.append(_same_max_pool(kernel, stride))
            block = InceptionBlock3d(in_ch, widths)
            layers.append(block)
            in_ch = block.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_ch, num_classes)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """(B, T, 3, H, W) clips in [0, 1] -> :class:`ModelOutput` (feature: pooled (B, 1024))."""
        check_clip(x, self.frames, self.image_size)
        maps = self.features(to_volume(x))  # (B, 1024, T/8, H/32, W/32)
        feature = self.pool(maps).flatten(1)  # (B, 1024)
        return clip_output(self.fc(self.drop(feature)), feature)


@register("i3d_rgb", reads=READS)
def build_i3d_rgb(p: ModelParams) -> I3D:
    """I3D-RGB at the published widths times ``model.widths[0] / 64``."""
    scale = width_scale(p)
    return I3D(
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
        stem=tuple(scale_width(c, scale) for c in STEM),  # type: ignore[arg-type]
        mixed={k: tuple(scale_width(c, scale) for c in v) for k, v in MIXED.items()},  # type: ignore[misc]
        dropout=p.dropout,
    )
