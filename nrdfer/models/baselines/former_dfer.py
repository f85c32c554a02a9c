"""Former-DFER (Zhao & Liu, "Former-DFER: Dynamic Facial Expression Recognition Transformer",
ACM MM 2021): row "Former-DFER" of paper Tables 4-5.

A convolutional spatial transformer (CS-Former) per frame, then a temporal transformer
(T-Former) over the 16 frame features with a learned class token. We follow the authors'
published code (github.com/zengqunzhao/Former-DFER, ``models/S_Former.py``, ``T_Former.py``):
one spatial encoder after ResNet-18's third stage, three temporal encoders. (The paper's text and
figure describe spatial encoders after several stages; its 9.11 GFLOPs is about 9 % above the
published code's count, see docs/baselines.md.) Data flow at the paper's sizes::

    clip (B, 16, 3, 112, 112) → frames (B·16, 3, 112, 112)
      ↓ CS-Former: ResNet-18 stem + stages 1-3                      (B·16, 256, 7, 7)
      ↓   49 tokens of 256 + position embedding → 1 encoder (8 heads × 32, MLP 512)
      ↓   reshape back → stage 4 → global average pool               (B·16, 512)
      ↓ T-Former: (B, 16, 512), class token + position embedding
      ↓   → 3 encoders (8 heads × 64, MLP 1024) → class token = feature  (B, 512)
      ↓ Linear → logits (B, K)

The encoders are pre-LN ViT layers (NR-DFERNet's :class:`~nrdfer.models.layers.TransformerLayer`)
called once per layer, as in Former-DFER's residual wrapper (``paper_call_count = 1``). In eval
mode the class-token attention rollout over the frames is returned as ``attention``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from nrdfer.models.layers import TransformerLayer
from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import register
from nrdfer.models.temporal import attention_rollout

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = ["CSFormer", "EncoderLayer", "FormerDFER", "TFormer", "build_former_dfer"]

RESNET18_WIDTHS = (64, 128, 256, 512)
RESNET18_BLOCKS = (2, 2, 2, 2)
SPATIAL_STAGE = 3  # the spatial encoder follows this ResNet stage (1-based), as in S_Former.py
SPATIAL_LAYERS, SPATIAL_HEADS, SPATIAL_HEAD_DIM, SPATIAL_MLP = 1, 8, 32, 512
TEMPORAL_LAYERS, TEMPORAL_HEADS, TEMPORAL_HEAD_DIM, TEMPORAL_MLP = 3, 8, 64, 1024


class EncoderLayer(TransformerLayer):
    """A pre-LN encoder layer counted once: Former-DFER's residual wrapper calls each sub-block
    once, unlike NR-DFERNet's (see :mod:`nrdfer.models.flops`)."""

    paper_call_count = 1


class CSFormer(nn.Module):
    """Convolutional spatial transformer: ResNet with encoder layers after one stage.

    Args:
        widths, blocks: the ResNet's four stages.
        image_size: square input side (sets the number of spatial tokens).
        after_stage: the 1-based stage whose output map is attended over.
        layers, heads, head_dim, mlp_dim: encoder sizes (token width = ``widths[after_stage-1]``).
        dropout: encoder dropout.
        init_std: std of the normal position-embedding init.
    """

    def __init__(
        self,
        *,
        widths: tuple[int, ...],
        blocks: tuple[int, ...],
        image_size: int,
        after_stage: int,
        layers: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        dropout: float,
        init_std: float,
    ) -> None:
        super().__init__()
        self.cnn = ResNet2d(widths, blocks)
        self.after_stage = after_stage
        dim = widths[after_stage - 1]
        tokens = self.cnn.stage_sizes(image_size)[after_stage - 1] ** 2
        self.pos_embed = nn.Parameter(torch.empty(tokens, dim))
        nn.init.normal_(self.pos_embed, std=init_std)
        self.encoders = nn.ModuleList(
            [EncoderLayer(dim, heads, head_dim, mlp_dim, dropout) for _ in range(layers)]
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', 3, H, W) frames -> (B', C) frame features."""
        x = self.cnn.stem(x)
        for i, stage in enumerate(self.cnn.stages, start=1):
            x = stage(x)
            if i == self.after_stage:
                b, c, h, w = x.shape
                z = x.flatten(2).transpose(1, 2) + self.pos_embed  # (B', h*w, C)
                for layer in self.encoders:
                    z, _ = layer(z)
                x = z.transpose(1, 2).reshape(b, c, h, w)  # (B', C, h, w)
        return self.pool(x).flatten(1)  # (B', C)


class TFormer(nn.Module):
    """Temporal transformer: learned class token + position embedding + encoder layers.

    Args:
        dim: token width (the frame feature).
        frames: T (the position embedding has T + 1 rows).
        layers, heads, head_dim, mlp_dim, dropout: encoder sizes.
        init_std: std of the normal init of the class token and position embedding.
    """

    def __init__(
        self,
        *,
        dim: int,
        frames: int,
        layers: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        dropout: float,
        init_std: float,
    ) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(frames + 1, dim))
        nn.init.normal_(self.cls_token, std=init_std)
        nn.init.normal_(self.pos_embed, std=init_std)
        self.encoders = nn.ModuleList(
            [EncoderLayer(dim, heads, head_dim, mlp_dim, dropout) for _ in range(layers)]
        )

    def forward(
        self, tokens: torch.Tensor, need_weights: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, T, D) frame features -> (B, D) class token and the per-layer attention maps."""
        b = tokens.shape[0]
        z = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)  # (B, T+1, D)
        z = z + self.pos_embed
        maps = []
        for layer in self.encoders:
            z, weights = layer(z, need_weights)
            if weights is not None:
                maps.append(weights)
        return z[:, 0], maps


