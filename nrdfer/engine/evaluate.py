"""Evaluation: predictions over a loader, metrics with and without the snippet-based filter.

The model is run once per clip; its :class:`~nrdfer.models.output.ModelOutput` carries both
``logits_seq`` (before the filter) and ``logits`` (after Eq. 7), so the two rows of every
table (and the two curves of paper Fig. 4) come from the same forward pass. Files written
here: confusion data for ``dvc plots`` (one record per clip), a per-clip predictions CSV and
the pooled features (npz) for the t-SNE of Fig. 6. The flat metrics files and the features
file have their format in :mod:`nrdfer.results`, the confusion PNG is drawn by
:mod:`nrdfer.plots`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from nrdfer.engine.metrics import classification_metrics, confusion_matrix
from nrdfer.engine.precision import Precision, autocast, to_float_clips
from nrdfer.io import atomic_open, write_plot_rows
from nrdfer.results import write_features

Batch = tuple[torch.Tensor, torch.Tensor, Sequence[str]]
"""A batch from the shard readers: uint8 clips (B, T, 3, H, W), int64 labels (B,), clip keys."""

SF_PREFIX = "sf_"
"""Key prefix of the metrics computed after the snippet-based filter."""


@dataclass
class Predictions:
    """Per-clip model outputs over a data set (N clips, K classes), on the CPU."""

    keys: list[str]
    labels: np.ndarray  # (N,) int64 true class
    logits_seq: np.ndarray  # (N, K) float32, before the snippet-based filter
    logits: np.ndarray  # (N, K) float32, after the filter (Eq. 7)
    filter_fired: np.ndarray  # (N,) bool
    features: np.ndarray  # (N, D) float32 pooled clip features
    attention: np.ndarray | None  # (N, T') float32 per-frame attention, or None
    frames: np.ndarray | None = None  # (n, T, H, W, 3) uint8 input frames of the first n clips

    @property
    def pred_seq(self) -> np.ndarray:
        return self.logits_seq.argmax(axis=1)

    @property
    def pred(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


@torch.no_grad()
def predict(
    model: nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    precision: Precision = "fp32",
    *,
    progress: bool = False,
    desc: str = "eval",
    keep_frames: int = 0,
) -> Predictions:
    """Run ``model`` in eval mode over ``batches`` and collect its outputs (restores train mode).

    Args:
        model: returns a :class:`~nrdfer.models.output.ModelOutput`.
        batches: ``(clips uint8 (B, T, 3, H, W), labels (B,), keys)`` triples.
        device: where the model lives.
        precision: autocast precision for the forward pass.
        progress: show a progress bar.
        desc: the progress bar's label.
        keep_frames: keep the input frames of the first this many clips (paper Fig. 5).
    """
    was_training = model.training
    model.eval()
    keys: list[str] = []
    kept: list[np.ndarray] = []  # (b, T, H, W, 3) uint8 chunks, keep_frames clips in all
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("labels", "logits_seq", "logits", "fired", "feature", "attention")
    }
    try:
        for clips, labels, batch_keys in tqdm(
            batches, desc=desc, disable=not progress, leave=False
        ):
            with autocast(device, precision):
                out = model(to_float_clips(clips, device))
            keys.extend(str(k) for k in batch_keys)
            room = keep_frames - sum(len(k) for k in kept)
            if room > 0:  # (B, T, 3, H, W) -> (b, T, H, W, 3)
                kept.append(clips[:room].permute(0, 1, 3, 4, 2).cpu().numpy().astype(np.uint8))
            cols["labels"].append(labels.cpu().numpy().astype(np.int64))
            cols["logits_seq"].append(out.logits_seq.float().cpu().numpy())
            cols["logits"].append(out.logits.float().cpu().numpy())
            cols["fired"].append(out.filter_fired.cpu().numpy().astype(bool))
            cols["feature"].append(out.feature.float().cpu().numpy())
            if out.attention is not None:
                cols["attention"].append(out.attention.float().cpu().numpy())
    finally:
        model.train(was_training)
    if not keys:
        raise ValueError("evaluation got no clips: the data set (or this fold) is empty")

    def cat(name: str) -> np.ndarray:
        return np.concatenate(cols[name], axis=0)

    return Predictions(
        keys=keys,
        labels=cat("labels"),
        logits_seq=cat("logits_seq"),
        logits=cat("logits"),
        filter_fired=cat("fired"),
        features=cat("feature"),
        attention=cat("attention") if len(cols["attention"]) == len(cols["labels"]) else None,
        frames=np.concatenate(kept, axis=0) if kept else None,
    )


def compute_metrics(pred: Predictions, classes: Sequence[str]) -> dict[str, Any]:
    """Flat metrics without (``war``, ``uar``, ``acc_<Class>``) and with the filter
    (``sf_war``, ...), plus ``sf_gain_war``/``sf_gain_uar`` (with minus without; paper Fig. 4),
    the fraction of clips where the filter fired, and the clip count."""
    out: dict[str, Any] = {"clips": len(pred.keys)}
    out.update(classification_metrics(pred.labels, pred.pred_seq, classes))
    out.update(classification_metrics(pred.labels, pred.pred, classes, prefix=SF_PREFIX))
    out["sf_gain_war"] = out[f"{SF_PREFIX}war"] - out["war"]
    out["sf_gain_uar"] = out[f"{SF_PREFIX}uar"] - out["uar"]
    out["sf_fired_fraction"] = float(pred.filter_fired.mean())
    return out


def confusion_matrices(pred: Predictions, num_classes: int) -> dict[str, np.ndarray]:
    """Confusion counts (K, K) without and with the snippet-based filter, by the title of
    their panel in the confusion PNG (:func:`nrdfer.plots.confusion_png`)."""
    return {
        "without SF": confusion_matrix(pred.labels, pred.pred_seq, num_classes),
        "with SF": confusion_matrix(pred.labels, pred.pred, num_classes),
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def write_predictions_csv(path: str | Path, pred: Predictions, classes: Sequence[str]) -> None:
    """One row per clip (sorted by key, so the file is deterministic): key, label, predictions
    before/after the filter, whether it fired, and the class probabilities before the filter."""
    order = np.argsort(np.asarray(pred.keys, dtype=object), kind="stable")
    probs = _softmax(pred.logits_seq)
    header = ["key", "label", "pred", "pred_sf", "filter_fired"] + [f"p_{c}" for c in classes]
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for i in order:
            writer.writerow(
                [
                    pred.keys[i],
                    classes[pred.labels[i]],
                    classes[pred.pred_seq[i]],
                    classes[pred.pred[i]],
                    int(pred.filter_fired[i]),
                    *(f"{p:.6f}" for p in probs[i]),
                ]
            )


def write_confusion_json(
    path: str | Path, labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]
) -> None:
    """Confusion data for ``dvc plots`` (template ``confusion``, x ``predicted``, y ``actual``):
    one ``{actual, predicted}`` record per clip, sorted, so the file is deterministic."""
    rows = sorted(
        zip((classes[i] for i in labels), (classes[j] for j in predicted), strict=True),
        key=lambda r: (classes.index(r[0]), classes.index(r[1])),
    )
    write_plot_rows(path, [{"actual": a, "predicted": p} for a, p in rows])


def save_features(
    path: str | Path, pred: Predictions, meta: Mapping[str, Any] | None = None
) -> None:
    """Keys, labels, predictions, pooled features, attention and the kept input frames of the
    first clips (``frames``; only beside attention: paper Fig. 5) as a features file
    (:func:`nrdfer.results.write_features`), with ``meta`` (the run's settings, e.g. fold and
    model switches) so a report can group files by content."""
    arrays: dict[str, np.ndarray] = {
        "keys": np.asarray(pred.keys, dtype=str),
        "labels": pred.labels,
        "pred": pred.pred_seq,
        "pred_sf": pred.pred,
        "features": pred.features,
    }
    if pred.attention is not None:
        arrays["attention"] = pred.attention
        if pred.frames is not None:
            arrays["frames"] = pred.frames
    write_features(path, arrays, meta)
