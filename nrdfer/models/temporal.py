"""Temporal stage of NR-DFERNet: class token, temporal transformer and head (paper Sec. 3.4).

Data flow (paper defaults)::

    F^DS (B, T−1, 256, 4, 4)
      ↓ flatten                                  frame tokens P^DS (B, 15, 4096), no projection
      ↓ DynamicClassToken: mean of the frame tokens (Eq. 5)  — or LearnedClassToken (ablation)
      ↓ [token; P^DS] + E_p^T                    (B, 16, 4096)
      ↓ N pre-LN encoder layers
      ↓ token 0 → Linear → logits^seq            (B, K)

The same :class:`TemporalTransformer` (with the first L+1 position-embedding rows) and the same
head classify the snippets of the decision stage (Sec. 3.5).
"""

from __future__ import annotations

import torch
from torch import nn

from nrdfer.models.layers import TransformerLayer

__all__ = ["DynamicClassToken", "LearnedClassToken", "TemporalTransformer", "attention_rollout"]


class DynamicClassToken(nn.Module):
    """The dynamic class token T_d (Eq. 5): the mean of a sequence's frame tokens."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n, D) frame tokens -> (B, 1, D) class token."""
        return tokens.mean(dim=1, keepdim=True)


class LearnedClassToken(nn.Module):
    """The standard ViT class token (Table 1 rows without DCT): one learned vector for all clips.

    Args:
        dim: token width D.
        init_std: std of its normal initialisation.
    """

    def __init__(self, dim: int, init_std: float) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.empty(dim))
        nn.init.normal_(self.token, std=init_std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n, D) frame tokens (only their batch size is used) -> (B, 1, D) class token."""
        return self.token.expand(tokens.shape[0], 1, -1)


def attention_rollout(maps: list[torch.Tensor]) -> torch.Tensor:
    """Attention rollout of the class token (Abnar & Zuidema 2020; paper Fig. 5).

    Per layer the heads are averaged and the residual connection is modelled as identity:
    ``Â = (A + I) / 2`` (rows still sum to 1); the layers are multiplied,
    ``R = Â_N ⋯ Â_1``, and the class-token row of R over the frame tokens is renormalised to
    sum to 1.

    Args:
        maps: one (B, heads, n, n) softmax attention map per layer, first layer first.

    Returns:
        (B, n−1) attention of the class token (index 0) to the frame tokens 1..n−1.
    """
    dtype = torch.promote_types(maps[0].dtype, torch.float32)  # at least float32
    b, _, n, _ = maps[0].shape
    eye = torch.eye(n, device=maps[0].device, dtype=dtype)
    rollout = eye.expand(b, n, n)  # (B, n, n)
    for attn in maps:
        a = (attn.to(dtype).mean(dim=1) + eye) / 2  # (B, n, n): heads averaged, residual added
        rollout = a @ rollout
    cls_row = rollout[:, 0, 1:]  # (B, n-1)
    total = cls_row.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
    return cls_row / total


class TemporalTransformer(nn.Module):
    """Class token + learnable position embedding + N encoder layers + linear head (Sec. 3.4).

    Args:
        dim: token width D = C·(H/2)·(W/2) (4096 at the paper's sizes).
        max_tokens: rows of the position embedding E_p^T (T: one class token + T−1 frames).
        layers: N encoder layers (Table 3).
        heads, head_dim, mlp_dim, dropout: encoder layer sizes.
        num_classes: K.
        dynamic_token: True = DCT (Eq. 5), False = a learned class token (Table 1 ablation).
        init_std: std of the normal init of the position embedding and the learned token.
    """

    def __init__(
        self,
        dim: int,
        max_tokens: int,
        layers: int,
        heads: int,
        head_dim: int,
        mlp_dim: int,
        dropout: float,
        num_classes: int,
        dynamic_token: bool,
        init_std: float,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"the temporal transformer needs at least one layer, got {layers}")
        self.class_token: nn.Module = (
            DynamicClassToken() if dynamic_token else LearnedClassToken(dim, init_std)
        )
        self.pos_embed = nn.Parameter(torch.empty(max_tokens, dim))  # E_p^T
        nn.init.normal_(self.pos_embed, std=init_std)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            [TransformerLayer(dim, heads, head_dim, mlp_dim, dropout) for _ in range(layers)]
        )
        self.head = nn.Linear(dim, num_classes)

    def forward(
        self, tokens: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Classify sequences of frame tokens.

        Args:
            tokens: (B, n, D) frame tokens, n + 1 <= ``max_tokens``.
            need_weights: also return each layer's attention map.

        Returns:
            logits (B, K), the class-token output feature (B, D) and the list of
            (B, heads, n+1, n+1) attention maps (empty unless ``need_weights``).
        """
        n = tokens.shape[1]
        if n + 1 > self.pos_embed.shape[0]:
            raise ValueError(
                f"{n} frame tokens need {n + 1} position embeddings, have {self.pos_embed.shape[0]}"
            )
        z = torch.cat([self.class_token(tokens), tokens], dim=1)  # (B, n+1, D)
        z = self.drop(z + self.pos_embed[: n + 1])
        maps = []
        for layer in self.layers:
            z, weights = layer(z, need_weights)
            if weights is not None:
                maps.append(weights)
        feature = z[:, 0]  # (B, D): the class token's output
        return self.head(feature), feature, maps