class FormerDFER(nn.Module):
    """Former-DFER: CS-Former per frame, T-Former over frames, linear head (module docstring).

    Args:
        spatial: the CS-Former.
        temporal: the T-Former.
        num_classes: K.
        frames, image_size: the expected clip shape.
    """

    def __init__(
        self,
        *,
        spatial: CSFormer,
        temporal: TFormer,
        num_classes: int,
        frames: int,
        image_size: int,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.image_size = image_size
        self.spatial = spatial
        self.temporal = temporal
        self.fc = nn.Linear(spatial.out_features, num_classes)
        init_cnn(self)

    def forward(self, x: torch.Tensor, return_attention: bool | None = None) -> ModelOutput:
        """Classify clips.

        Args:
            x: (B, T, 3, H, W) float clips in [0, 1].
            return_attention: compute the class-token attention rollout over the frames;
                default: in eval mode only.

        Returns:
            :class:`ModelOutput`; ``feature`` is the class token (B, 512), ``attention`` (B, T)
            or None.
        """
        check_clip(x, self.frames, self.image_size)
        need_weights = (not self.training) if return_attention is None else return_attention
        b, t, c, h, w = x.shape
        frames = self.spatial(x.reshape(b * t, c, h, w))  # (B*T, C)
        feature, maps = self.temporal(frames.reshape(b, t, -1), need_weights)  # (B, C)
        attention = attention_rollout(maps) if maps else None  # (B, T)
        return clip_output(self.fc(feature), feature, attention)


@register("former_dfer", reads=(*READS, "embed_init_std"))
def build_former_dfer(p: ModelParams) -> FormerDFER:
    """Former-DFER as published (one spatial encoder after stage 3, three temporal encoders)."""
    scale = width_scale(p)
    widths = tuple(scale_width(c, scale) for c in RESNET18_WIDTHS)
    spatial = CSFormer(
        widths=widths,
        blocks=RESNET18_BLOCKS,
        image_size=p.image_size,
        after_stage=SPATIAL_STAGE,
        layers=SPATIAL_LAYERS,
        heads=SPATIAL_HEADS,
        head_dim=scale_width(SPATIAL_HEAD_DIM, scale),
        mlp_dim=scale_width(SPATIAL_MLP, scale),
        dropout=p.dropout,
        init_std=p.embed_init_std,
    )
    temporal = TFormer(
        dim=widths[-1],
        frames=p.frames,
        layers=TEMPORAL_LAYERS,
        heads=TEMPORAL_HEADS,
        head_dim=scale_width(TEMPORAL_HEAD_DIM, scale),
        mlp_dim=scale_width(TEMPORAL_MLP, scale),
        dropout=p.dropout,
        init_std=p.embed_init_std,
    )
    return FormerDFER(
        spatial=spatial,
        temporal=temporal,
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
    )
