"""Building blocks shared by NR-DFERNet's stages and the baselines.

- :class:`TransformerLayer` (with :class:`Attention`, :class:`Mlp`): the pre-LN ViT encoder layer of
  the spatial transformer (Eq. 3), the temporal transformer (Sec. 3.4) and Former-DFER. Attention
  is written out by hand so the weights can be returned for the attention rollout (paper Fig. 5);
  without weights it calls ``F.scaled_dot_product_attention``.
- :class:`BasicBlock`: the ResNet basic block of the CNN trunk, the DSF dynamic branch and the 2D
  baselines.
- :class:`FastMaxPool2d`: the stems' max-pool, in channels-last layout on CPU (same bits, faster).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "BasicBlock", "FastMaxPool2d", "Mlp", "TransformerLayer", "conv_out_size"]


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution or pooling layer (floor convention)."""
    return (size + 2 * padding - kernel) // stride + 1


class FastMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that pools contiguous CPU maps in channels-last layout.

    PyTorch's CPU max-pool is several times slower on contiguous (N, C, H, W) maps with few
    channels than on channels-last ones (the demo stem, 256 maps of 8 x 24 x 24: 4.8 ms against
    0.7 ms). Both kernels take the first maximum of a window in the same scan order, so the
    values, the positions the gradient flows back to and therefore the whole training are
    the same bits either way (tests/models/test_layers.py); the output has the input's layout.
    Traced or exported graphs (ONNX) keep the plain operator.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B', C, H, W) -> (B', C, H', W')."""
        plain = (
            x.device.type != "cpu"
            or x.dim() != 4
            or not x.is_contiguous()
            or torch.jit.is_tracing()
            or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export()
        )
        if plain:
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


# ------------------------------------------------------------------------------------------
# Transformer blocks (pre-LN ViT encoder, Dosovitskiy et al.; used by Eq. 3 and Sec. 3.4)
# ------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head self-attention with a bias-free qkv projection.

    Args:
        dim: token width.
        heads: number of heads.
        head_dim: width of one head (inner width ``heads * head_dim``).
        dropout: dropout after the output projection.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        inner = heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend over the tokens of ``x``.

        Args:
            x: (B, n, dim) tokens.
            need_weights: also return the (B, heads, n, n) softmax attention map (explicit
                softmax instead of the fused kernel).

        Returns:
            (B, n, dim) output and the attention map or None.
        """
        b, n, _ = x.shape
        # (B, n, 3*inner) -> (3, B, heads, n, head_dim)
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        weights = None
        if need_weights:
            weights = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)  # (B, h, n, n)
            out = weights @ v  # (B, h, n, head_dim)
        else:
            out = F.scaled_dot_product_attention(q, k, v)  # (B, h, n, head_dim)
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim)  # (B, n, inner)
        return self.drop(self.proj(out)), weights


class Mlp(nn.Module):
    """Two-layer GELU MLP of a transformer encoder layer."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class TransformerLayer(nn.Module):
    """One pre-LN encoder layer: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``.

    ``paper_call_count = 2`` tells :mod:`nrdfer.models.flops` that the authors' residual wrapper
    ran each sub-block twice, which their FLOPs figures (Table 3) count; the forward pass here
    runs each once.
    """

    paper_call_count = 2

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_dim, dropout)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, n, dim) -> (B, n, dim) and the (B, heads, n, n) attention map or None."""
        attended, weights = self.attn(self.norm1(x), need_weights)
        x = x + attended
        x = x + self.mlp(self.norm2(x))
        return x, weights


# ------------------------------------------------------------------------------------------
# ResNet basic block
# ------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016) with a 1x1 projection shortcut when the shape changes.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        stride: stride of the first 3x3 convolution (and of the projection).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))
