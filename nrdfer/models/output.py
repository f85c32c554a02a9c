"""The named output every model in nrdfer returns (NR-DFERNet and the baselines alike)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ModelOutput:
    """What a forward pass gives back; K classes, B clips.

    Attributes:
        logits_seq: (B, K) clip logits before the snippet-based filter; training's
            cross-entropy uses these.
        logits: (B, K) logits after the snippet-based filter (paper Eq. 7); equal to
            ``logits_seq`` where the filter is off or did not fire.
        filter_fired: (B,) bool, whether Eq. 7 suppressed the neutral class for the clip.
        feature: (B, D) pooled clip feature (the t-SNE of paper Fig. 6).
        snippet_logits: (B, Ns, K) logits of the Ns snippets, or None for models without them.
        attention: (B, T') normalised per-frame temporal attention (rollout of the class
            token, paper Fig. 5), or None for models without temporal attention.
    """

    logits_seq: torch.Tensor
    logits: torch.Tensor
    filter_fired: torch.Tensor
    feature: torch.Tensor
    snippet_logits: torch.Tensor | None = None
    attention: torch.Tensor | None = None
