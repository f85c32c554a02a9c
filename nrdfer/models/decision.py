"""Decision stage of NR-DFERNet: the snippet-based filter (paper Sec. 3.5, Eq. 6 and 7).

Pure tensor functions plus a thin module holding the thresholds, so training, evaluation and
inference call the same code and the rule is tested alone:

- :func:`cut_snippets` slides a window of width L and stride S over the T−1 fused frame tokens
  (a gather with a fixed (N_s, L) index, which ONNX exports with a dynamic batch):
  N_s = ⌊(T−1−L)/S⌋ + 1 snippets (Eq. 6 with the token count).
- :func:`snippet_filter` is Eq. 7: if ANY snippet has max probability > μ1 AND neutral
  probability < μ2, the clip's neutral probability is set to zero; otherwise logits^seq is
  returned unchanged.

"Probability zero" is implemented by setting the neutral logit to ``m − 10⁴ − |m|``, where m is
the clip's smallest NON-neutral logit (:data:`SUPPRESSION_MARGIN` = 10⁴). What this guarantees,
whatever the logits and in float16, bfloat16, float32 and float64 (tested with neutral leading by
10⁴ and 10⁹, i.e. +inf in float16):

- the suppressed logit is strictly below every other logit (``2m − 10⁴`` for m < 0: doubling is
  exact in binary floating point), so ``argmax`` never picks neutral;
- it sits at least 10⁴ below the clip's largest logit, so ``softmax`` gives neutral probability
  exactly 0 (``exp(−10⁴)`` underflows in every dtype);
- it is finite unless 2m overflows (m below −32,750 in float16, i.e. logits nobody trains), when
  it is −inf, which keeps both guarantees.

It is not −inf or ``finfo.min`` in the normal regime so that ``log_softmax`` and cross-entropy
stay finite and casts between dtypes do not create infinities. In the regime trained models
reach, the probabilities and predictions equal those of any other suppression (the exact value
of the suppressed logit does not reach them).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "SUPPRESSION_MARGIN",
    "SnippetBasedFilter",
    "cut_snippets",
    "num_snippets",
    "snippet_filter",
]

SUPPRESSION_MARGIN = 1.0e4
"""A suppressed neutral logit sits at least this far below every other logit (softmax -> 0)."""


def num_snippets(tokens: int, width: int, stride: int) -> int:
    """N_s of Eq. 6: ⌊(tokens − width) / stride⌋ + 1."""
    if not 1 <= width <= tokens or stride < 1:
        raise ValueError(
            f"snippet width {width} / stride {stride} do not fit {tokens} frame tokens "
            "(need 1 <= width <= tokens, stride >= 1)"
        )
    return (tokens - width) // stride + 1


def cut_snippets(tokens: torch.Tensor, width: int, stride: int) -> torch.Tensor:
    """Sliding windows over the frame axis (Fig. 3).

    Args:
        tokens: (B, n, D) frame tokens.
        width: L, frames per snippet.
        stride: S, step between snippet starts.

    Returns:
        (B, N_s, L, D): snippet j holds tokens ``j*S .. j*S + L − 1``.
    """
    ns = num_snippets(tokens.shape[1], width, stride)
    starts = torch.arange(ns, device=tokens.device) * stride  # (Ns,)
    index = starts[:, None] + torch.arange(width, device=tokens.device)[None, :]  # (Ns, L)
    return tokens[:, index]  # (B, Ns, L, D)


def snippet_filter(
    logits_seq: torch.Tensor,
    snippet_logits: torch.Tensor,
    mu1: float,
    mu2: float,
    neutral_index: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 7: suppress neutral when some snippet shows a clear non-neutral expression.

    Probabilities are computed in float32 whatever the input dtype. Both inequalities are
    strict, as in Eq. 7 (a probability exactly at a threshold does not fire).

    Args:
        logits_seq: (B, K) clip logits.
        snippet_logits: (B, N_s, K) snippet logits.
        mu1: threshold on a snippet's maximum probability P_MAX.
        mu2: threshold on a snippet's neutral probability P_NU.
        neutral_index: index of the neutral class.

    Returns:
        logits^final (B, K) and ``fired`` (B,) bool.
    """
    probs = snippet_logits.float().softmax(dim=-1)  # (B, Ns, K)
    clear = (probs.amax(dim=-1) > mu1) & (probs[..., neutral_index] < mu2)  # (B, Ns)
    fired = clear.any(dim=1)  # (B,)
    classes = torch.arange(logits_seq.shape[-1], device=logits_seq.device)  # (K,)
    suppress = (classes == neutral_index)[None, :] & fired[:, None]  # (B, K)
    others = logits_seq.masked_fill((classes == neutral_index)[None, :], float("inf"))  # (B, K)
    low = others.amin(dim=-1, keepdim=True)  # (B, 1) smallest non-neutral logit
    floor = low - SUPPRESSION_MARGIN - low.abs()  # (B, 1) strictly below every other logit
    return torch.where(suppress, floor, logits_seq), fired


class SnippetBasedFilter(nn.Module):
    """The snippet-based filter as a module holding L, S, μ1, μ2 and the neutral index (Sec. 3.5).

    It has no parameters; :meth:`cut` makes the snippets and :meth:`forward` applies Eq. 7.
    """

    def __init__(self, width: int, stride: int, mu1: float, mu2: float, neutral_index: int) -> None:
        super().__init__()
        if not 0.0 <= mu1 <= 1.0 or not 0.0 <= mu2 <= 1.0:
            raise ValueError(f"mu1 and mu2 are probabilities in [0, 1], got {mu1}, {mu2}")
        self.width = width
        self.stride = stride
        self.mu1 = mu1
        self.mu2 = mu2
        self.neutral_index = neutral_index

    def cut(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n, D) frame tokens -> (B, N_s, L, D) snippets (:func:`cut_snippets`)."""
        return cut_snippets(tokens, self.width, self.stride)

    def forward(
        self, logits_seq: torch.Tensor, snippet_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 7 (:func:`snippet_filter`): (B, K), (B, N_s, K) -> logits^final (B, K), fired (B,)."""
        return snippet_filter(logits_seq, snippet_logits, self.mu1, self.mu2, self.neutral_index)

    def extra_repr(self) -> str:
        return (
            f"L={self.width}, S={self.stride}, mu1={self.mu1}, mu2={self.mu2}, "
            f"neutral_index={self.neutral_index}"
        )
