"""Fold assignments: official DFEW / MAFW 5 folds, AFEW train/val, FERV39k train/test, or a
seeded stratified k-fold.

The result is a plain dict (written as JSON by the folds stage):

- ``partitions``: name -> clip ids. Every usable clip is in exactly one partition (DFEW, MAFW:
  the test set ``set_k`` it belongs to; AFEW: ``train``/``val``; FERV39k: ``train``/``test``;
  stratified: ``fold_k``). The shard
  writer stores each partition once.
- ``folds``: fold name -> ``train``, ``val`` and ``test`` clip ids plus the partitions they
  come from (``train_parts``, ``test_parts``). ``val`` is carved out of the training clips
  (stratified by class, seeded) for honest model selection; it is empty when
  ``val_fraction`` is 0. Train, val and test are checked disjoint.
- ``labels``: clip id -> class index; ``notes``: anything unusual found on the way.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nrdfer.data.manifest import OK
from nrdfer.errors import UserError
from nrdfer.io import read_json

SCHEMES = ("auto", "official", "stratified")
SINGLE_SPLITS = {"afew": ("train", "val"), "ferv39k": ("train", "test")}
"""Data sets with one official split: (train partition, test partition) of their fold ``1``."""


def _stratified_partitions(ids: list[str], labels: list[int], k: int, seed: int) -> dict:
    from sklearn.model_selection import StratifiedKFold

    if len(ids) < k:
        raise UserError(f"{len(ids)} usable clips cannot be split into {k} folds; lower folds.k")
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % (2**32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class smaller than k: noted below
        splits = list(splitter.split(np.zeros(len(ids)), labels))
    return {f"fold_{i + 1}": sorted(ids[j] for j in test) for i, (_, test) in enumerate(splits)}


def carve_validation(
    train_ids: list[str], labels: dict[str, int], fraction: float, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Split training clips into (train, val), taking ``round(fraction·n_c)`` of each class c.

    A class keeps at least one training clip.
    """
    if not 0.0 <= fraction < 1.0:
        raise UserError(f"folds.val_fraction must be in [0, 1), got {fraction}")
    by_class: dict[int, list[str]] = defaultdict(list)
    for clip in sorted(train_ids):
        by_class[labels[clip]].append(clip)
    val: list[str] = []
    for cls in sorted(by_class):
        members = by_class[cls]
        take = min(int(round(fraction * len(members))), len(members) - 1)
        if take > 0:
            val += [members[i] for i in rng.choice(len(members), size=take, replace=False)]
    val_set = set(val)
    return sorted(c for c in train_ids if c not in val_set), sorted(val)


