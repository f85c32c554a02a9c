"""The result files the engine writes and the report reads: their names, their keys, the one
writer and the one reader of each.

- **Flat metrics files** (JSON objects of scalars, keys in the order written): an evaluation's
  details (:data:`EVALUATION` in a fold or run folder; counts, per-class accuracies, settings
  as ``model_*`` keys, ``fold``, the training's labelled best-on-test numbers), the
  :data:`HEADLINE` metrics file for ``dvc metrics show``, the train stage's summary and the
  aggregate stage's fold summary. Written by :func:`write_flat`, read by :func:`read_flat`.
- **Features files** (:data:`FEATURES`, a compressed npz): the arrays of
  :data:`FEATURE_ARRAYS` plus the run's settings as a JSON string under ``meta``, so a report
  groups them by content. Written by :func:`write_features`, read by :func:`read_features`.

Nothing here knows the engine or the report; both import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nrdfer.errors import UserError
from nrdfer.io import atomic_path, write_metrics

EVALUATION = "evaluation.json"
"""File name of an evaluation's details inside a fold or run folder."""

FEATURES = "features.npz"
"""File name of an evaluation's features inside a run folder."""

HEADLINE = ("uar", "war", "sf_uar", "sf_war")
"""What a metrics file for ``dvc metrics show`` holds: UAR and WAR without and with the
snippet-based filter. Per-class accuracies, counts, settings and the labelled best-on-test
numbers go to the evaluation's details file."""

FEATURE_ARRAYS = ("keys", "labels", "pred", "pred_sf", "features", "attention", "frames")
"""Arrays of a features file: clip keys (N,), true classes (N,), predictions without and with
the filter (N,), pooled features (N, D) (D = 0 when not kept), and, only when the model has
them, per-frame attention (N, T') and the input frames of the first clips (n, T, H, W, 3)."""

RERUN = "re-run the stage that writes it (dvc repro)"
"""What to do about a result file that is missing or malformed."""


def write_flat(path: str | Path, values: Mapping[str, Any]) -> None:
    """Write one flat, deterministic metrics file (``dvc metrics show``), atomically.

    Values must be scalars (numbers, strings, booleans or None): nested values would make the
    file harder to diff and to aggregate over folds.
    """
    for key, value in values.items():
        if isinstance(value, (Mapping, list, tuple, np.ndarray)):
            raise ValueError(f"metrics must be flat; key {key!r} holds a {type(value).__name__}")
    write_metrics(path, values)


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`HEADLINE` keys of an evaluation's metrics, in that order."""
    return {k: metrics[k] for k in HEADLINE}


def read_flat(path: str | Path, what: str = "metrics file", fix: str = RERUN) -> dict[str, Any]:
    """A flat metrics file as a dict; a missing, unreadable or non-object file is a UserError
    naming it (``what`` it should be) and saying ``fix``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: cannot read the {what} (not found); {fix}") from None
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
        why = exc.strerror if isinstance(exc, OSError) else f"not valid JSON: {exc}"
        raise UserError(f"{path}: cannot read the {what} ({why}); {fix}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a flat JSON object (the {what}); {fix}")
    return data


def write_features(
    path: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None
) -> None:
    """Write a features file atomically: ``arrays`` (names of :data:`FEATURE_ARRAYS`) and
    ``meta`` (the run's settings, e.g. fold and model switches) as a JSON string."""
    unknown = sorted(set(arrays) - set(FEATURE_ARRAYS))
    if unknown:
        raise ValueError(f"not an array of a features file: {unknown[0]!r}")
    payload = {"meta": np.asarray(json.dumps(dict(meta or {}), sort_keys=True)), **arrays}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **payload)


def read_features(path: str | Path) -> dict[str, Any]:
    """A features file: ``{"path": path, "meta": settings dict, <array name>: array, ...}``
    (``meta`` empty for a file without one)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    return {"path": Path(path), "meta": meta, **arrays}
