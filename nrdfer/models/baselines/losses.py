"""Auxiliary feature losses of two Table 5 baselines, and the model-side hook that applies them.

- :class:`CenterLoss` (Wen et al., "A Discriminative Feature Learning Approach for Deep Face
  Recognition", ECCV 2016, Eq. 2): row "3D R.18 + Center Loss".
- :class:`ECSTFLLoss` (Jiang et al., "DFEW: A Large-Scale Database for Recognizing Dynamic
  Facial Expressions in the Wild", ACM MM 2020): row "EC-STFL".

The training engine computes cross-entropy on ``logits_seq`` for every model and adds
``model.extra_loss(output, labels)`` when the (unwrapped) model has that method; an
:class:`AuxLossModel` provides it, already multiplied by its weight (``model.aux_loss_weight``).
"""

from __future__ import annotations

import torch
from torch import nn

from nrdfer.models.output import ModelOutput

__all__ = ["AuxLossModel", "CenterLoss", "ECSTFLLoss"]


class CenterLoss(nn.Module):
    """Center loss ``L_C = ½ · mean_i ‖x_i − c_{y_i}‖²`` (Wen et al. 2016, Eq. 2).

    The K class centres are a parameter of the model, learned by the same optimizer through the
    gradient ``∂L_C/∂c_j`` (the gradient form of Wen et al.'s update, Eq. 4), so they are saved
    in checkpoints and replicated by DDP like any weight. The batch mean replaces Wen et al.'s
    sum so the weight does not depend on the batch size.

    Args:
        num_classes: K.
        dim: feature width D.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, dim))  # c_j, (K, D)

    def forward(self, feature: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) features and (B,) labels -> scalar loss."""
        diff = feature - self.centers[labels]  # (B, D)
        return 0.5 * diff.pow(2).sum(dim=1).mean()


class ECSTFLLoss(nn.Module):
    """Expression-clustered spatio-temporal feature learning loss (Jiang et al. 2020, Sec. 5).

    EC-STFL pulls the clip features of one expression together and pushes the expressions
    apart. We write it as the Fisher (LDA) trace ratio over the mini-batch, with class means
    ``μ_c`` and the batch mean ``μ``::

        L = S_w / S_b,   S_w = Σ_i ‖x_i − μ_{y_i}‖²,   S_b = Σ_c n_c ‖μ_c − μ‖²

    which is invariant to the feature scale (so it cannot be lowered by shrinking features,
    unlike a plain within-class term). A batch with fewer than two expressions has no
    between-class scatter and contributes zero.

    Args:
        eps: lower bound on ``S_b`` guarding the division.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, feature: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, D) features and (B,) labels -> scalar loss."""
        classes, index, counts = labels.unique(return_inverse=True, return_counts=True)
        if classes.numel() < 2:
            return feature.sum() * 0.0  # keeps the graph (and DDP's used-parameter set) intact
        sums = feature.new_zeros(classes.numel(), feature.shape[1]).index_add(0, index, feature)
        means = sums / counts.unsqueeze(1).to(feature.dtype)  # μ_c, (C', D)
        within = (feature - means[index]).pow(2).sum()  # S_w
        overall = feature.mean(dim=0, keepdim=True)  # μ, (1, D)
        between = (counts.to(feature.dtype) * (means - overall).pow(2).sum(dim=1)).sum()  # S_b
        return within / between.clamp_min(self.eps)


class AuxLossModel(nn.Module):
    """A clip classifier trained with cross-entropy plus ``weight ·`` a loss on its feature.

    ``forward`` is the backbone's; :meth:`extra_loss` is the hook the training engine adds to
    the cross-entropy on ``logits_seq``.

    Args:
        backbone: any model returning :class:`ModelOutput`.
        loss: ``(feature (B, D), labels (B,)) -> scalar``.
        weight: λ, the weight of ``loss`` against the cross-entropy.
    """

    def __init__(self, backbone: nn.Module, loss: nn.Module, weight: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.aux_loss = loss
        self.weight = weight

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """(B, T, 3, H, W) clips in [0, 1] -> the backbone's :class:`ModelOutput`."""
        return self.backbone(x)

    def extra_loss(self, output: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
        """``weight · loss(output.feature, labels)`` in float32 (safe under autocast)."""
        return self.weight * self.aux_loss(output.feature.float(), labels)
