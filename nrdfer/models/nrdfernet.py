"""NR-DFERNet (Li et al., "NR-DFERNet: Noise-Robust Network for Dynamic Facial Expression
Recognition", ACM MM 2022, arXiv:2206.04975): the three stages composed.

Data flow (paper defaults; every size is a constructor argument)::

    clip x (B, T=16, 3, 112, 112), values in [0, 1], no mean/std normalisation
      ↓ spatial stage   ResNetTrunk per frame                      (B, 16, 256, 7, 7)
                        DynamicStaticFusion (Sec. 3.3, Eq. 1-4)    (B, 15, 256, 4, 4)
      ↓ temporal stage  flatten → DCT (Eq. 5) + E_p^T → N layers   (B, 15, 4096) → logits^seq
      ↓ decision stage  snippets (unfold, L=3, S=2: N_s=7) through the same temporal
                        transformer and head → Eq. 7 → logits^final   (eval mode, ``sf`` on)

Switches for the paper's ablations (Tables 1-3): ``dsf``, ``dct``, ``sf``, ``snippet_len`` (L),
``snippet_stride`` (S), ``spatial_layers`` (M) and ``temporal_layers`` (N).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nrdfer.models.decision import SnippetBasedFilter, num_snippets
from nrdfer.models.layers import conv_out_size
from nrdfer.models.output import ModelOutput
from nrdfer.models.registry import register
from nrdfer.models.spatial import DynamicStaticFusion, ResNetTrunk
from nrdfer.models.temporal import TemporalTransformer, attention_rollout

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = ["NRDFERNet", "build_nrdfernet", "nrdfernet_parameters"]


class NRDFERNet(nn.Module):
    """NR-DFERNet: spatial (DSF), temporal (DCT) and decision (snippet-based filter) stages.

    Args:
        num_classes: K.
        frames: T, frames per clip (the position embedding has T rows).
        image_size: square input side in pixels.
        widths: channels of the trunk's three stages; C = ``widths[-1]``.
        dynamic_blocks: BasicBlocks in the DSF dynamic branch.
        spatial_layers: M (Table 3).
        temporal_layers: N (Table 3).
        spatial_heads, spatial_head_dim, spatial_mlp_dim: spatial transformer sizes.
        temporal_heads, temporal_head_dim, temporal_mlp_dim: temporal transformer sizes.
        dropout: transformer dropout.
        embed_init_std: std of the N(0, std) init of position embeddings and learned token.
        dsf: dynamic-static fusion on (False: static branch only, Table 1).
        dct: dynamic class token (False: learned class token, Table 1).
        sf: snippet-based filter at evaluation (Table 1).
        snippet_len: L (Table 2).
        snippet_stride: S (Table 2).
        mu1, mu2: Eq. 7 thresholds.
        neutral_index: index of the neutral class.
    """

    linear_init_std = 0.02  # trunc-normal std of Linear weights (ViT convention)

    def __init__(
        self,
        *,
        num_classes: int,
        frames: int,
        image_size: int,
        widths: tuple[int, ...] | list[int],
        dynamic_blocks: int,
        spatial_layers: int,
        temporal_layers: int,
        spatial_heads: int,
        spatial_head_dim: int,
        spatial_mlp_dim: int,
        temporal_heads: int,
        temporal_head_dim: int,
        temporal_mlp_dim: int,
        dropout: float,
        embed_init_std: float,
        dsf: bool,
        dct: bool,
        sf: bool,
        snippet_len: int,
        snippet_stride: int,
        mu1: float,
        mu2: float,
        neutral_index: int,
    ) -> None:
        super().__init__()
        if frames < 2:
            raise ValueError(f"NR-DFERNet needs at least 2 frames (Eq. 1), got {frames}")
        if not 0 <= neutral_index < num_classes:
            raise ValueError(f"neutral_index {neutral_index} is not a class of {num_classes}")
        if spatial_layers < 0:
            raise ValueError(f"M must be >= 0, got {spatial_layers}")
        self.num_classes = num_classes
        self.frames = frames
        self.image_size = image_size
        self.trunk = ResNetTrunk(widths)
        map_size = self.trunk.out_size(image_size)
        if map_size < 1:
            raise ValueError(f"image_size {image_size} is too small for the trunk")
        channels = self.trunk.out_channels
        self.dsf = DynamicStaticFusion(
            channels,
            map_size,
            dynamic_blocks,
            spatial_layers,
            spatial_heads,
            spatial_head_dim,
            spatial_mlp_dim,
            dropout,
            embed_init_std,
            use_dynamic=dsf,
        )
        self.token_dim = channels * self.dsf.out_size**2  # D = C·(H/2)·(W/2): 4096 at 112 px
        self.temporal = TemporalTransformer(
            self.token_dim,
            frames,  # 1 class token + T-1 frame tokens
            temporal_layers,
            temporal_heads,
            temporal_head_dim,
            temporal_mlp_dim,
            dropout,
            num_classes,
            dynamic_token=dct,
            init_std=embed_init_std,
        )
        self.filter: SnippetBasedFilter | None = None
        if sf:
            num_snippets(frames - 1, snippet_len, snippet_stride)  # validates L, S against T-1
            self.filter = SnippetBasedFilter(snippet_len, snippet_stride, mu1, mu2, neutral_index)
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        """Kaiming-normal convs, BN/LN γ=1 β=0, trunc-normal Linear (docs/model.md)."""
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=self.linear_init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def frame_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial stage: (B, T, 3, H, W) clip -> (B, T−1, D) fused frame tokens P^DS."""
        if x.dim() != 5 or x.shape[1] != self.frames or x.shape[2] != 3:
            raise ValueError(
                f"expected a clip batch (B, {self.frames}, 3, H, W), got {tuple(x.shape)}"
            )
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"expected {self.image_size}x{self.image_size} frames, got "
                f"{x.shape[-2]}x{x.shape[-1]}"
            )
        b, t, c, h, w = x.shape
        maps = self.trunk(x.reshape(b * t, c, h, w))  # (B*T, C, h, w)
        maps = maps.reshape(b, t, *maps.shape[1:])  # (B, T, C, h, w)
        fused = self.dsf(maps)  # (B, T-1, C, h', w')
        return fused.flatten(2)  # (B, T-1, D)

    def forward(self, x: torch.Tensor, return_attention: bool | None = None) -> ModelOutput:
        """Classify clips.

        Args:
            x: (B, T, 3, H, W) float clips in [0, 1].
            return_attention: compute the class-token attention rollout (Fig. 5); default: in
                eval mode only (training uses the fused attention kernel).

        Returns:
            :class:`ModelOutput`; in train mode (or with ``sf`` off) ``logits`` is
            ``logits_seq``, ``snippet_logits`` is None and ``filter_fired`` is all False.
        """
        need_weights = (not self.training) if return_attention is None else return_attention
        tokens = self.frame_tokens(x)  # (B, T-1, D)
        b, n, d = tokens.shape
        logits_seq, feature, maps = self.temporal(tokens, need_weights)
        attention = attention_rollout(maps) if need_weights else None  # (B, T-1)
        logits = logits_seq
        fired = torch.zeros(b, dtype=torch.bool, device=x.device)
        snippet_logits = None
        if self.filter is not None and not self.training:
            snippets = self.filter.cut(tokens)  # (B, Ns, L, D)
            ns, width = snippets.shape[1], snippets.shape[2]
            flat, _, _ = self.temporal(snippets.reshape(b * ns, width, d))  # (B*Ns, K)
            snippet_logits = flat.reshape(b, ns, -1)  # (B, Ns, K)
            logits, fired = self.filter(logits_seq, snippet_logits)
        return ModelOutput(
            logits_seq=logits_seq,
            logits=logits,
            filter_fired=fired,
            feature=feature,
            snippet_logits=snippet_logits,
            attention=attention,
        )


