"""Classification metrics of the DFER literature (paper §4.1), in plain numpy.

- WAR (weighted average recall) = overall accuracy.
- UAR (unweighted average recall) = mean over classes of the per-class recall, i.e. the mean
  of the diagonal of the row-normalised confusion matrix. Classes absent from the ground truth
  are left out of the mean (as scikit-learn's ``balanced_accuracy_score`` does) and reported as
  ``None`` per class.

Every number is a fraction in [0, 1]; tables multiply by 100. The files they are written to
have their format in :mod:`nrdfer.results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_labels(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got {arr.dtype}")
    return arr.astype(np.int64)


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of clips of true class ``i`` predicted as ``j``; (K, K) int64."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in length")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} has class indices outside 0..{num_classes - 1}")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)  # (K*K,) -> (K, K)


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (= per-class accuracy); NaN for classes with no true clip."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def war(cm: np.ndarray) -> float:
    """Weighted average recall = accuracy = trace / total (NaN for an empty matrix)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def uar(cm: np.ndarray) -> float:
    """Unweighted average recall: mean recall over classes present in the ground truth."""
    recall = per_class_recall(cm)
    present = ~np.isnan(recall)
    return float(recall[present].mean()) if present.any() else float("nan")


def classification_metrics(
    y_true: Any, y_pred: Any, classes: Sequence[str], prefix: str = ""
) -> dict[str, Any]:
    """Flat metrics: ``{prefix}war``, ``{prefix}uar`` and ``{prefix}acc_<Class>`` per class.

    Args:
        y_true: true class indices (N,).
        y_pred: predicted class indices (N,).
        classes: class names in index order (the data set's class set, ``nrdfer.labels``).
        prefix: prepended to every key, e.g. ``"sf_"`` for the filtered predictions.
    """
    cm = confusion_matrix(y_true, y_pred, len(classes))
    out: dict[str, Any] = {f"{prefix}war": war(cm), f"{prefix}uar": uar(cm)}
    for name, value in zip(classes, per_class_recall(cm), strict=True):
        out[f"{prefix}acc_{name}"] = None if np.isnan(value) else float(value)
    return out
