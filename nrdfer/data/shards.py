"""WebDataset shards: the writer (one tar set per partition) and the clip readers.

Layout of a shard directory (see ``docs/data.md``)::

    index.json                 parts -> shard files and clip counts, clips -> label/part/shard,
                               folds -> train/val/test clip ids and the parts they come from
    set_1-000000.tar ...       one partition per prefix (DFEW test sets, AFEW train/val,
                               stratified fold_k); each usable clip stored exactly once

A sample is three tar members, ``<clip id>.json`` (metadata, with the byte length of every
frame), ``<clip id>.cls`` (the label) and ``<clip id>.mjpeg``: every (or at most ``max_frames``
evenly spaced) frame as a JPEG whose short side leaves room for the random crop, the JPEGs
concatenated in frame order (a Motion-JPEG stream: ``ffplay -f mjpeg 00001.mjpeg`` plays it,
:func:`frame_jpegs` splits it). Three members per clip whatever its length keep the cost of
reading a tar independent of the frame count. Fold k reads the parts that hold its clips and
keeps only the ids of the split asked for, before any JPEG is decoded; only the T sampled
frames of a clip are decoded, straight into a batch buffer in shared memory.

Readers yield ``(clips uint8 (B, T, 3, H, W), labels int64 (B,), keys list[str])``. With
``data.augment_on: device`` the training reader hands the decoded frames and each clip's
augmentation draws over, and the warp runs after batching on the training device.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
import zlib
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
import webdataset as wds
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from nrdfer.data.frames import read_clip
from nrdfer.data.manifest import OK
from nrdfer.data.sampling import sample_indices
from nrdfer.data.transforms import (
    ClipAugment,
    clip_affine,
    draw_clip_params,
    resize_frame_into,
    warp_batch,
    warp_frame_into,
)
from nrdfer.errors import UserError
from nrdfer.io import claim_dir, read_json, write_json
from nrdfer.params import DataParams

INDEX = "index.json"
FORMAT = 2  # 1: one member per frame (before 2026-12); 2: one .mjpeg member per clip
_PROGRESS_DIR = ".progress"


class CorruptShardError(UserError):
    """A shard is missing, truncated or not a valid tar; the message names the shard."""


@dataclass(frozen=True)
class ShardSpec:
    """How frames are stored (the ``shards`` section of params.yaml).

    Attributes:
        short_side: frames are resized so their short side is this many pixels.
        quality: JPEG quality.
        maxcount: clips per tar.
        max_frames: keep at most this many frames per clip, evenly spaced; 0 keeps all.
    """

    short_side: int
    quality: int
    maxcount: int
    max_frames: int


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def keep_frames(n: int, max_frames: int) -> np.ndarray:
    """Indices of the frames stored for a clip of n frames (all, or max_frames evenly spaced)."""
    if max_frames <= 0 or n <= max_frames:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(np.int64))


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Shrink so the short side is at most ``short_side`` (area filter); never enlarge."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_clip_sample(
    clip_id: str, label: int, frames: Sequence[np.ndarray], meta: dict[str, Any], spec: ShardSpec
) -> dict[str, Any]:
    """One WebDataset sample: JSON metadata, the label and the stored frames as JPEG bytes."""
    if "." in clip_id or "/" in clip_id:
        raise ValueError(f"clip id {clip_id!r} must not contain '.' or '/' (WebDataset keys)")
    keep = keep_frames(len(frames), spec.max_frames)
    params = [cv2.IMWRITE_JPEG_QUALITY, spec.quality]
    jpegs = []
    for i in keep:
        ok, buf = cv2.imencode(".jpg", resize_short_side(frames[i], spec.short_side), params)
        if not ok:
            raise ValueError(f"{clip_id}: JPEG encoding failed for frame {i}")
        jpegs.append(buf.tobytes())
    info = dict(
        meta,
        clip_id=clip_id,
        label=label,
        frames=len(keep),
        source_frames=len(frames),
        frame_bytes=[len(j) for j in jpegs],
    )
    return {
        "__key__": clip_id,
        "json": json.dumps(info, sort_keys=True).encode(),
        "cls": str(label).encode(),
        "mjpeg": b"".join(jpegs),
    }


def _write_one_shard(job: dict[str, Any]) -> dict[str, Any]:
    """Write one tar (to a temporary name, then renamed); returns its index entry."""
    root, out, spec = Path(job["root"]), Path(job["out"]), job["spec"]
    entry = {"name": job["name"], "part": job["part"], "ids": [], "frames": {}, "skipped": {}}
    tmp = out / f".{job['name']}.tmp"
    with open(tmp, "wb") as fh:
        writer = wds.TarWriter(fh, encoder=False, mtime=0)  # int: no pax header
        for row in job["rows"]:
            frames, bad = read_clip(root / row["source"])
            if not frames:
                entry["skipped"][row["clip_id"]] = f"no readable frame in {row['source']}"
                continue
            meta = {"source": row["source"], "part": job["part"], "bad_frames": bad}
            sample = encode_clip_sample(row["clip_id"], int(row["label"]), frames, meta, spec)
            writer.write(sample)
            entry["ids"].append(row["clip_id"])
            entry["frames"][row["clip_id"]] = json.loads(sample["json"])["frames"]
        writer.close()
    tmp.replace(out / job["name"])
    entry["bytes"] = (out / job["name"]).stat().st_size
    # the spec goes into the record now, so a run killed later still resumes from this tar
    record = dict(entry, job_ids=job["ids"], spec=_spec_dict(spec))
    write_json(out / _PROGRESS_DIR / f"{job['name']}.json", record)
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

    Resumable: a shard whose progress record lists the same clips is not written again.
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
                    "root": str(root),
                    "out": str(out),
                    "spec": spec,
                }
            )
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        record = out / _PROGRESS_DIR / f"{job['name']}.json"
        if record.is_file() and (out / job["name"]).is_file():
            previous = read_json(record)
            if previous.get("job_ids") == job["ids"] and previous.get("spec") == _spec_dict(spec):
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
    shutil.rmtree(out / _PROGRESS_DIR, ignore_errors=True)
    for leftover in out.glob(".*.tmp*"):  # temp files of a killed run (this run's are renamed)
        leftover.unlink()
    return index


def _spec_dict(spec: ShardSpec) -> dict[str, int]:
    return {
        "short_side": spec.short_side,
        "quality": spec.quality,
        "maxcount": spec.maxcount,
        "max_frames": spec.max_frames,
    }


def _build_index(folds, jobs, done, rows, spec: ShardSpec) -> dict[str, Any]:
    parts: dict[str, dict[str, Any]] = {}
    clips: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
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
    fold_index = {
        name: {key: [c for c in fold[key] if c in clips] for key in ("train", "val", "test")}
        | {"train_parts": fold["train_parts"], "test_parts": fold["test_parts"]}
        for name, fold in folds["folds"].items()
    }
    return {
        "format": FORMAT,
        "dataset": folds["dataset"],
        "scheme": folds["scheme"],
        "spec": _spec_dict(spec),
        "parts": parts,
        "clips": dict(sorted(clips.items())),
        "folds": fold_index,
        "skipped": skipped,
    }


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _some(ids: Sequence[str], limit: int = 5) -> str:
    """``'a', 'b', ... (12 in all)``: a few ids for a message."""
    shown = ", ".join(repr(i) for i in sorted(ids)[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


class ShardIndex:
    """The ``index.json`` of a shard directory, with the helpers the readers need.

    Loading checks that the index agrees with itself and with the directory: every clip's
    shard is listed with the number of clips that point to it, and every tar in the
    directory is listed. Each tar's content is checked against the index when it is read
    (:func:`iter_shard`).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        path = self.directory / INDEX
        if not path.is_file():
            raise UserError(f"{path}: shard index not found. Run the shards stage first.")
        try:
            self.data = read_json(path)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if self.data.get("format") != FORMAT:
            raise UserError(f"{path}: unknown index format; re-run the shards stage")
        self.keys: dict[str, list[str]] = {}  # shard name -> its clip ids
        for clip, entry in self.data["clips"].items():
            self.keys.setdefault(entry["shard"], []).append(clip)
        listed = {s["name"]: s["clips"] for p in self.data["parts"].values() for s in p["shards"]}
        on_disk = {p.name for p in self.directory.glob("*.tar")}
        for name in sorted(set(self.keys) | set(listed) | on_disk):
            n = len(self.keys.get(name, []))
            if name not in listed or listed[name] != n:
                raise CorruptShardError(
                    f"{path} does not agree with its tars: shard {name} is "
                    + (f"listed with {listed[name]} clips" if name in listed else "not listed")
                    + f", {n} clips point to it"
                    + ("" if name in on_disk else " (and it is not in the directory)")
                    + "; re-run the shards stage"
                )

    @property
    def folds(self) -> list[str]:
        return list(self.data["folds"])

    def ids(self, fold: str | int, split: str) -> list[str]:
        """Clip ids of a fold's ``train``, ``val`` or ``test`` split (``all``: every clip)."""
        if split == "all":
            return list(self.data["clips"])
        fold = str(fold)
        if fold not in self.data["folds"]:
            raise UserError(f"{self.directory}: no fold {fold!r} (folds: {', '.join(self.folds)})")
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val, test or all, got {split!r}")
        ids = list(self.data["folds"][fold][split])
        unknown = [c for c in ids if c not in self.data["clips"]]
        if unknown or len(set(ids)) != len(ids):
            raise CorruptShardError(
                f"{self.directory / INDEX}: fold {fold} {split} names "
                + (f"clips no shard holds: {_some(unknown)}" if unknown else "a clip twice")
                + "; re-run the shards stage"
            )
        return ids

    def label(self, clip_id: str) -> int:
        return int(self.data["clips"][clip_id]["label"])

    def shards_for(self, ids: Sequence[str]) -> list[tuple[Path, tuple[str, ...]]]:
        """(path, the clip ids the index puts in it) of every shard holding one of ``ids``,
        in index order."""
        wanted = {self.data["clips"][c]["shard"] for c in ids}
        return [
            (self.directory / s["name"], tuple(self.keys[s["name"]]))
            for part in self.data["parts"].values()
            for s in part["shards"]
            if s["name"] in wanted
        ]


