"""A model file -> the model in eval mode, its class names and how its inputs must be prepared.

The file's format (what it stores, how older files are filled in, how each value is checked)
lives in :mod:`nrdfer.model_file`; this module builds the model from it. Nothing here reads
params.yaml: the file alone rebuilds the model and its input pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nrdfer.errors import UserError
from nrdfer.model_file import InputSpec, input_spec, load_model_file, model_params_of
from nrdfer.models import build_model, load_weights
from nrdfer.params import ModelParams

__all__ = ["LoadedModel", "load_model_for_inference"]


@dataclass
class LoadedModel:
    """A model ready for inference plus everything its file says about its inputs.

    Attributes:
        model: the network in eval mode on ``device``.
        params: its ``model`` params section.
        classes: class names in output order.
        spec: how inputs are prepared.
        info: provenance stored in the file (selected epoch, fold, ...).
        path: the model file.
        device: where the model runs.
    """

    model: nn.Module
    params: ModelParams
    classes: tuple[str, ...]
    spec: InputSpec
    info: dict[str, Any]
    path: Path
    device: torch.device


def load_model_for_inference(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model of a model file (``weights_only`` loading) in eval mode.

    Raises:
        UserError: not an nrdfer model file (another format, a training checkpoint, random
            bytes), settings missing, or weights that do not fit the recorded architecture.
    """
    path = Path(path)
    state = load_model_file(path)
    source = str(path)
    params = model_params_of(state, source)
    spec = input_spec(state.get("preprocess") or {}, source)
    classes = tuple(str(c) for c in state["classes"])
    if len(classes) != params.num_classes:
        raise UserError(
            f"{source}: {len(classes)} class names for a model with {params.num_classes} "
            "outputs; the file is inconsistent, re-run training"
        )
    if params.frames != spec.frames or params.image_size != spec.size:
        raise UserError(
            f"{source}: the model takes {params.frames} frames of {params.image_size} px but "
            f"the file's sampling gives U x V = {spec.frames} frames of {spec.size} px; the "
            "file is inconsistent, re-run training"
        )
    model = build_model(params, source)
    load_weights(model, state["model_state"], source)
    device = torch.device(device)
    model.to(device).eval()
    return LoadedModel(
        model=model,
        params=params,
        classes=classes,
        spec=spec,
        info=dict(state.get("info") or {}),
        path=path,
        device=device,
    )