def make_folds(
    table: pd.DataFrame, scheme: str, k: int, val_fraction: float, seed: int
) -> dict[str, Any]:
    """Fold assignments for the usable (``status == ok``) clips of a manifest.

    Args:
        table: the manifest from :mod:`nrdfer.data.manifest`.
        scheme: ``official`` (DFEW / MAFW sets, AFEW train-val, FERV39k train-test from the
            manifest; every usable clip must have its official partition), ``stratified``
            (k-fold by label with a fixed seed) or ``auto`` (official when the manifest has
            official partitions, else stratified).
        k: number of folds for the stratified scheme.
        val_fraction: share of each fold's training clips held out for validation.
        seed: seed of the stratified split and of the validation carve-out.

    Returns:
        The fold dict described in the module docstring.
    """
    if scheme not in SCHEMES:
        raise UserError(f"folds.scheme={scheme!r}: use one of {SCHEMES}")
    ok = table[table["status"] == OK].sort_values("clip_id")
    if ok.empty:
        raise UserError("the manifest has no usable clip (status ok); see its status column")
    if ok["clip_id"].duplicated().any():
        dup = ok.loc[ok["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise UserError(f"clip id {dup!r} appears twice among usable clips; re-run ingest")
    ids = ok["clip_id"].tolist()
    labels = dict(zip(ids, (int(v) for v in ok["label"]), strict=True))
    dataset = str(ok["dataset"].iloc[0])
    has_official = bool((ok["partition"] != "").all())
    if scheme == "auto":
        scheme = "official" if has_official else "stratified"
    notes: list[str] = []
    if scheme == "official":
        partitions, folds = _official_folds(ok, ids, dataset, notes)
    else:
        partitions, folds = _stratified_folds(ids, labels, k, seed, notes)
    out_folds = _with_validation(folds, partitions, labels, val_fraction, seed)
    return {
        "dataset": dataset,
        "scheme": scheme,
        "seed": seed,
        "val_fraction": val_fraction,
        "partitions": {p: sorted(cs) for p, cs in sorted(partitions.items())},
        "folds": out_folds,
        "labels": labels,
        "notes": notes,
    }


def _official_folds(
    ok: pd.DataFrame, ids: list[str], dataset: str, notes: list[str]
) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """The data set's own partitions and folds (DFEW / MAFW sets, one train-test split of
    AFEW or FERV39k); a difference between a set's train CSV and the other test sets is
    added to ``notes``."""
    folds: dict[str, dict[str, list[str]]] = {}
    if not (ok["partition"] != "").any():
        raise UserError(
            "folds.scheme=official but the manifest has no official splits "
            "(no DFEW test CSV / AFEW split folder); use scheme stratified or auto"
        )
    partitions: dict[str, list[str]] = defaultdict(list)
    for clip, part in zip(ids, ok["partition"], strict=True):
        partitions[part or "extra"].append(clip)
    if dataset in ("mafw", "ferv39k") and partitions.get("extra"):
        raise UserError(
            f"folds.scheme=official: usable clip {partitions['extra'][0]!r} "
            f"(and {len(partitions['extra']) - 1} more) has no official test set in the "
            "manifest; re-run ingest, or use scheme stratified"
        )
    if dataset in SINGLE_SPLITS:
        train_part, test_part = SINGLE_SPLITS[dataset]
        if train_part not in partitions or test_part not in partitions:
            raise UserError(f"{dataset} needs both {train_part} and {test_part} clips for its fold")
        folds["1"] = {"train": partitions[train_part], "test": partitions[test_part]}
    else:
        train_sets = dict(zip(ids, ok["train_sets"].astype(str), strict=True))
        for name in sorted(p for p in partitions if p.startswith("set_")):
            fold = name.removeprefix("set_")
            train = sorted(c for c in ids if fold in train_sets[c].split(","))
            folds[fold] = {"train": train, "test": partitions[name]}
            others = sorted(c for p, cs in partitions.items() if p != name for c in cs)
            if train != others:
                notes.append(
                    f"fold {fold}: official train CSV has {len(train)} usable clips, "
                    f"the other test sets {len(others)}"
                )
    return partitions, folds


def _stratified_folds(
    ids: list[str], labels: dict[str, int], k: int, seed: int, notes: list[str]
) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """k folds by label with a fixed seed; classes with fewer clips than k go to ``notes``."""
    folds: dict[str, dict[str, list[str]]] = {}
    partitions = _stratified_partitions(ids, [labels[c] for c in ids], k, seed)
    for name in partitions:
        fold = name.removeprefix("fold_")
        train = sorted(c for p, cs in partitions.items() if p != name for c in cs)
        folds[fold] = {"train": train, "test": partitions[name]}
    small = {c: n for c, n in pd.Series(labels).value_counts().items() if n < k}
    if small:
        notes.append(f"classes with fewer clips than k={k}: {small}")
    return partitions, folds


def _with_validation(
    folds: dict[str, dict[str, list[str]]],
    partitions: dict[str, list[str]],
    labels: dict[str, int],
    val_fraction: float,
    seed: int,
) -> dict[str, dict[str, list[str]]]:
    """Each fold with its validation clips carved out of its training clips and the
    partitions its clips come from; train and test must not overlap."""
    part_of = {c: p for p, cs in partitions.items() for c in cs}
    out_folds = {}
    for i, (name, fold) in enumerate(sorted(folds.items(), key=lambda kv: int(kv[0]))):
        rng = np.random.default_rng([seed, i])
        train, val = carve_validation(fold["train"], labels, val_fraction, rng)
        test = sorted(fold["test"])
        if set(train) & set(test) or set(val) & set(test):
            raise UserError(f"fold {name}: train and test clips overlap; check the split CSVs")
        out_folds[name] = {
            "train": train,
            "val": val,
            "test": test,
            "train_parts": sorted({part_of[c] for c in train + val}),
            "test_parts": sorted({part_of[c] for c in test}),
        }
    return out_folds


def summarize_folds(folds: dict[str, Any]) -> str:
    """One line: scheme and train/val/test sizes per fold."""
    sizes = ", ".join(
        f"{name}: {len(f['train'])}/{len(f['val'])}/{len(f['test'])}"
        for name, f in folds["folds"].items()
    )
    return f"{folds['dataset']} {folds['scheme']} folds (train/val/test) {sizes}"


def read_folds(path: str | Path) -> dict[str, Any]:
    """Read a fold file written by the folds stage, checking its layout before any work.

    Raises:
        UserError: missing, not JSON, or not a fold file; names the file and says to re-run
            the folds stage.
    """
    path = Path(path)
    fix = "re-run the folds stage"
    if not path.is_file():
        raise UserError(f"{path}: fold file not found; {fix} first")
    try:
        folds = read_json(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the fold file ({exc}); {fix}") from None

    def names(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(c, str) for c in value)

    problem = None
    if not isinstance(folds, dict):
        problem = f"holds a JSON {type(folds).__name__}, not a fold file (an object)"
    elif not isinstance(folds.get("dataset"), str) or not isinstance(folds.get("scheme"), str):
        problem = "has no dataset or scheme"
    elif not isinstance(folds.get("partitions"), dict) or not all(
        names(ids) for ids in folds["partitions"].values()
    ):
        problem = "has no 'partitions' object of clip id lists"
    elif not isinstance(folds.get("folds"), dict) or not folds["folds"]:
        problem = "has no 'folds' object"
    else:
        keys = ("train", "val", "test", "train_parts", "test_parts")
        for name, fold in folds["folds"].items():
            if not isinstance(fold, dict) or not all(names(fold.get(k)) for k in keys):
                problem = f"fold {name!r} lacks one of {', '.join(keys)} (lists of names)"
                break
    if problem:
        raise UserError(f"{path}: {problem}; {fix}")
    return folds