_BLOCK = 512
_REGULAR = (b"0", b"\0", b"7")


def _octal(field: bytes) -> int:
    """A numeric tar header field: octal text, or GNU base-256 for large values."""
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_records(data: bytes) -> dict[str, str]:
    records, pos = {}, 0
    while pos < len(data):
        length = int(data[pos : data.index(b" ", pos)])
        key, _, value = data[data.index(b" ", pos) + 1 : pos + length - 1].partition(b"=")
        records[key.decode()] = value.decode("utf-8", "replace")
        pos += length
    return records


def tar_members(fh: Any, path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, data) of the regular files of a tar stream: ustar, GNU and pax headers.

    A small pure-Python reader (about 30x less work per member than ``tarfile``, which
    dominates the reading time of small JPEG members). Every header's checksum is verified;
    a short read or a bad checksum raises :class:`CorruptShardError` naming the shard.
    """
    pax: dict[str, str] = {}
    longname: str | None = None
    while True:
        header = fh.read(_BLOCK)
        if not header or header == bytes(_BLOCK):
            return  # end of archive (end blocks are optional, as for tarfile)
        if len(header) < _BLOCK:
            raise CorruptShardError(f"shard {path}: truncated tar header; re-run the shards stage")
        try:
            checksum = _octal(header[148:156])
            size = _octal(header[124:136])
        except ValueError:
            checksum, size = -1, 0
        if checksum != sum(header) - sum(header[148:156]) + 256:  # the field counts as spaces
            raise CorruptShardError(
                f"shard {path}: bad tar header (checksum) at byte {fh.tell() - _BLOCK}; "
                "the shard is corrupt, re-run the shards stage"
            )
        data = fh.read(size)
        if len(data) < size:
            raise CorruptShardError(
                f"shard {path}: truncated, member needs {size} bytes, {len(data)} left; "
                "re-run the shards stage"
            )
        fh.seek((-size) % _BLOCK, 1)  # skip the padding to the next block
        kind = header[156:157]
        if kind == b"x":
            pax = _pax_records(data)
            continue
        if kind == b"L":
            longname = data.split(b"\0", 1)[0].decode()
            continue
        if kind not in _REGULAR:  # directories, links, global pax headers
            pax, longname = {}, None
            continue
        name = header[:100].split(b"\0", 1)[0].decode()
        prefix = header[345:500].split(b"\0", 1)[0].decode() if header[257:262] == b"ustar" else ""
        name = pax.get("path") or longname or (f"{prefix}/{name}" if prefix else name)
        pax, longname = {}, None
        yield (name[2:] if name.startswith("./") else name), data


_MEMBERS = ("json", "cls", "mjpeg")  # the members of one clip sample


def _group_members(files: Iterator[tuple[str, bytes]], path: Path) -> Iterator[dict[str, Any]]:
    """Group tar members into samples by key.

    A sample is yielded as soon as it has its JSON, label and frames, so tars whose members
    are not contiguous (e.g. re-packed by ``tar`` in directory order) read as well as our own.
    Files that are none of a clip's members (a README added to a tar) are ignored; a clip
    with some but not all of its members means a truncated or damaged shard.
    """
    pending: dict[str, dict[str, Any]] = {}
    for fname, data in files:
        prefix, suffix = wds.tariterators.base_plus_ext(fname)
        if prefix is None:
            continue
        suffix = suffix.lower()
        if suffix not in _MEMBERS:
            continue
        key = prefix.rsplit("/", 1)[-1]
        sample = pending.setdefault(key, {"__key__": key, "__url__": str(path)})
        if suffix in sample:
            raise CorruptShardError(f"shard {path}: member {fname} appears twice")
        sample[suffix] = data
        if len(sample) == 2 + len(_MEMBERS):
            yield pending.pop(key)
    for key, sample in pending.items():
        missing = ", ".join(f"{key}.{m}" for m in _MEMBERS if m not in sample)
        raise CorruptShardError(
            f"shard {path}: clip {key!r} is incomplete ({missing} missing; truncated shard); "
            "re-run the shards stage"
        )


def iter_shard(path: str | Path, expected: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Raw samples of one tar (ours or re-packed by any tar-compatible tool); errors name it.

    Args:
        path: the tar file.
        expected: the clip ids the index puts in it. A clip it does not list, a clip read
            twice or one missing at the end (a truncated or altered shard) is an error.

    Yields:
        dicts with ``__key__``, ``__url__`` and one bytes entry per member suffix.
    """
    path = Path(path)
    want = None if expected is None else set(expected)
    seen: set[str] = set()
    try:
        with open(path, "rb") as fh:
            for sample in _group_members(tar_members(fh, path), path):
                key = sample["__key__"]
                if key in seen or (want is not None and key not in want):
                    raise CorruptShardError(
                        f"shard {path}: holds clip {key!r} "
                        + ("twice" if key in seen else "that index.json does not put in it")
                        + "; re-run the shards stage"
                    )
                seen.add(key)
                yield sample
    except CorruptShardError:
        raise
    except FileNotFoundError:
        raise CorruptShardError(f"shard {path}: not found; re-run the shards stage") from None
    except Exception as exc:  # tarfile/EOF/format errors of any kind, named by shard
        raise CorruptShardError(
            f"shard {path}: corrupt or truncated ({type(exc).__name__}: {exc}); "
            "re-run the shards stage"
        ) from exc
    if want is not None and want - seen:
        raise CorruptShardError(
            f"shard {path}: truncated or altered, {len(seen)} of the {len(want)} clips "
            f"index.json puts in it read; missing {_some(want - seen)}; re-run the shards stage"
        )


