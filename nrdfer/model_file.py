"""The model file: what the train stage writes and evaluation, fine-tuning, ``nrdfer predict``
and ``nrdfer export`` read.

A model file is a checkpoint file (:mod:`nrdfer.checkpoint`, ``kind: "model"``) holding

- ``model_state``: the weights (CPU tensors);
- ``model_params``: the ``model`` params section, enough for ``build_model`` without params.yaml;
- ``classes``: the class names in output order;
- ``preprocess``: how inputs must be prepared (:func:`preprocess_record`): ``U``, ``V``,
  ``size`` (the test-protocol sampling, paper §3.2, and the input side), ``detect_align`` (the
  face detection and alignment section the training data went through) and ``enhance`` (the
  low-light enhancement section, or None when the training data was not enhanced);
- ``info``: provenance (selected epoch, selection rule, fold, seed, data set).

This module writes that record (:func:`preprocess_record`, :func:`model_file_state`), reads it
(:func:`load_model_file`), fills in what older files lack (:data:`DETECT_ALIGN_BEFORE`) and
checks each stored value once, for every reader: the container in :func:`load_model_file`, the
model params in :func:`model_params_of`, the preprocessing record in :func:`input_spec`.
Nothing here reads params.yaml: the file alone rebuilds the model and its input pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

import torch
from pydantic import ConfigDict, TypeAdapter, ValidationError

from nrdfer.checkpoint import load_checkpoint
from nrdfer.errors import UserError
from nrdfer.params import (
    DataParams,
    DetectAlignParams,
    EnhanceParams,
    ModelParams,
    allowed,
    from_dict,
    to_dict,
)

__all__ = [
    "DETECT_ALIGN_BEFORE",
    "MODEL_FILE_DAMAGED",
    "MODEL_FILE_FIX",
    "REQUIRED_KEYS",
    "InputSpec",
    "input_spec",
    "load_model_file",
    "model_file_state",
    "model_params_of",
    "preprocess_record",
]

MODEL_FILE_FIX = "give the model.pt the train stage writes (re-run training if this is one)"

MODEL_FILE_DAMAGED = "the file is damaged or from another nrdfer version: re-run training"

REQUIRED_KEYS = ("U", "V", "size", "detect_align", "enhance")
"""Keys of a model file's ``preprocess`` dict that inference needs."""

DETECT_ALIGN_BEFORE = {"min_face": 0.0, "detect_every": 1}
"""``detect_align`` settings that model files written before they existed lack: the values that
reproduce how those files' training data was made (one detector pass, every frame)."""


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


def preprocess_record(
    data: DataParams,
    detect_align: DetectAlignParams | None = None,
    enhance: EnhanceParams | None = None,
) -> dict[str, Any]:
    """How a clip must be prepared for the model (the model file's ``preprocess`` dict).

    ``detect_align`` (face detection and alignment of raw videos) and ``enhance`` (low-light
    enhancement, None when the training data was not enhanced) let ``nrdfer predict`` run a raw
    video through the same face code without params.yaml (:func:`input_spec`).
    """
    spec: dict[str, Any] = {
        "U": data.U,  # segments
        "V": data.V,  # consecutive frames per segment
        "frames": data.U * data.V,
        "size": data.size,  # square side after resize
        "sampling": "test: V consecutive frames centred in each of U equal segments (paper §3.2)",
        "input": "float (B, T, 3, H, W) RGB in [0, 1]",
    }
    if detect_align is not None:
        spec["detect_align"] = to_dict(detect_align)
        spec["enhance"] = None if enhance is None else to_dict(enhance)
    return spec


def model_file_state(
    model_state: Mapping[str, Any],
    *,
    model_params: Mapping[str, Any],
    classes: list[str] | tuple[str, ...],
    preprocess: Mapping[str, Any],
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """The content of a model file (saved with :func:`nrdfer.checkpoint.save_checkpoint`).

    Args:
        model_state: the model's ``state_dict`` (moved to CPU here).
        model_params: ``to_dict(ModelParams)``, enough for ``build_model`` without params.yaml.
        classes: class names in output order.
        preprocess: :func:`preprocess_record`, for ``nrdfer predict``.
        info: provenance, e.g. selected epoch and selection rule.
    """
    return {
        "kind": "model",
        "model_state": {k: v.detach().cpu() for k, v in model_state.items()},
        "model_params": dict(model_params),
        "classes": list(classes),
        "preprocess": dict(preprocess),
        "info": dict(info),
    }


# ------------------------------------------------------------------------------------------
# Reading and checking
# ------------------------------------------------------------------------------------------


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Read a model file written from :func:`model_file_state` (``weights_only``) and check
    its container once, here, for every reader (predict, export, evaluate, fine-tuning):
    ``model_state`` maps names to tensors whose floating values are all finite,
    ``model_params`` and ``preprocess`` are mappings (their values are checked by
    :func:`model_params_of` and :func:`input_spec`), ``classes`` is a non-empty list of names,
    ``info`` a mapping.

    Raises:
        UserError: one line naming the file and the first thing wrong.
    """
    state = load_checkpoint(path, what="model file", fix=MODEL_FILE_FIX)
    if state.get("kind") != "model":
        raise UserError(
            f"{path}: not a model file but a {state.get('kind')} checkpoint; {MODEL_FILE_FIX}"
        )
    _check_container(state, path)
    _check_weights(state["model_state"], path)
    return state


def _check_container(state: Mapping[str, Any], path: str | Path) -> None:
    """The record's entries have their kinds and ``classes`` holds names."""
    for key, kind in (("model_state", Mapping), ("model_params", Mapping), ("classes", list)):
        kind = (list, tuple) if kind is list else kind
        if key not in state:
            raise UserError(f"{path}: the model file has no {key!r}; {MODEL_FILE_DAMAGED}")
        if not isinstance(state[key], kind):
            raise UserError(
                f"{path}: the model file's {key!r} is a {type(state[key]).__name__}, not a "
                f"{'mapping' if kind is Mapping else 'list'}; {MODEL_FILE_DAMAGED}"
            )
    for key in ("preprocess", "info"):
        if state.get(key) is not None and not isinstance(state[key], Mapping):
            raise UserError(
                f"{path}: the model file's {key!r} is a {type(state[key]).__name__}, not a "
                f"mapping; {MODEL_FILE_DAMAGED}"
            )
    classes = state["classes"]
    if not classes or not all(isinstance(c, str) and c for c in classes):
        raise UserError(
            f"{path}: the model file's 'classes' must be a non-empty list of class names, got "
            f"{str(classes)[:80]}; {MODEL_FILE_DAMAGED}"
        )


def _check_weights(model_state: Mapping[Any, Any], path: str | Path) -> None:
    """Every weight is a named tensor with finite floating values."""
    for name, tensor in model_state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise UserError(
                f"{path}: the model file's weights hold {str(name)[:60]!r}, which is not a named "
                f"tensor; {MODEL_FILE_DAMAGED}"
            )
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(
            torch.isfinite(tensor).all()
        ):
            raise UserError(
                f"{path}: the weights hold NaN or Inf values ({name}); the training diverged or "
                "the file is damaged: use another model file or re-run training"
            )


def model_params_of(state: Mapping[str, Any], source: str | Path) -> ModelParams:
    """The stored ``model_params`` checked with the params schema (a UserError naming
    ``source`` and the key when a value is out of its range)."""
    return from_dict(ModelParams, state["model_params"], source=str(source))


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
    """Parse a model file's ``preprocess`` dict; ``detect_align`` settings that older files
    lack are filled in from :data:`DETECT_ALIGN_BEFORE`.

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
