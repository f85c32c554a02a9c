"""3D ResNet-18 (Hara et al., "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and
ImageNet?", CVPR 2018) and R(2+1)D-18 (Tran et al., "A Closer Look at Spatiotemporal
Convolutions for Action Recognition", CVPR 2018): rows "3D ResNet18", "R(2+1)D18",
"3D R.18 + Center Loss" and "EC-STFL" of paper Tables 4-5.

Data flow of ``resnet3d_18`` at the paper's sizes (Hara et al.'s configuration)::

    clip (B, 16, 3, 112, 112) → (B, 3, 16, 112, 112)
      ↓ stem: 7x7x7 conv, stride (1, 2, 2) → BN → ReLU → 3x3x3/2 max-pool  (B, 64, 8, 28, 28)
      ↓ 4 stages × 2 BasicBlock3d, widths 64-128-256-512, strides 1-2-2-2   (B, 512, 1, 4, 4)
      ↓ global average pool → feature (B, 512) → Linear → logits (B, K)

``r2plus1d_18`` (torchvision's configuration): stem (1,7,7)/(1,2,2) conv to 45 channels then a
(3,1,1) conv to 64, no max-pool, every 3x3x3 conv factorised into (2+1)D
(:class:`~nrdfer.models.baselines.blocks.Conv2Plus1d`); (B, 512, 2, 7, 7) before the pool.

``resnet3d_18_center`` and ``ec_stfl`` are ``resnet3d_18`` trained with an auxiliary loss on
the clip feature (:mod:`nrdfer.models.baselines.losses`), exposed as ``model.extra_loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from nrdfer.models.baselines.blocks import (
    READS,
    BasicBlock3d,
    Conv2Plus1d,
    ConvBNReLU3d,
    ConvFactory,
    check_clip,
    clip_output,
    conv3x3x3,
    init_cnn,
    scale_width,
    to_volume,
    width_scale,
)
from nrdfer.models.baselines.losses import AuxLossModel, CenterLoss, ECSTFLLoss
from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import register

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = ["ResNet3d", "build_r2plus1d_18", "build_resnet3d_18", "hara_stem", "r2plus1d_stem"]

RESNET18_WIDTHS = (64, 128, 256, 512)
RESNET18_BLOCKS = (2, 2, 2, 2)
R2PLUS1D_STEM_MID = 45  # torchvision R2Plus1dStem: spatial conv to 45 channels


class ResNet3d(nn.Module):
    """A 3D ResNet classifier: ``stem`` → stages of :class:`BasicBlock3d` → pool → Linear.

    Args:
        stem: (B, 3, T, H, W) -> (B, widths[0], T', H', W').
        conv: factory of the block convolutions (3x3x3 or (2+1)D).
        widths: channels of the four stages.
        blocks: blocks per stage.
        strides: stride of each stage's first block (time and space).
        num_classes: K.
        frames, image_size: the expected clip shape (checked in ``forward``).
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        *,
        stem: nn.Module,
        conv: ConvFactory,
        widths: Sequence[int],
        blocks: Sequence[int],
        strides: Sequence[int],
        num_classes: int,
        frames: int,
        image_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.image_size = image_size
        self.stem = stem
        stages = []
        in_ch = widths[0]
        for out_ch, n, stride in zip(widths, blocks, strides, strict=True):
            stages.append(
                nn.Sequential(
                    *[
                        BasicBlock3d(
                            in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1, conv
                        )
                        for i in range(n)
                    ]
                )
            )
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)
        init_cnn(self)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """(B, T, 3, H, W) clips in [0, 1] -> :class:`ModelOutput` (feature: pooled (B, C))."""
        check_clip(x, self.frames, self.image_size)
        maps = self.stages(self.stem(to_volume(x)))  # (B, C, T', H', W')
        feature = self.pool(maps).flatten(1)  # (B, C)
        return clip_output(self.fc(self.drop(feature)), feature)


def hara_stem(width: int) -> nn.Sequential:
    """Hara et al.'s stem: 7x7x7 conv stride (1, 2, 2) → BN → ReLU → 3x3x3/2 max-pool."""
    return nn.Sequential(
        ConvBNReLU3d(3, width, (7, 7, 7), stride=(1, 2, 2), padding=(3, 3, 3)),
        nn.MaxPool3d(3, stride=2, padding=1),
    )


def r2plus1d_stem(mid: int, width: int) -> nn.Sequential:
    """R(2+1)D stem: (1,7,7)/(1,2,2) conv to ``mid`` → BN → ReLU → (3,1,1) conv → BN → ReLU."""
    return nn.Sequential(
        ConvBNReLU3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3)),
        ConvBNReLU3d(mid, width, (3, 1, 1), padding=(1, 0, 0)),
    )


@register("resnet3d_18", reads=READS)
def build_resnet3d_18(p: ModelParams) -> ResNet3d:
    """3D ResNet-18 in Hara et al.'s configuration (shortcut type B)."""
    scale = width_scale(p)
    widths = [scale_width(c, scale) for c in RESNET18_WIDTHS]
    return ResNet3d(
        stem=hara_stem(widths[0]),
        conv=conv3x3x3,
        widths=widths,
        blocks=RESNET18_BLOCKS,
        strides=(1, 2, 2, 2),
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
        dropout=p.dropout,
    )


@register("r2plus1d_18", reads=READS)
def build_r2plus1d_18(p: ModelParams) -> ResNet3d:
    """R(2+1)D-18 (Tran et al. 2018) in torchvision's configuration."""
    scale = width_scale(p)
    widths = [scale_width(c, scale) for c in RESNET18_WIDTHS]
    return ResNet3d(
        stem=r2plus1d_stem(scale_width(R2PLUS1D_STEM_MID, scale), widths[0]),
        conv=Conv2Plus1d,
        widths=widths,
        blocks=RESNET18_BLOCKS,
        strides=(1, 2, 2, 2),
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
        dropout=p.dropout,
    )


@register("resnet3d_18_center", reads=(*READS, "aux_loss_weight"))
def build_resnet3d_18_center(p: ModelParams) -> AuxLossModel:
    """3D ResNet-18 + center loss (Wen et al. 2016) on the pooled clip feature."""
    backbone = build_resnet3d_18(p)
    loss = CenterLoss(p.num_classes, backbone.fc.in_features)
    return AuxLossModel(backbone, loss, p.aux_loss_weight)


@register("ec_stfl", reads=(*READS, "aux_loss_weight"))
def build_ec_stfl(p: ModelParams) -> AuxLossModel:
    """3D ResNet-18 + the EC-STFL loss (Jiang et al. 2020) on the pooled clip feature."""
    return AuxLossModel(build_resnet3d_18(p), ECSTFLLoss(), p.aux_loss_weight)