def frame_jpegs(sample: dict[str, Any]) -> list[memoryview]:
    """The JPEG bytes of every stored frame of a raw sample, in frame order.

    Raises:
        CorruptShardError: the JSON does not describe the ``.mjpeg`` member (names the shard).
    """
    key, url = sample["__key__"], sample.get("__url__", "?")
    try:
        lengths = [int(n) for n in json.loads(sample["json"])["frame_bytes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptShardError(
            f"shard {url}: {key}.json has no valid frame_bytes ({exc}); re-run the shards stage"
        ) from None
    blob = memoryview(sample["mjpeg"])
    if not lengths or min(lengths) <= 0 or sum(lengths) != len(blob):
        raise CorruptShardError(
            f"shard {url}: {key}.mjpeg holds {len(blob)} bytes, its JSON lists "
            f"{len(lengths)} frames of {sum(lengths)}; re-run the shards stage"
        )
    ends = list(itertools.accumulate(lengths))
    return [blob[e - n : e] for e, n in zip(ends, lengths, strict=True)]


def _clip_rng(seed: int, epoch: int, key: str, stream: int) -> np.random.Generator:
    """A clip's own generator: the same whichever rank/worker reads it (stream 0: oversampling
    draw, stream r + 1: sampling and augmentation of the r-th copy)."""
    return np.random.default_rng([seed, epoch, zlib.crc32(key.encode()), stream])


RING_SLOTS = 16  # most reusable batch buffers per worker process (more in flight: fresh ones)


class BatchRing:
    """Reusable shared-memory batch buffers of the DataLoader worker processes.

    A worker process that writes every batch into a fresh shared-memory block pays for
    creating, zero-filling and faulting in its pages, and the main process for receiving its
    file descriptor and mapping it (together ≈ 0.4 ms per clip of 16 × 128² frames, a third
    of the clip's decode). Instead each worker keeps up to :data:`RING_SLOTS` blocks and
    writes a batch into one that is free. A block travels to the main process once (as a
    tensor, the first time its slot is used); after that a batch is sent as its slot and
    shape only, and the main process views its own mapping of the block.

    A slot is busy from the moment a worker takes it until the main process holds no tensor,
    view or array of that batch any more (each batch handed out is its own storage over the
    block, so a weak reference to it tells); only then is it free again. A batch the user
    keeps is therefore never overwritten: with every slot busy the worker uses a fresh
    block. The workers are persistent, so blocks and flags outlive an epoch; batches of an
    epoch broken off that the main process dropped unseen are reclaimed by their worker when
    the next epoch starts (:meth:`recover`).

    ``flags`` (workers, slots) uint8 lives in shared memory: ``FREE``, ``TAKEN`` (written by
    a worker, not yet received) or ``HELD`` (received by the main process). It is made in the
    main process before the workers start; ``storages``/``announced`` are each worker's own,
    ``blocks``/``pending`` the main process's.
    """

    FREE, TAKEN, HELD = 0, 1, 2

    def __init__(self, workers: int, slots: int = RING_SLOTS) -> None:
        self.flags = torch.zeros((workers, slots), dtype=torch.uint8).share_memory_()
        self.storages: dict[int, torch.UntypedStorage] = {}  # (worker) slot -> block
        self.announced: set[int] = set()  # (worker) slots whose block the main process has
        self.blocks: dict[tuple[int, int], np.ndarray] = {}  # (main) (worker, slot) -> block
        self.pending: list[tuple[Any, int, int]] = []  # (main) (weak ref, worker, slot)

    def take(self, worker: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, int]:
        """(Worker) an uninitialised uint8 tensor of ``shape`` and its slot (-1: fresh)."""
        numel = math.prod(shape)
        busy = self.flags.numpy()[worker]
        free = np.flatnonzero(busy == self.FREE)
        slot = -1
        if free.size:
            # a free slot whose block is big enough, else the lowest free one (grown)
            blocks = self.storages
            fits = [k for k in free.tolist() if k in blocks and blocks[k].nbytes() >= numel]
            slot = fits[0] if fits else int(free[0])
            if not fits:
                self.storages[slot] = torch.UntypedStorage._new_shared(numel)
                self.announced.discard(slot)
            busy[slot] = self.TAKEN
            storage = self.storages[slot]
        else:
            storage = torch.UntypedStorage._new_shared(numel)
        return torch.empty(0, dtype=torch.uint8).set_(storage, 0, shape), slot

    def recover(self, worker: int) -> None:
        """(Worker, at the start of an epoch) free the slots of batches the main process never
        received (dropped when an epoch is broken off); their blocks travel again."""
        busy = self.flags.numpy()[worker]
        for slot in np.flatnonzero(busy == self.TAKEN).tolist():
            busy[slot] = self.FREE
            self.announced.discard(slot)

    def pack(self, worker: int, slot: int, tensor: torch.Tensor) -> tuple[tuple, Any]:
        """(Worker) what to send for a batch tensor: ``(tag, tensor or None)``."""
        tag = (worker, slot, tuple(tensor.shape))
        if slot >= 0 and slot in self.announced:
            return tag, None  # the main process has the block: slot and shape suffice
        self.announced.add(slot)
        return tag, tensor

    def unpack(self, tag: tuple, tensor: torch.Tensor | None) -> torch.Tensor:
        """(Main) the batch tensor of a :meth:`pack`; frees the slots of batches let go of."""
        self.release_expired()
        worker, slot, shape = tag
        if slot < 0:
            return tensor
        self.flags.numpy()[worker, slot] = self.HELD
        if tensor is not None:  # a new block: keep this process's mapping of it
            whole = torch.empty(0, dtype=torch.uint8).set_(tensor.untyped_storage())
            self.blocks[worker, slot] = whole.numpy()
        numel = math.prod(shape)
        # a storage of its own over the block, so that its weak reference tells when the
        # last tensor, view or array of this batch is gone
        batch = torch.frombuffer(self.blocks[worker, slot][:numel], dtype=torch.uint8)
        batch = batch.view(shape)
        self.pending.append((StorageWeakRef(batch.untyped_storage()), worker, slot))
        return batch

    def release_expired(self) -> None:
        """(Main) free the slots of batches nothing in this process holds any more."""
        flags, still = self.flags.numpy(), []
        for ref, worker, slot in self.pending:
            if ref.expired():
                flags[worker, slot] = self.FREE
            else:
                still.append((ref, worker, slot))
        self.pending = still


def repeat_factors(labels: Sequence[int]) -> dict[int, float]:
    """Class-balanced oversampling (NR-DFERNet*): class c is drawn max_count / count_c times."""
    counts = Counter(int(y) for y in labels)
    top = max(counts.values())
    return {c: top / n for c, n in counts.items()}


@dataclass
class _ClipPlan:
    """What a batch needs of one clip before decoding: see :meth:`ClipStream._plan`."""

    key: str
    url: str
    jpegs: list[memoryview]
    positions: dict[int, list[int]]  # stored frame index -> its places among the T
    label: int
    rng: np.random.Generator | None

    def decode(self, i: int) -> np.ndarray:
        """Stored frame ``i`` as uint8 RGB (H, W, 3)."""
        image = cv2.imdecode(np.frombuffer(self.jpegs[i], np.uint8), cv2.IMREAD_COLOR_RGB)
        if image is None:
            raise CorruptShardError(f"shard {self.url}: frame {i} of {self.key!r} does not decode")
        return image

    def frames(self, first: np.ndarray) -> Iterator[tuple[np.ndarray, list[int]]]:
        """(frame, its places) in stored order, one decoded frame alive at a time;
        ``first`` is the already decoded lowest-index frame."""
        for n, (i, ts) in enumerate(sorted(self.positions.items())):
            frame = first if n == 0 else self.decode(i)
            if frame.shape != first.shape:
                raise CorruptShardError(
                    f"shard {self.url}: frame {i} of {self.key!r} is {frame.shape[1]}x"
                    f"{frame.shape[0]}, its first frame {first.shape[1]}x{first.shape[0]}; "
                    "re-run the shards stage"
                )
            yield frame, ts


class ClipStream(IterableDataset):
    """Iterable over batches of one fold split; builds its WebDataset pipeline per epoch.

    Shards (and, with fewer shards than readers, samples) are divided between DDP ranks and
    DataLoader workers so that each clip is read by exactly one of them. Training order is
    a function of (seed, epoch) only, the same on CPU for any run.
    """

    def __init__(
        self,
        index: ShardIndex,
        ids: Sequence[str],
        data: DataParams,
        *,
        train: bool,
        seed: int,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        warp_later: bool = False,
        name: str = "the requested clips",
    ) -> None:
        super().__init__()
        if not ids:
            raise UserError(f"{index.directory}: the requested split has no clips")
        self.name = f"{index.directory}: {name}"  # for messages
        self.ids = frozenset(ids)
        self.shards = index.shards_for(sorted(self.ids))
        self.data = data
        self.train = train
        self.seed = seed
        self.epoch = epoch
        self.rank = rank
        self.world_size = world_size
        self.warp_later = warp_later and train  # training augmentation after batching
        self.threads = 0  # thread workers decoding batches ahead (set by ClipLoader; 0: inline)
        self.ring: BatchRing | None = None  # worker processes' buffers (set by ClipLoader)
        self.shared_epoch: torch.Tensor | None = None  # the epoch, seen by persistent workers
        self.augment = ClipAugment(
            size=data.size,
            crop_area=data.crop_area,
            crop_aspect=data.crop_aspect,
            flip_p=data.flip_p,
            brightness=data.brightness,
            rotation=data.rotation,
        )
        self.factors = (
            repeat_factors([index.label(c) for c in ids]) if train and data.balanced else None
        )
        self.labels = {c: index.label(c) for c in ids}
        self.num_clips = (
            int(round(sum(self.factors[y] for y in self.labels.values())))
            if self.factors
            else len(self.ids)
        )

    def expected_counts(self) -> Counter | None:
        """How often each clip id arrives in one epoch (with oversampling: its copies), or
        None where that is not fixed (DDP ranks, shards drawn with replacement)."""
        if self.world_size > 1 or (self.train and self.data.resampled):
            return None
        return Counter({key: sum(1 for _ in self._repeat([{"__key__": key}])) for key in self.ids})

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.shared_epoch is not None:
            self.shared_epoch[0] = epoch

    def _slot(self) -> tuple[int, int]:
        info = get_worker_info()  # (worker processes inherit one OpenCV thread: ClipLoader)
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def _raw(self, slot: int, slots: int) -> Iterator[dict[str, Any]]:
        shards = list(self.shards)
        if self.train and self.data.resampled:
            rng = random.Random(zlib.crc32(f"{self.seed}/{self.epoch}/{slot}".encode()))
            while True:
                path, keys = shards[rng.randrange(len(shards))]
                yield from (s for s in iter_shard(path, keys) if s["__key__"] in self.ids)
        if self.train:  # the same permutation on every rank and worker
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
            shards = [shards[i] for i in order]
        if len(shards) >= slots:
            for path, keys in shards[slot::slots]:
                yield from (s for s in iter_shard(path, keys) if s["__key__"] in self.ids)
        else:  # fewer shards than readers: everyone reads all, keeps every slots-th clip
            i = 0
            for path, keys in shards:
                for sample in iter_shard(path, keys):
                    if sample["__key__"] in self.ids:
                        if i % slots == slot:
                            yield sample
                        i += 1

    def _repeat(self, samples: Iterator[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], int]]:
        for sample in samples:
            repeats = 1
            if self.factors is not None:
                factor = self.factors[self.labels[sample["__key__"]]]
                draw = _clip_rng(self.seed, self.epoch, sample["__key__"], 0).random()
                repeats = int(factor) + int(draw < factor - int(factor))
            for r in range(repeats):
                yield sample, r

    def _buffer(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray, int]:
        """An uninitialised uint8 batch: in a worker process a (reused) shared-memory block,
        so that handing it to the main process copies nothing; returns (tensor, its numpy
        view, ring slot or -1)."""
        info = get_worker_info()
        if info is None:
            tensor, slot = torch.empty(shape, dtype=torch.uint8), -1
        elif self.ring is not None:
            tensor, slot = self.ring.take(info.id, shape)
        else:
            storage = torch.UntypedStorage._new_shared(math.prod(shape))
            tensor, slot = torch.empty(0, dtype=torch.uint8).set_(storage, 0, shape), -1
        return tensor, tensor.numpy(), slot

    def _plan(self, sample: dict[str, Any], repeat: int) -> _ClipPlan:
        """A clip's stored JPEGs, its T = U·V sampled frame indices (§3.2) and its label."""
        key, url = sample["__key__"], sample.get("__url__", "?")
        rng = None
        if self.train:
            rng = _clip_rng(self.seed, self.epoch, key, repeat + 1)
        jpegs = frame_jpegs(sample)
        idx = sample_indices(len(jpegs), self.data.U, self.data.V, train=self.train, rng=rng)
        try:
            label = int(sample["cls"])
        except ValueError:
            raise CorruptShardError(f"shard {url}: {key}.cls is not a label") from None
        positions: dict[int, list[int]] = {}
        for t, i in enumerate(idx.tolist()):
            positions.setdefault(i, []).append(t)
        return _ClipPlan(key, url, jpegs, positions, label, rng)

    def _batch(self, items: list[tuple[dict[str, Any], int]]):
        """Decode a batch straight into one (shared-memory) buffer, a frame at a time.

        Each sampled frame is decoded, written (warped, resized or as it is) to its places
        in the batch and let go, so a batch never holds its decoded frames all at once
        (that heap churn cost a page fault per 4 KiB of frames in every batch).

        Returns ``(clips, labels, keys)`` (in a worker process with a :class:`BatchRing`,
        packed by :meth:`_tagged`); with ``warp_later``, ``(frames, labels, keys,
        maps, brightness)``: the decoded frames uint8 (B, T, H, W, 3) (zero-padded to the
        largest frame of the batch), the source->output pixel maps float64 (B, 2, 3) and the
        brightness factors float64 (B,), for :func:`~nrdfer.data.transforms.warp_batch`.
        """
        size = self.data.size
        plans = [self._plan(sample, repeat) for sample, repeat in items]
        firsts = [plan.decode(min(plan.positions)) for plan in plans]  # sizes, RNG order
        labels = torch.tensor([plan.label for plan in plans], dtype=torch.int64)  # (B,)
        keys = [plan.key for plan in plans]
        B, T = len(items), self.data.U * self.data.V
        if self.warp_later:
            heights = [f.shape[0] for f in firsts]
            widths = [f.shape[1] for f in firsts]
            batch, out, slot = self._buffer((B, T, max(heights), max(widths), 3))  # (B,T,H,W,3)
            if len(set(heights)) > 1 or len(set(widths)) > 1:
                out.fill(0)  # black padding: to the warp it is outside the frame
            maps, factors = np.empty((B, 2, 3)), np.empty(B)
            for b, (plan, first) in enumerate(zip(plans, firsts, strict=True)):
                h, w = first.shape[:2]
                p = draw_clip_params(h, w, self.augment, plan.rng)
                maps[b], factors[b] = clip_affine(p, size), p.brightness
                for frame, ts in plan.frames(first):
                    for t in ts:
                        out[b, t, :h, :w] = frame
            result = (batch, labels, keys, torch.from_numpy(maps), torch.from_numpy(factors))
            return self._tagged(slot, result)
        batch, out, slot = self._buffer((B, T, 3, size, size))  # (B, T, 3, S, S)
        tmp = np.empty((size, size, 3), np.uint8)  # the warp's interleaved scratch frame
        for b, (plan, first) in enumerate(zip(plans, firsts, strict=True)):
            if self.train:
                p = draw_clip_params(*first.shape[:2], self.augment, plan.rng)
                matrix = clip_affine(p, size)
            for frame, ts in plan.frames(first):
                if self.train:
                    warp_frame_into(frame, matrix, p.brightness, out[b, ts[0]], tmp)
                else:
                    resize_frame_into(frame, out[b, ts[0]])
                for t in ts[1:]:  # a frame sampled twice (clips shorter than T)
                    out[b, t] = out[b, ts[0]]
        return self._tagged(slot, (batch, labels, keys))

    def _tagged(self, slot: int, batch: tuple) -> tuple:
        """In a worker process with a ring: ``(tag, batch tensor or None, *the rest)`` for
        :meth:`BatchRing.unpack` in the main process (the rest as numpy arrays)."""
        info = get_worker_info()
        if self.ring is None or info is None:
            return batch
        tag, tensor = self.ring.pack(info.id, slot, batch[0])
        # the small tensors travel as numpy arrays, pickled by value, where a tensor would
        # cost a shared-memory block and a file-descriptor hand-over each
        small = (x.numpy() if isinstance(x, torch.Tensor) else x for x in batch[1:])
        return (tag, tensor, *small)

    def __iter__(self):
        if self.shared_epoch is not None:  # a persistent worker's copy learns the epoch here
            self.epoch = int(self.shared_epoch[0])
        info = get_worker_info()
        if self.ring is not None and info is not None:
            self.ring.recover(info.id)
        slot, slots = self._slot()
        stream = self._repeat(self._raw(slot, slots))
        if self.train:
            rng = random.Random(zlib.crc32(f"shuffle/{self.seed}/{self.epoch}/{slot}".encode()))
            bufsize = max(1, self.data.shuffle_buffer)
            stream = wds.shuffle(bufsize, min(bufsize, 64), rng=rng)(stream)
        if self.train and self.data.resampled:  # a fixed quota per reader: equal batches per rank
            quota = math.ceil(self.num_clips / slots)
            stream = (item for _, item in zip(range(quota), stream, strict=False))
        chunks = _chunked(stream, self.data.batch_size)
        if self.threads <= 0:
            yield from map(self._batch, chunks)
            return
        # thread workers: batches decoded ahead by a pool (cv2 releases the GIL), yielded in
        # stream order, so the result does not depend on the number of threads; one OpenCV
        # thread each while they run (the threads are the parallelism)
        with (
            _one_opencv_thread(),
            ThreadPoolExecutor(self.threads, thread_name_prefix="nrdfer-loader") as pool,
        ):
            ahead: deque = deque()
            try:
                for items in chunks:
                    ahead.append(pool.submit(self._batch, items))
                    if len(ahead) >= 2 * self.threads:
                        yield ahead.popleft().result()
                while ahead:
                    yield ahead.popleft().result()
            finally:
                for future in ahead:  # the consumer stopped early or a batch failed
                    future.cancel()