def _block_parameters(in_ch: int, out_ch: int, stride: int) -> int:
    """Parameters of a :class:`~nrdfer.models.layers.BasicBlock`: two 3x3 convolutions
    without bias, two BatchNorms, a 1x1 projection + BatchNorm when the shape changes."""
    n = 9 * in_ch * out_ch + 2 * out_ch + 9 * out_ch * out_ch + 2 * out_ch
    if stride != 1 or in_ch != out_ch:
        n += in_ch * out_ch + 2 * out_ch
    return n


def _layer_parameters(dim: int, heads: int, head_dim: int, mlp_dim: int) -> int:
    """Parameters of a :class:`~nrdfer.models.layers.TransformerLayer`: two LayerNorms, the
    bias-free qkv projection, the output projection, the two-layer MLP."""
    inner = heads * head_dim
    return (
        2 * dim
        + 3 * dim * inner
        + (inner * dim + dim)
        + 2 * dim
        + (dim * mlp_dim + mlp_dim)
        + (mlp_dim * dim + dim)
    )


def nrdfernet_parameters(p: ModelParams) -> int:
    """The number of parameters :func:`build_nrdfernet` gives for ``p``, counted from the
    hyper-parameters alone (nothing is built or allocated): ``build_model`` refuses a model
    over its size cap with it before building.

    Equals ``sum(q.numel() for q in build_nrdfernet(p).parameters())`` (tested for several
    settings).
    """
    w0, w1, w2 = p.widths
    trunk = ResNetTrunk.stem_kernel**2 * 3 * w0 + 2 * w0  # stem conv (no bias) + BatchNorm
    for in_ch, out_ch, stride in zip(
        (w0, w0, w1), (w0, w1, w2), ResNetTrunk.stage_strides, strict=True
    ):
        trunk += _block_parameters(in_ch, out_ch, stride)
    size = p.image_size
    size = conv_out_size(
        size, ResNetTrunk.stem_kernel, ResNetTrunk.stem_stride, ResNetTrunk.stem_kernel // 2
    )
    size = conv_out_size(
        size, ResNetTrunk.pool_kernel, ResNetTrunk.pool_stride, ResNetTrunk.pool_kernel // 2
    )
    for stride in ResNetTrunk.stage_strides:
        size = conv_out_size(size, 3, stride, 1)
    side = conv_out_size(max(size, 1), 3, 2, 1)  # after Conv-D / the dynamic branch's stride 2
    c = w2
    dsf = 9 * c * c + 2 * c  # Conv-D
    dsf += side**2 * c + p.M * _layer_parameters(
        c, p.spatial_heads, p.spatial_head_dim, p.spatial_mlp_dim
    )
    if p.dsf:
        dsf += _block_parameters(c, c, 2) + (p.dynamic_blocks - 1) * _block_parameters(c, c, 1)
    d = c * side**2  # token width D
    temporal = p.frames * d + p.N * _layer_parameters(
        d, p.temporal_heads, p.temporal_head_dim, p.temporal_mlp_dim
    )
    temporal += d * p.num_classes + p.num_classes  # head
    if not p.dct:
        temporal += d  # learned class token
    return trunk + dsf + temporal


