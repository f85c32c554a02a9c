"""Spatial stage of NR-DFERNet: CNN trunk and the dynamic-static fusion module (paper Sec. 3.3).

Data flow for one clip of T frames (sizes at the paper's defaults, docs/model.md)::

    frames (B, T, 3, 112, 112)
      ↓ ResNetTrunk: 7x7 stem + three one-block stages          F_i (B, T, 256, 7, 7)
      ├─ DynamicBranch(F_{i+1} − F_i), i = 1..T−1   (Eq. 1)       (B, T−1, 256, 4, 4)
      └─ ConvD(F_i) (Eq. 2) → SpatialTransformer (Eq. 3)          (B, T−1, 256, 4, 4)
      ↓ sum (Eq. 4)                                              F^DS (B, T−1, 256, 4, 4)

The shared building blocks (:class:`~nrdfer.models.layers.BasicBlock`,
:class:`~nrdfer.models.layers.TransformerLayer`) live in :mod:`nrdfer.models.layers`.
"""

from __future__ import annotations

import torch
from torch import nn

from nrdfer.models.layers import BasicBlock, FastMaxPool2d, TransformerLayer, conv_out_size

__all__ = ["ConvD", "DynamicBranch", "DynamicStaticFusion", "ResNetTrunk", "SpatialTransformer"]


# ------------------------------------------------------------------------------------------
# CNN trunk (ResNet-18 stem and the first three stages, one block each)
# ------------------------------------------------------------------------------------------