@contextmanager
def _one_opencv_thread() -> Iterator[None]:
    """OpenCV on one thread inside the block (loader workers are the parallelism)."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _chunked(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _as_is(batch: Any) -> Any:
    return batch


class ClipLoader(DataLoader):
    """A DataLoader over a :class:`ClipStream` (batching happens in the workers).

    With ``warp_device`` set, the workers decode and draw, and each batch is augmented here,
    after batching, on that device (:func:`~nrdfer.data.transforms.warp_batch`); the
    batches it yields then already live on the device.
    """

    def __init__(
        self, stream: ClipStream, workers: int, kind: str, warp_device: torch.device | None
    ) -> None:
        if kind not in ("process", "thread"):
            raise ValueError(f"worker_kind must be process or thread, got {kind!r}")
        processes = workers if kind == "process" else 0
        stream.threads = workers if kind == "thread" else 0
        if processes > 0:
            # persistent workers keep their batch blocks (and skip a fork per epoch); they
            # learn each epoch from shared memory, as their copy of the stream is their own
            stream.ring = BatchRing(processes)
            stream.shared_epoch = torch.tensor([stream.epoch], dtype=torch.int64).share_memory_()
        super().__init__(
            stream,
            batch_size=None,
            collate_fn=_as_is,  # not default_convert: the workers' numpy arrays stay arrays
            num_workers=processes,
            persistent_workers=processes > 0,
            prefetch_factor=4 if processes > 0 else None,
        )
        self.warp_device = warp_device

    @property
    def ring(self) -> BatchRing | None:
        """The worker processes' batch blocks (None without worker processes)."""
        return self.dataset.ring

    def __iter__(self):
        if self.num_workers > 0:
            # The worker processes fork here (first epoch) and inherit one OpenCV thread
            # each. Setting it inside a forked worker instead deadlocks once this process has
            # used OpenCV's thread pool (e.g. the CPU warp of augment_on: device).
            with _one_opencv_thread():
                batches = self._untagged(super().__iter__(), self.ring)
        else:
            batches = super().__iter__()
        return self._checked(batches if self.warp_device is None else self._warped(batches))

    def _checked(self, batches):
        """The batches; at the end of the epoch, a CorruptShardError unless every requested
        clip arrived exactly once (its oversampled copies, when balanced)."""
        expected = self.dataset.expected_counts()
        seen: Counter = Counter()
        try:
            for batch in batches:
                seen.update(str(k) for k in batch[2])
                yield batch
        except UserError as exc:  # from a worker process: torch puts its traceback in front
            text = str(exc)
            if not text.startswith("Caught ") or "Original Traceback" not in text:
                raise
            last = text.strip().splitlines()[-1]
            raise type(exc)(last.split(": ", 1)[-1]) from None
        if expected is not None and seen != expected:
            wrong = {
                "missing": [k for k in expected if k not in seen],
                "unexpected": [k for k in seen if k not in expected],
                "repeated": [k for k in expected if 0 < seen[k] != expected[k]],
            }
            raise CorruptShardError(
                f"{self.dataset.name} did not arrive exactly once: "
                + "; ".join(f"{what} {_some(ids)}" for what, ids in wrong.items() if ids)
                + "; re-run the shards stage"
            )

    @staticmethod
    def _untagged(batches, ring: BatchRing):
        """The batches of :meth:`ClipStream._tagged` as tensors, viewed in the ring's blocks."""
        for tagged in batches:
            tag, tensor, small = tagged[0], tagged[1], tagged[2:]
            del tagged
            first = ring.unpack(tag, tensor)
            del tensor
            batch = (first, *small)
            yield tuple(torch.from_numpy(x) if isinstance(x, np.ndarray) else x for x in batch)
            del batch, first

    def _warped(self, batches):
        device, size = self.warp_device, self.dataset.data.size
        for frames, labels, keys, maps, factors in batches:
            clips = warp_batch(frames.to(device, non_blocking=True), maps, factors, size)
            del frames  # (B, T, H, W, 3) uint8: its ring slot can be reused
            yield clips, labels, keys  # (B, T, 3, S, S)

    def set_epoch(self, epoch: int) -> None:
        """Re-seed sampling, augmentation and shuffling for ``epoch`` (call before iterating)."""
        self.dataset.set_epoch(epoch)

    @property
    def num_clips(self) -> int:
        """Clips one epoch yields over all ranks (after oversampling when balanced)."""
        return self.dataset.num_clips


