"""Checkpoint files: the versioned torch file of a training run (and, inside it, of a model file).

A training checkpoint holds everything a killed run needs to continue bit-identically: model,
optimizer, scheduler and gradient-scaler states, the random-number states of every rank
(:mod:`nrdfer.engine.rng_state`), the epoch and the per-epoch history. A model file
(:mod:`nrdfer.model_file`) is written and read
through the same two functions. ``weights_only`` loading accepts only tensors and plain Python
containers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nrdfer.errors import UserError
from nrdfer.io import atomic_open, load_torch

CHECKPOINT_FORMAT = 1
"""Bumped when the layout of the saved dict changes; older files are refused with a message."""


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
    map_location: Any = "cpu",
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
