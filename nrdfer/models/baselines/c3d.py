"""C3D (Tran et al., "Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV
2015): row "C3D" of paper Tables 4-5.

Data flow at the paper's sizes (all convolutions 3x3x3, stride 1, padding 1, with bias)::

    clip (B, 16, 3, 112, 112) → (B, 3, 16, 112, 112)
      ↓ conv1a 64  → pool1 (1,2,2)                         (B, 64, 16, 56, 56)
      ↓ conv2a 128 → pool2 2x2x2                           (B, 128, 8, 28, 28)
      ↓ conv3a, conv3b 256 → pool3                         (B, 256, 4, 14, 14)
      ↓ conv4a, conv4b 512 → pool4                         (B, 512, 2, 7, 7)
      ↓ conv5a, conv5b 512 → pool5 2x2x2, spatial pad 1    (B, 512, 1, 4, 4) = 8192
      ↓ fc6 4096 → fc7 4096 = feature → fc8 → logits (B, K)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nrdfer.models.baselines.blocks import (
    READS,
    check_clip,
    clip_output,
    init_cnn,
    scale_width,
    to_volume,
    width_scale,
)
from nrdfer.models.layers import conv_out_size
from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import register

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = ["C3D", "build_c3d"]

C3D_CONVS = ((64,), (128,), (256, 256), (512, 512), (512, 512))
"""Output channels of the convolutions of each of C3D's five groups (each ends in a pool)."""
C3D_FC = 4096


class C3D(nn.Module):
    """C3D: five groups of 3x3x3 convolutions, each followed by a max-pool, and two 4096-d fcs.

    Pool 1 keeps the time axis (kernel (1, 2, 2)); pools 2-5 halve time and space; pool 5 pads
    space by one so that 112 px gives 4x4 (the fc6 input of the published model).

    Args:
        num_classes: K.
        frames: T (at least 16: four temporal halvings).
        image_size: square input side.
        groups: output channels of the convolutions of each group.
        fc_dim: width of fc6 and fc7 (the clip feature).
        dropout: dropout after fc6 and fc7.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        frames: int,
        image_size: int,
        groups: tuple[tuple[int, ...], ...],
        fc_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.image_size = image_size
        layers: list[nn.Module] = []
        in_ch, t, s = 3, frames, image_size
        last = len(groups) - 1
        for i, widths in enumerate(groups):
            for out_ch in widths:
                layers += [nn.Conv3d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = out_ch
            kernel = (1, 2, 2) if i == 0 else (2, 2, 2)
            padding = (0, 1, 1) if i == last else (0, 0, 0)
            layers.append(nn.MaxPool3d(kernel, stride=kernel, padding=padding))
            t = conv_out_size(t, kernel[0], kernel[0], padding[0])
            s = conv_out_size(s, kernel[1], kernel[1], padding[1])
            if t < 1 or s < 1:
                raise ValueError(f"C3D needs larger clips than {frames} frames of {image_size} px")
        self.features = nn.Sequential(*layers)
        self.fc6 = nn.Linear(in_ch * t * s * s, fc_dim)
        self.fc7 = nn.Linear(fc_dim, fc_dim)
        self.fc8 = nn.Linear(fc_dim, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """(B, T, 3, H, W) clips in [0, 1] -> :class:`ModelOutput` (feature: fc7, (B, 4096))."""
        check_clip(x, self.frames, self.image_size)
        maps = self.features(to_volume(x))  # (B, 512, T/16, H/32+1, W/32+1)
        h = self.drop(self.relu(self.fc6(maps.flatten(1))))  # (B, 4096)
        feature = self.relu(self.fc7(h))  # (B, 4096)
        return clip_output(self.fc8(self.drop(feature)), feature)


@register("c3d", reads=READS)
def build_c3d(p: ModelParams) -> C3D:
    """C3D at the published widths times ``model.widths[0] / 64``."""
    scale = width_scale(p)
    return C3D(
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
        groups=tuple(tuple(scale_width(c, scale) for c in g) for g in C3D_CONVS),
        fc_dim=scale_width(C3D_FC, scale),
        dropout=p.dropout,
    )
