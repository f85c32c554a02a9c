"""Fold metrics -> mean and standard deviation (the 5-fold DFEW figures of the paper).

Every metrics file the evaluate/ablate stages write is flat and carries the settings it was run
with (``model_*`` keys, ``fold``), so results are grouped by content, never by file name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nrdfer.errors import UserError
from nrdfer.io import read_json

SUMMARY_PREFIXES = ("war", "uar", "acc_", "sf_", "best_on_test_")
"""Numeric keys averaged over folds (metrics with and without the filter, labelled best-on-test)."""


def read_metrics(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read flat metrics files; a missing or malformed one is an error naming it."""
    rows = []
    for path in paths:
        try:
            data = read_json(path)
        except (FileNotFoundError, ValueError) as exc:
            raise UserError(f"{exc}; re-run the stage that writes it (dvc repro)") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a flat JSON object of metrics")
        rows.append({**data, "_path": str(path)})
    return rows


def metrics_in(directory: str | Path) -> list[dict[str, Any]]:
    """Every ``*.json`` metrics file under ``directory`` (sorted; empty if it doesn't exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return read_metrics(sorted(directory.rglob("*.json")))


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def mean_std(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and (population) standard deviation over ``rows`` of every averaged key.

    Returns ``{key: mean, key_std: std, ..., "folds": n}``; a key missing or None in some rows
    (a class absent from a test fold) is averaged over the rows that have it.
    """
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key.startswith(SUMMARY_PREFIXES) and key not in keys and _numeric(value):
                keys.append(key)
    out: dict[str, Any] = {"folds": len(rows)}
    for key in keys:
        values = [float(r[key]) for r in rows if _numeric(r.get(key))]
        if not values:
            continue
        mean = sum(values) / len(values)
        out[key] = mean
        out[f"{key}_std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return out


def summarise_folds(
    fold_metrics: Sequence[Mapping[str, Any]], summaries: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The 5-fold summary: fold metrics and (labelled) best-on-test numbers from training."""
    folds = sorted(str(r.get("fold")) for r in fold_metrics)
    if len(set(folds)) != len(folds):
        raise UserError(f"fold metrics repeat a fold: {folds}")
    merged = []
    by_fold = {str(s.get("fold")): s for s in summaries}
    for row in fold_metrics:
        extra = by_fold.get(str(row.get("fold")), {})
        merged.append({**row, **{k: v for k, v in extra.items() if k.startswith("best_on_test")}})
    out = mean_std(merged)
    out["fold_list"] = ",".join(folds)
    note = next((s.get("best_on_test_note") for s in summaries if "best_on_test_note" in s), None)
    if note:
        out["best_on_test_note"] = note
    return out


def group(
    rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Hashable]
) -> dict[Hashable, dict[str, Any]]:
    """Group metric rows by ``key(row)`` and average each group over its folds."""
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return {k: mean_std(v) for k, v in groups.items()}
