"""Building blocks shared by the baselines of paper Tables 4-5: 2D/3D ResNet pieces, the
clip layout helpers, width scaling and the common :class:`ModelOutput` construction.

The 2D residual block is NR-DFERNet's :class:`nrdfer.models.layers.BasicBlock` (He et al.
2016, projection shortcut), reused here for the per-frame ResNet-18 of the recurrent baselines
and Former-DFER.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from nrdfer.models.layers import BasicBlock, FastMaxPool2d, conv_out_size
from nrdfer.models.output import ModelOutput

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = [
    "PAPER_WIDTH",
    "BasicBlock3d",
    "Conv2Plus1d",
    "ConvBNReLU3d",
    "ResNet2d",
    "check_clip",
    "clip_output",
    "init_cnn",
    "scale_width",
    "to_volume",
    "width_scale",
    "READS",
]

READS = ("num_classes", "frames", "image_size", "widths", "dropout")
"""The ``model`` keys every baseline reads (a few read one more: see their ``register``)."""

PAPER_WIDTH = 64
"""``model.widths[0]`` at the paper's sizes: the baselines are built at full width for it."""


def width_scale(params: ModelParams) -> float:
    """Channel multiplier of a baseline: ``model.widths[0] / 64`` (1.0 at the paper's sizes).

    The baselines have their own published widths; a narrower ``widths[0]`` (the demo and test
    configs) shrinks every channel count, hidden size and token width by the same factor.
    """
    return params.widths[0] / PAPER_WIDTH


def scale_width(channels: int, scale: float) -> int:
    """``channels * scale`` rounded, at least 1."""
    return max(1, round(channels * scale))


def to_volume(x: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) clip batch -> (B, 3, T, H, W), the layout of ``nn.Conv3d``."""
    return x.permute(0, 2, 1, 3, 4).contiguous()


def check_clip(x: torch.Tensor, frames: int, image_size: int) -> None:
    """Raise ValueError unless ``x`` is a (B, frames, 3, image_size, image_size) clip batch."""
    expected = (frames, 3, image_size, image_size)
    if x.dim() != 5 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"expected a clip batch (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
        )


def clip_output(
    logits: torch.Tensor, feature: torch.Tensor, attention: torch.Tensor | None = None
) -> ModelOutput:
    """The :class:`ModelOutput` of a model without snippet filter: ``logits == logits_seq``."""
    fired = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)
    return ModelOutput(
        logits_seq=logits, logits=logits, filter_fired=fired, feature=feature, attention=attention
    )


def init_cnn(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convolutions, BN γ=1 β=0, zero conv/linear biases.

    The torchvision / Hara et al. initialisation; Linear weights keep PyTorch's default.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------
# 3D blocks
# ------------------------------------------------------------------------------------------


class ConvBNReLU3d(nn.Sequential):
    """Bias-free ``Conv3d`` → ``BatchNorm3d`` → ReLU (the "Unit3D" of I3D, stems of 3D ResNets).

    Args:
        in_ch, out_ch: channels.
        kernel: (t, h, w) kernel.
        stride: (t, h, w) stride.
        padding: (t, h, w) zero padding.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        super().__init__(
            nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm3d(out_ch),
            nn.ReLU(inplace=True),
        )


def conv3x3x3(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Full 3x3x3 convolution, stride in time and space (3D ResNet, Hara et al. 2018)."""
    return nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


class Conv2Plus1d(nn.Sequential):
    """(2+1)D factorised 3x3x3 convolution (Tran et al. 2018, Sec. 3.5).

    (1, 3, 3) spatial conv to ``mid`` channels → BN → ReLU → (3, 1, 1) temporal conv. ``mid``
    is chosen so the parameter count equals the full 3x3x3 conv's:
    ``mid = ⌊27·in·out / (9·in + 3·out)⌋`` (Tran et al. Eq. 5).

    Args:
        in_ch, out_ch: channels.
        stride: stride in time (temporal conv) and space (spatial conv).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        mid = (in_ch * out_ch * 3 * 3 * 3) // (in_ch * 3 * 3 + 3 * out_ch)
        super().__init__(
            nn.Conv3d(
                in_ch, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False
            ),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_ch, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


ConvFactory = Callable[[int, int, int], nn.Module]
"""``(in_ch, out_ch, stride) -> module`` building the 3x3x3 (or factorised) conv of a block."""


class BasicBlock3d(nn.Module):
    """3D ResNet basic block: two convs from ``conv`` with BN, projection shortcut on change.

    The shortcut is Hara et al.'s type "B" (1x1x1 conv + BN when the shape changes).

    Args:
        in_ch, out_ch: channels.
        stride: stride of the first conv (time and space) and of the projection.
        conv: factory of the 3x3x3-like convolution (:func:`conv3x3x3` or :class:`Conv2Plus1d`).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, conv: ConvFactory) -> None:
        super().__init__()
        self.conv1 = conv(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm3d(out_ch)
        self.conv2 = conv(out_ch, out_ch, 1)
        self.bn2 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm3d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, C_out, T/s, H/s, W/s)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


# ------------------------------------------------------------------------------------------
# 2D ResNet-18 (per frame)
# ------------------------------------------------------------------------------------------


class ResNet2d(nn.Module):
    """2D ResNet (He et al. 2016) without its classifier: the per-frame CNN of the two-stage
    baselines (ResNet-18 + LSTM/GRU, Former-DFER's CS-Former).

    7x7/2 stem → BN → ReLU → 3x3/2 max-pool → four stages of ``blocks[i]`` BasicBlocks with
    ``widths[i]`` channels and strides 1, 2, 2, 2 (overall stride 32: 112 → 4 px, ceil).

    Args:
        widths: channels of the four stages (64, 128, 256, 512 for ResNet-18); the stem has
            ``widths[0]``.
        blocks: BasicBlocks per stage ((2, 2, 2, 2) for ResNet-18).
    """

    stem_kernel = 7
    stem_stride = 2
    pool_kernel = 3
    pool_stride = 2
    stage_strides = (1, 2, 2, 2)

    def __init__(self, widths: Sequence[int], blocks: Sequence[int]) -> None:
        super().__init__()
        if not len(widths) == len(blocks) == len(self.stage_strides):
            raise ValueError(
                f"need {len(self.stage_strides)} widths and blocks, got {widths}, {blocks}"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(
                3, widths[0], self.stem_kernel, self.stem_stride, self.stem_kernel // 2, bias=False
            ),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            FastMaxPool2d(self.pool_kernel, self.pool_stride, self.pool_kernel // 2),
        )
        stages = []
        in_ch = widths[0]
        for out_ch, n, stride in zip(widths, blocks, self.stage_strides, strict=True):
            stages.append(
                nn.Sequential(
                    *[
                        BasicBlock(in_ch if i == 0 else out_ch, out_ch, stride if i == 0 else 1)
                        for i in range(n)
                    ]
                )
            )
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.out_channels = widths[-1]

    def stage_sizes(self, image_size: int) -> list[int]:
        """Side of each stage's output map for a square input of ``image_size`` pixels."""
        s = conv_out_size(image_size, self.stem_kernel, self.stem_stride, self.stem_kernel // 2)
        s = conv_out_size(s, self.pool_kernel, self.pool_stride, self.pool_kernel // 2)
        sizes = []
        for stride in self.stage_strides:
            s = conv_out_size(s, 3, stride, 1)
            sizes.append(s)
        return sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', 3, H, W) frames -> (B', C, H/32, W/32) maps of the last stage."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x
