"""Writing shards: every usable clip once, grouped by partition, then ``index.json``."""

from __future__ import annotations

import json
import math
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import webdataset as wds
from tqdm import tqdm

from nrdfer.data.frames import read_clip
from nrdfer.data.shards.format import (
    FORMAT,
    INDEX,
    PROGRESS_DIR,
    ShardSpec,
    encode_clip_sample,
    one_size,
    spec_dict,
)
from nrdfer.errors import UserError
from nrdfer.io import claim_dir, disk_errors, read_json, write_json

if TYPE_CHECKING:  # pandas (0.5 s to import) only for the shards stage, not for every reader
    import pandas as pd


def _write_one_shard(job: dict[str, Any]) -> dict[str, Any]:
    """Write one tar (to a temporary name, then renamed); returns its index entry."""
    root, out, spec = Path(job["root"]), Path(job["out"]), job["spec"]
    entry = {"name": job["name"], "part": job["part"], "ids": [], "frames": {}, "skipped": {}}
    entry["resized"] = {}
    tmp = out / f".{job['name']}.tmp"
    try:
        with open(tmp, "wb") as fh:
            writer = wds.TarWriter(fh, encoder=False, mtime=0)  # int: no pax header
            for row in job["rows"]:
                frames, bad = read_clip(root / row["source"])
                if not frames:
                    entry["skipped"][row["clip_id"]] = f"no readable frame in {row['source']}"
                    continue
                frames, resized = one_size(frames)  # training needs one size per clip
                meta = {"source": row["source"], "part": job["part"], "bad_frames": bad}
                if resized:
                    entry["resized"][row["clip_id"]] = meta["resized"] = resized
                sample = encode_clip_sample(row["clip_id"], int(row["label"]), frames, meta, spec)
                writer.write(sample)
                entry["ids"].append(row["clip_id"])
                entry["frames"][row["clip_id"]] = json.loads(sample["json"])["frames"]
            writer.close()
        tmp.replace(out / job["name"])
    except BaseException:  # no partial tar left behind, whatever stopped the writing
        tmp.unlink(missing_ok=True)
        raise
    entry["bytes"] = (out / job["name"]).stat().st_size
    # the spec goes into the record now, so a run killed later still resumes from this tar
    record = dict(entry, job_clips=job["clips"], spec=spec_dict(spec))
    write_json(out / PROGRESS_DIR / f"{job['name']}.json", record)
    return entry


def write_shards(
    table: pd.DataFrame,
    folds: dict[str, Any],
    root: str | Path,
    out: str | Path,
    spec: ShardSpec,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Write every usable clip once, grouped by partition, and the ``index.json``.

    Resumable: a shard whose progress record lists the same clips (ids, labels and sources)
    and spec is not written again.
    A clip whose frames can no longer be read is left out and listed under ``skipped``.

    Args:
        table: the manifest (only ``status == ok`` clips of the folds' partitions are stored).
        folds: the fold dict of :func:`nrdfer.data.folds.make_folds`.
        root: the data root the manifest's ``source`` paths are relative to.
        out: the shard directory.
        spec: frame size, JPEG quality, clips per shard, frame cap.
        workers: parallel processes over shards.
        progress: show a progress bar.

    Returns:
        The index (also written to ``out/index.json``).
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise UserError(
            f"{root}: data root not found; pass the folder the manifest was made from "
            "(--root, the ingest stage's root)"
        )
    with disk_errors(out, "re-run the shards stage"):
        return _write_all(table, folds, root, out, spec, workers, progress)


def _write_all(table, folds, root: Path, out: Path, spec: ShardSpec, workers, progress):
    from nrdfer.data.manifest import OK  # imports pandas

    claim_dir(out, "the shards stage", legacy=INDEX)
    rows = {r["clip_id"]: r for r in table[table["status"] == OK].to_dict("records")}
    jobs = []
    for part, ids in folds["partitions"].items():
        missing = [c for c in ids if c not in rows]
        if missing:
            raise UserError(
                f"folds name clip {missing[0]!r} that is not usable in the manifest; "
                "re-run the folds stage on this manifest"
            )
        for j in range(0, max(1, math.ceil(len(ids) / spec.maxcount))):
            chunk = ids[j * spec.maxcount : (j + 1) * spec.maxcount]
            name = f"{part}-{j:06d}.tar"
            jobs.append(
                {
                    "name": name,
                    "part": part,
                    "ids": chunk,
                    "rows": [rows[c] for c in chunk],
                    # what a resumed tar must match: each clip's id, label and frames
                    "clips": [[c, int(rows[c]["label"]), str(rows[c]["source"])] for c in chunk],
                    "root": str(root),
                    "out": str(out),
                    "spec": spec,
                }
            )
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        record = out / PROGRESS_DIR / f"{job['name']}.json"
        if record.is_file() and (out / job["name"]).is_file():
            previous = read_json(record)
            if previous.get("job_clips") == job["clips"] and previous.get("spec") == spec_dict(
                spec
            ):
                done[job["name"]] = previous
                continue
        todo.append(job)
    bar = tqdm(total=len(jobs), initial=len(done), desc="shards", unit="tar", disable=not progress)
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for entry in pool.map(_write_one_shard, todo):
                done[entry["name"]] = entry
                bar.update()
    else:
        for job in todo:
            done[job["name"]] = _write_one_shard(job)
            bar.update()
    bar.close()
    index = _build_index(folds, jobs, done, rows, spec)
    keep = {job["name"] for job in jobs}
    for stale in out.glob("*.tar"):
        if stale.name not in keep:
            stale.unlink()
    write_json(out / INDEX, index)
    shutil.rmtree(out / PROGRESS_DIR, ignore_errors=True)
    for leftover in out.glob(".*.tmp*"):  # temp files of a killed run (this run's are renamed)
        leftover.unlink()
    return index


def _build_index(folds, jobs, done, rows, spec: ShardSpec) -> dict[str, Any]:
    parts: dict[str, dict[str, Any]] = {}
    clips: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    resized: dict[str, str] = {}
    for job in jobs:
        entry = done[job["name"]]
        part = parts.setdefault(job["part"], {"clips": 0, "shards": []})
        part["clips"] += len(entry["ids"])
        part["shards"].append(
            {"name": entry["name"], "clips": len(entry["ids"]), "bytes": entry["bytes"]}
        )
        for clip in entry["ids"]:
            clips[clip] = {
                "label": int(rows[clip]["label"]),
                "part": job["part"],
                "shard": entry["name"],
                "frames": entry["frames"][clip],
            }
        skipped.update(entry["skipped"])
        resized.update(entry.get("resized", {}))
    fold_index = {
        name: {key: [c for c in fold[key] if c in clips] for key in ("train", "val", "test")}
        | {"train_parts": fold["train_parts"], "test_parts": fold["test_parts"]}
        for name, fold in folds["folds"].items()
    }
    return {
        "format": FORMAT,
        "dataset": folds["dataset"],
        "scheme": folds["scheme"],
        "spec": spec_dict(spec),
        "parts": parts,
        "clips": dict(sorted(clips.items())),
        "folds": fold_index,
        "skipped": skipped,
        "resized": resized,
    }