def augment_device(augment_on: str, device: torch.device | str | None) -> torch.device | None:
    """Where the training augmentation runs: ``None`` (in the loader) or the device to warp on.

    ``auto`` warps on the training device when it is an accelerator and in the loader on CPU;
    ``device`` warps on the training device (CPU included); ``loader`` never defers.
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    if augment_on == "loader" or (augment_on == "auto" and device.type == "cpu"):
        return None
    if augment_on in ("auto", "device"):
        return device
    raise ValueError(f"augment_on must be auto, loader or device, got {augment_on!r}")


def train_loader(
    shard_dir: str | Path,
    fold: str | int,
    data: DataParams,
    *,
    seed: int,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int | None = None,
    device: torch.device | str | None = None,
) -> ClipLoader:
    """Shuffled, augmented training batches of a fold (random U x V sampling, §3.2).

    Deterministic for (seed, epoch) on CPU. ``data.balanced`` oversamples rare classes;
    ``data.resampled`` draws shards with replacement so every rank yields the same number
    of batches (use it for DDP training). ``data.augment_on`` says where the augmentation's
    per-pixel work runs: in the loader, or after batching on ``device`` (the training
    device; the batches then arrive on it). Call ``loader.set_epoch(e)`` before each epoch.
    """
    index = ShardIndex(shard_dir)
    warp = augment_device(data.augment_on, device)
    stream = ClipStream(
        index,
        index.ids(fold, "train"),
        data,
        train=True,
        seed=seed,
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        warp_later=warp is not None,
        name=f"fold {fold} train split",
    )
    workers = data.num_workers if num_workers is None else num_workers
    return ClipLoader(stream, workers, data.worker_kind, warp)


def eval_loader(
    shard_dir: str | Path,
    fold: str | int,
    data: DataParams,
    *,
    split: str = "test",
    rank: int = 0,
    world_size: int = 1,
    num_workers: int | None = None,
) -> ClipLoader:
    """Deterministic batches of a fold's ``test`` or ``val`` split (centred sampling, resize).

    Every clip comes exactly once over all workers; with ``world_size > 1`` each rank gets a
    disjoint subset and together they cover the split once (gather the predictions).
    """
    index = ShardIndex(shard_dir)
    stream = ClipStream(
        index,
        index.ids(fold, split),
        data,
        train=False,
        seed=0,
        rank=rank,
        world_size=world_size,
        name=f"fold {fold} {split} split",
    )
    workers = data.num_workers if num_workers is None else num_workers
    return ClipLoader(stream, workers, data.worker_kind, None)