class ResNetTrunk(nn.Module):
    """The per-frame CNN producing the primary maps F_i (paper Fig. 2, "three convolutional layers").

    7x7/2 stem → BN → ReLU → 3x3/2 max-pool, then three stages of one BasicBlock each with
    widths ``widths`` and strides 1, 2, 2 (overall stride 16: 112 → 7).

    Args:
        widths: channels of the three stages; the stem has ``widths[0]``.
    """

    stem_kernel = 7
    stem_stride = 2
    pool_kernel = 3
    pool_stride = 2
    stage_strides = (1, 2, 2)

    def __init__(self, widths: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        if len(widths) != len(self.stage_strides):
            raise ValueError(f"widths needs {len(self.stage_strides)} entries, got {widths}")
        self.stem = nn.Sequential(
            nn.Conv2d(
                3,
                widths[0],
                self.stem_kernel,
                stride=self.stem_stride,
                padding=self.stem_kernel // 2,
                bias=False,
            ),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            FastMaxPool2d(self.pool_kernel, stride=self.pool_stride, padding=self.pool_kernel // 2),
        )
        blocks = []
        in_ch = widths[0]
        for out_ch, stride in zip(widths, self.stage_strides, strict=True):
            blocks.append(BasicBlock(in_ch, out_ch, stride))
            in_ch = out_ch
        self.stages = nn.Sequential(*blocks)
        self.out_channels = widths[-1]

    def out_size(self, image_size: int) -> int:
        """Side of the primary maps for a square input of ``image_size`` pixels."""
        s = conv_out_size(image_size, self.stem_kernel, self.stem_stride, self.stem_kernel // 2)
        s = conv_out_size(s, self.pool_kernel, self.pool_stride, self.pool_kernel // 2)
        for stride in self.stage_strides:
            s = conv_out_size(s, 3, stride, 1)
        return s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', 3, H, W) frames -> (B', C, H/16, W/16) primary maps."""
        return self.stages(self.stem(x))


# ------------------------------------------------------------------------------------------
# Dynamic-static fusion (Sec. 3.3)
# ------------------------------------------------------------------------------------------


class DynamicBranch(nn.Module):
    """Dynamic branch: BasicBlocks over adjacent-frame feature differences (Sec. 3.3, Eq. 1).

    The first block halves the resolution (stride 2, projection shortcut), the others keep it.

    Args:
        channels: C of the primary maps (kept).
        blocks: number of BasicBlocks (three in the paper).
    """

    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"the dynamic branch needs at least one block, got {blocks}")
        self.blocks = nn.Sequential(
            *[BasicBlock(channels, channels, 2 if i == 0 else 1) for i in range(blocks)]
        )

    def forward(self, diff: torch.Tensor) -> torch.Tensor:
        """(B', C, H, W) differences F_{i+1} − F_i -> (B', C, H/2, W/2) dynamic features."""
        return self.blocks(diff)


class ConvD(nn.Module):
    """Conv-D (Eq. 2): 3x3/2 convolution → BN → ReLU that downsamples the static input F_i."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', C, H, W) -> (B', C, H/2, W/2)."""
        return self.relu(self.bn(self.conv(x)))


class SpatialTransformer(nn.Module):
    """Static branch transformer (Eq. 3): the (H/2)(W/2) positions of a map as C-d tokens.

    Args:
        channels: C, the token width.
        tokens: number of spatial positions Q = (H/2)(W/2).
        layers: M encoder layers (Table 3); 0 keeps only the position embedding.
        heads, head_dim, mlp_dim, dropout: encoder layer sizes.
        init_std: std of the normal position-embedding init.
    """

    def __init__(
        self,
        channels: int,
        tokens: int,
        layers: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        dropout: float,
        init_std: float,
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.empty(tokens, channels))  # E_p^S of Eq. 3
        nn.init.normal_(self.pos_embed, std=init_std)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            [TransformerLayer(channels, heads, head_dim, mlp_dim, dropout) for _ in range(layers)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', C, h, w) Conv-D maps -> (B', C, h, w) static features F^S'."""
        b, c, h, w = x.shape
        z = x.flatten(2).transpose(1, 2)  # (B', h*w, C): tokens P^S
        z = self.drop(z + self.pos_embed)  # Eq. 3
        for layer in self.layers:
            z, _ = layer(z)
        return z.transpose(1, 2).reshape(b, c, h, w)  # (B', C, h, w)


class DynamicStaticFusion(nn.Module):
    """The DSF module (Sec. 3.3): dynamic branch + (Conv-D → spatial transformer), summed (Eq. 4).

    Args:
        channels: C of the primary maps.
        map_size: side of the primary maps (7 at 112 px).
        dynamic_blocks: BasicBlocks in the dynamic branch.
        layers: M spatial transformer layers.
        heads, head_dim, mlp_dim, dropout, init_std: spatial transformer sizes.
        use_dynamic: False is the Table 1 ablation "without DSF" (static branch only).
    """

    def __init__(
        self,
        channels: int,
        map_size: int,
        dynamic_blocks: int,
        layers: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        dropout: float,
        init_std: float,
        use_dynamic: bool,
    ) -> None:
        super().__init__()
        self.out_size = conv_out_size(map_size, 3, 2, 1)
        self.dynamic = DynamicBranch(channels, dynamic_blocks) if use_dynamic else None
        self.conv_d = ConvD(channels)
        self.static = SpatialTransformer(
            channels, self.out_size**2, layers, heads, head_dim, mlp_dim, dropout, init_std
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) primary maps F_1..F_T -> (B, T−1, C, H/2, W/2) fused features F^DS."""
        b, t, c, h, w = maps.shape
        static_in = maps[:, :-1].reshape(b * (t - 1), c, h, w)  # F_1..F_{T-1}: (B(T-1), C, H, W)
        fused = self.static(self.conv_d(static_in))  # Eq. 2-3: (B(T-1), C, h', w')
        if self.dynamic is not None:
            diff = (maps[:, 1:] - maps[:, :-1]).reshape(b * (t - 1), c, h, w)  # Eq. 1
            fused = fused + self.dynamic(diff)  # Eq. 4
        return fused.reshape(b, t - 1, c, self.out_size, self.out_size)  # (B, T-1, C, h', w')
