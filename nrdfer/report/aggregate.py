"""Fold evaluations -> mean and standard deviation (the 5-fold DFEW figures of the paper).

Every evaluation file the evaluate/ablate stages write is flat and carries the settings it was
run with (``model_*`` keys, ``fold``), so results are grouped by content, never by file name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nrdfer.errors import UserError
from nrdfer.results import EVALUATION, HEADLINE, read_flat

SUMMARY_PREFIXES = ("war", "uar", "acc_", "sf_", "best_on_test_")
"""Numeric keys averaged over folds (metrics with and without the filter, labelled best-on-test)."""


def read_metrics(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read flat metrics files (:func:`nrdfer.results.read_flat`: a missing or malformed one is
    an error naming it), each with its path under ``_path``."""
    return [{**read_flat(path), "_path": str(path)} for path in paths]


def metrics_in(directory: str | Path, name: str = "*.json") -> list[dict[str, Any]]:
    """Every metrics file called ``name`` (a glob) under ``directory``, sorted; empty if the
    directory does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return read_metrics(sorted(directory.rglob(name)))


def main_fold_details(
    directory: str | Path, folds: Sequence[int], key: str = "folds.main"
) -> list[dict[str, Any]]:
    """The evaluation of each fold of ``folds`` (the params list ``key``) found under
    ``directory`` (by the ``fold`` each file records); a fold missing or evaluated twice is an
    error."""
    wanted = [str(f) for f in folds]
    rows = [r for r in metrics_in(directory, EVALUATION) if str(r.get("fold")) in wanted]
    found = sorted(str(r.get("fold")) for r in rows)
    missing = [f for f in wanted if f not in found]
    if missing or len(found) != len(set(found)):
        raise UserError(
            f"{directory}: expected one {EVALUATION} for each fold of {key} {wanted}, "
            f"found folds {found}; re-run the evaluate stages (dvc repro)"
        )
    return rows


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


def summarise_folds(fold_details: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The 5-fold summary of fold evaluations (which carry the training's labelled best-on-test
    numbers): mean and std of every averaged key, the fold list and the best-on-test note."""
    folds = sorted(str(r.get("fold")) for r in fold_details)
    if len(set(folds)) != len(folds):
        raise UserError(f"fold evaluations repeat a fold: {folds}")
    out = mean_std(fold_details)
    out["fold_list"] = ",".join(folds)
    note = next((r["best_on_test_note"] for r in fold_details if "best_on_test_note" in r), None)
    if note:
        out["best_on_test_note"] = note
    return out


def headline_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The 5-fold metrics file: :data:`HEADLINE` keys, each followed by its std."""
    return {k: summary[k] for key in HEADLINE for k in (key, f"{key}_std")}


def group(
    rows: Iterable[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], Hashable]
) -> dict[Hashable, dict[str, Any]]:
    """Group metric rows by ``key(row)`` and average each group over its folds; a row whose
    settings ``key`` cannot read (missing or malformed) is an error naming its file."""
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for row in rows:
        try:
            cell = key(row)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"{row.get('_path', 'a metrics row')}: cannot tell which table cell it belongs "
                f"to (missing or malformed setting: {exc}); re-run the stage that writes it "
                "(dvc repro)"
            ) from None
        groups.setdefault(cell, []).append(row)
    return {k: mean_std(v) for k, v in groups.items()}
