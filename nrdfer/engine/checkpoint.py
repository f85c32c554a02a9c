"""Checkpoints: written atomically, read with ``torch.load(..., weights_only=True)``.

A training checkpoint holds everything a killed run needs to continue bit-identically: model,
optimizer, scheduler and gradient-scaler states, the random-number states of every rank
(torch CPU, CUDA, numpy, Python), the epoch and the per-epoch history. A model file (what
evaluation and ``nrdfer predict`` read) holds the weights plus what rebuilds the model without
params.yaml: the model params dict, the class names and a ``preprocess`` dict.

``weights_only`` loading accepts only tensors and plain Python containers, so the numpy and
Python RNG states are stored as tensors / lists of ints rather than as their native objects.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrdfer.errors import UserError
from nrdfer.io import atomic_open, load_torch

CHECKPOINT_FORMAT = 1
"""Bumped when the layout of the saved dict changes; older files are refused with a message."""


def capture_rng_state() -> dict[str, Any]:
    """The current torch (CPU and CUDA), numpy and Python RNG states, ``weights_only``-safe."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {"version": int(py_version), "state": list(py_state), "gauss": py_gauss},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only where CUDA is present)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["name"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    pyst = state["python"]
    random.setstate((pyst["version"], tuple(pyst["state"]), pyst["gauss"]))


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and Python ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """Save ``state`` (tensors and plain containers only) to ``path`` atomically.

    The file is written next to ``path`` and renamed over it, so a run killed mid-write leaves
    the previous checkpoint intact.
    """
    payload = _same_shape({"format": CHECKPOINT_FORMAT, **state})
    # a file object, not the temp name: torch.save names the zip records after a file name,
    # which would put the random temp name into the bytes (same weights, different file)
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)


def _same_shape(obj: Any) -> Any:
    """``obj`` rebuilt with every string interned and no container shared.

    pickle writes a string once and refers back to it where the *same object* recurs, so a
    history read back from a checkpoint (fresh string objects) next to keys made by this run
    would give other bytes than an uninterrupted run (same values): a resumed ``last.pt``
    would hash differently in DVC. Interned, equal strings are one object in both runs.
    """
    if isinstance(obj, str):
        return sys.intern(obj)
    if isinstance(obj, Mapping):
        return {_same_shape(k): _same_shape(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_same_shape(v) for v in obj)
    return obj


def load_checkpoint(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    what: str = "checkpoint",
    fix: str = "delete it and re-run training",
) -> dict[str, Any]:
    """Load a file written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        UserError: the file is missing, unreadable or of another format (``what`` and ``fix``
            word the message).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: {what} not found; run the train stage first")
    state = load_torch(path, what, fix, map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not an nrdfer {what} of format {CHECKPOINT_FORMAT}; {fix}")
    return state


def model_file_state(
    model_state: Mapping[str, torch.Tensor],
    *,
    model_params: Mapping[str, Any],
    classes: list[str] | tuple[str, ...],
    preprocess: Mapping[str, Any],
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """The content of a model file: weights plus what rebuilds and feeds the model.

    Args:
        model_state: the model's ``state_dict`` (moved to CPU here).
        model_params: ``to_dict(ModelParams)``, enough for ``build_model`` without params.yaml.
        classes: class names in output order.
        preprocess: how inputs must be prepared (frames, size, sampling), for ``nrdfer predict``.
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


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file: part of a run's identity (shard index, initial weights), so a
    persisted checkpoint is resumed from only when the data and the starting point match."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MODEL_FILE_FIX = "give the model.pt the train stage writes (re-run training if this is one)"


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Read a model file written from :func:`model_file_state` (``weights_only``)."""
    state = load_checkpoint(path, what="model file", fix=MODEL_FILE_FIX)
    if state.get("kind") != "model":
        raise UserError(
            f"{path}: not a model file but a {state.get('kind')} checkpoint; {MODEL_FILE_FIX}"
        )
    return state
