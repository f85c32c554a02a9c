"""A model file -> the model, its class names and how its inputs must be prepared.

A model file (``nrdfer.io.model_file_state``) carries the ``model`` params dict,
the class names and a ``preprocess`` dict. Inference reads from ``preprocess``:

- ``U``, ``V``, ``size``: the test-protocol sampling (paper §3.2) and the input side;
- ``detect_align``: the ``detect_align`` params section (face detector, alignment crop size,
  frame stride), so a video goes through the same face code as the training data;
- ``enhance``: the ``enhance`` params section when the training data was low-light enhanced
  (AFEW, paper §4.1), or None when it was not (DFEW ships its own face crops).

Nothing here reads params.yaml: the file alone rebuilds the model and its input pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError
from torch import nn

from nrdfer.errors import UserError
from nrdfer.io import MODEL_FILE_DAMAGED, load_model_file
from nrdfer.models import build_model, load_weights
from nrdfer.params import (
    DataParams,
    DetectAlignParams,
    EnhanceParams,
    ModelParams,
    allowed,
    from_dict,
)

__all__ = ["InputSpec", "LoadedModel", "input_spec", "load_model_for_inference"]

REQUIRED_KEYS = ("U", "V", "size", "detect_align", "enhance")

DETECT_ALIGN_BEFORE = {"min_face": 0.0, "detect_every": 1}
"""``detect_align`` settings that model files written before they existed lack: the values that
reproduce how those files' training data was made (one detector pass, every frame)."""
"""Keys of a model file's ``preprocess`` dict that inference needs."""


@dataclass(frozen=True)
class InputSpec:
    """How a video becomes model input, as recorded in the model file.

    Attributes:
        U: segments per clip (paper §3.2).
        V: consecutive frames per segment; T = U·V.
        size: square side of the model's input frames.
        detect_align: face detection and alignment settings of the training data.
        enhance: low-light enhancement settings, or None when the training data had none.
    """

    U: int
    V: int
    size: int
    detect_align: DetectAlignParams
    enhance: EnhanceParams | None

    @property
    def frames(self) -> int:
        """T = U·V frames per clip."""
        return self.U * self.V


def input_spec(preprocess: Mapping[str, Any], source: str) -> InputSpec:
    """Parse a model file's ``preprocess`` dict.

    Args:
        preprocess: the dict stored in the model file.
        source: the file's name, for error messages.

    Raises:
        UserError: a key is missing or a section does not match its params dataclass.
    """
    missing = [k for k in REQUIRED_KEYS if k not in preprocess]
    if missing:
        raise UserError(
            f"{source}: the model file lacks the preprocessing settings {', '.join(missing)} "
            "that inference needs; it was written by an older train stage: re-run training "
            "(dvc repro) to write a model file that carries them"
        )
    enhance, detect = preprocess["enhance"], preprocess["detect_align"]
    for key, value in (("detect_align", detect), ("enhance", enhance)):
        if not isinstance(value, Mapping) and not (key == "enhance" and value is None):
            raise UserError(
                f"{source}: preprocess.{key} = {str(value)[:60]!r}: must be a mapping (the "
                f"{key} params section){' or None' * (key == 'enhance')}; {MODEL_FILE_DAMAGED}"
            )
    return InputSpec(
        U=_sampling_value(preprocess, "U", source),
        V=_sampling_value(preprocess, "V", source),
        size=_sampling_value(preprocess, "size", source),
        detect_align=from_dict(DetectAlignParams, {**DETECT_ALIGN_BEFORE, **detect}, source=source),
        enhance=None if enhance is None else from_dict(EnhanceParams, enhance, source=source),
    )


def _sampling_value(preprocess: Mapping[str, Any], key: str, source: str) -> int:
    """``preprocess[key]`` checked with the rule of the ``data`` section's field of that name."""
    rule = get_type_hints(DataParams, include_extras=True)[key]
    try:
        return TypeAdapter(rule, config=ConfigDict(strict=True)).validate_python(preprocess[key])
    except ValidationError:
        raise UserError(
            f"{source}: preprocess.{key} = {str(preprocess[key])[:60]!r}: must be "
            f"{allowed(DataParams, key)} (as data.{key}); {MODEL_FILE_DAMAGED}"
        ) from None


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
    params = from_dict(ModelParams, state["model_params"], source=source)
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