@register(
    "nrdfernet",
    parameters=nrdfernet_parameters,
    reads=(
        "num_classes", "frames", "image_size", "widths", "dynamic_blocks", "M", "N",
        "spatial_heads", "spatial_head_dim", "spatial_mlp_dim", "temporal_heads",
        "temporal_head_dim", "temporal_mlp_dim", "dropout", "embed_init_std", "dsf", "dct", "sf",
        "snippet_len", "snippet_stride", "mu1", "mu2", "neutral_index",
    ),
)  # fmt: skip
def build_nrdfernet(p: ModelParams) -> NRDFERNet:
    """NR-DFERNet from the ``model`` params section."""
    return NRDFERNet(
        num_classes=p.num_classes,
        frames=p.frames,
        image_size=p.image_size,
        widths=p.widths,
        dynamic_blocks=p.dynamic_blocks,
        spatial_layers=p.M,
        temporal_layers=p.N,
        spatial_heads=p.spatial_heads,
        spatial_head_dim=p.spatial_head_dim,
        spatial_mlp_dim=p.spatial_mlp_dim,
        temporal_heads=p.temporal_heads,
        temporal_head_dim=p.temporal_head_dim,
        temporal_mlp_dim=p.temporal_mlp_dim,
        dropout=p.dropout,
        embed_init_std=p.embed_init_std,
        dsf=p.dsf,
        dct=p.dct,
        sf=p.sf,
        snippet_len=p.snippet_len,
        snippet_stride=p.snippet_stride,
        mu1=p.mu1,
        mu2=p.mu2,
        neutral_index=p.neutral_index,
    )
