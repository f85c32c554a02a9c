"""The face tools from params: the one place where the ``detect_align`` and ``enhance`` sections
become a face detector and a low-light enhancer. The detect_align and enhance stages,
``nrdfer predict`` and ``nrdfer faces`` all build them here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrdfer.errors import UserError
from nrdfer.preprocess.enhance import (
    ClassicalEnhancer,
    Enhancer,
    EnlightenGANEnhancer,
    ZeroDCEEnhancer,
    load_enlightengan,
    load_zerodce,
)
from nrdfer.preprocess.faces import FaceDetector, TinyRetinaFace

if TYPE_CHECKING:
    import torch

    from nrdfer.params import DetectAlignParams, EnhanceParams

__all__ = ["build_detector", "build_enhancer"]


def build_detector(p: DetectAlignParams, device: str = "cpu", threads: int = 0) -> FaceDetector:
    """The detector ``p.backend`` names (``tiny`` or ``resnet50``), with ``p``'s thresholds,
    batch, frame size and smallest face; ``threads``: onnxruntime threads of ``tiny`` (0: its default).

    Raises:
        UserError: unknown backend, or the ResNet-50 weights file is not given / not found.
    """
    if p.backend == "tiny":
        return TinyRetinaFace(
            p.score_threshold, p.nms_threshold, p.batch_size, p.max_side, threads, p.min_face
        )
    if p.backend == "resnet50":  # imported here: torch only for the backend that needs it
        from nrdfer.preprocess.retinaface_r50 import RetinaFaceResNet50

        return RetinaFaceResNet50(
            p.resnet50_weights, p.score_threshold, p.nms_threshold, p.batch_size, p.max_side,
            device, p.min_face,
        )  # fmt: skip
    raise UserError(f"unknown face detector backend '{p.backend}' (use tiny or resnet50)")


def build_enhancer(p: EnhanceParams, device: str | torch.device = "cpu") -> Enhancer:
    """The enhancer ``p.method`` names (``classical``, ``enlightengan`` or ``zerodce``)."""
    if p.method == "classical":
        return ClassicalEnhancer(p.gamma, p.clahe_clip, p.clahe_grid)
    if p.method == "enlightengan":
        return EnlightenGANEnhancer(
            load_enlightengan(p.enlightengan_weights, device), device, p.batch_size
        )
    if p.method == "zerodce":
        return ZeroDCEEnhancer(load_zerodce(p.zerodce_weights, device), device, p.batch_size)
    raise UserError(f"unknown enhancement method '{p.method}' (classical, enlightengan, zerodce)")
