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
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from nrdfer.data.frames import read_clip
from nrdfer.data.manifest import OK
from nrdfer.data.sampling import sample_indices
from nrdfer.data.transforms import (
    ClipAugment,
    augment_clip,
    clip_affine,
    draw_clip_params,
    resize_clip,
    warp_batch,
)
from nrdfer.errors import UserError
from nrdfer.io import read_json, write_json
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
    out.mkdir(parents=True, exist_ok=True)
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


class ShardIndex:
    """The ``index.json`` of a shard directory, with the helpers the readers need."""

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
        return list(self.data["folds"][fold][split])

    def label(self, clip_id: str) -> int:
        return int(self.data["clips"][clip_id]["label"])

    def shards_for(self, ids: Sequence[str]) -> list[tuple[Path, int]]:
        """(path, clip count) of every shard holding at least one of ``ids``, in index order."""
        wanted = {self.data["clips"][c]["shard"] for c in ids}
        return [
            (self.directory / s["name"], int(s["clips"]))
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
        if checksum != sum(header[:148]) + 256 + sum(header[156:]):
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


def iter_shard(path: str | Path, expected: int | None = None) -> Iterator[dict[str, Any]]:
    """Raw samples of one tar (ours or re-packed by any tar-compatible tool); errors name it.

    Args:
        path: the tar file.
        expected: clips the index lists for it; fewer read means a truncated shard.

    Yields:
        dicts with ``__key__``, ``__url__`` and one bytes entry per member suffix.
    """
    path = Path(path)
    count = 0
    try:
        with open(path, "rb") as fh:
            for sample in _group_members(tar_members(fh, path), path):
                count += 1
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
    if expected is not None and count < expected:
        raise CorruptShardError(
            f"shard {path}: truncated, {count} of {expected} clips read; re-run the shards stage"
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
    ends = np.cumsum(lengths).tolist()
    return [blob[e - n : e] for e, n in zip(ends, lengths, strict=True)]


def _clip_rng(seed: int, epoch: int, key: str, stream: int) -> np.random.Generator:
    """A clip's own generator: the same whichever rank/worker reads it (stream 0: oversampling
    draw, stream r + 1: sampling and augmentation of the r-th copy)."""
    return np.random.default_rng([seed, epoch, zlib.crc32(key.encode()), stream])


def decode_frames(
    sample: dict[str, Any], *, U: int, V: int, train: bool, rng: np.random.Generator | None
) -> tuple[list[np.ndarray], int, str]:
    """Sample T = U·V frame indices (§3.2) and decode only those frames.

    Returns:
        (T uint8 RGB frames (H, W, 3), label, clip id).
    """
    key, url = sample["__key__"], sample.get("__url__", "?")
    jpegs = frame_jpegs(sample)
    idx = sample_indices(len(jpegs), U, V, train=train, rng=rng)  # (T,)
    decoded: dict[int, np.ndarray] = {}
    for i in np.unique(idx).tolist():
        image = cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR_RGB)
        if image is None:
            raise CorruptShardError(f"shard {url}: frame {i} of {key!r} does not decode")
        decoded[i] = image
    try:
        label = int(sample["cls"])
    except ValueError:
        raise CorruptShardError(f"shard {url}: {key}.cls is not a label") from None
    return [decoded[i] for i in idx.tolist()], label, key


def _batch_buffer(shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray]:
    """An uninitialised uint8 batch, in shared memory inside a DataLoader worker so that
    handing it to the main process copies nothing (what torch's default_collate does)."""
    numel = math.prod(shape)
    if get_worker_info() is not None:
        storage = torch.UntypedStorage._new_shared(numel)
        tensor = torch.empty(0, dtype=torch.uint8).set_(storage, 0, shape)
    else:
        tensor = torch.empty(shape, dtype=torch.uint8)
    return tensor, tensor.numpy()


def repeat_factors(labels: Sequence[int]) -> dict[int, float]:
    """Class-balanced oversampling (NR-DFERNet*): class c is drawn max_count / count_c times."""
    counts = Counter(int(y) for y in labels)
    top = max(counts.values())
    return {c: top / n for c, n in counts.items()}


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
    ) -> None:
        super().__init__()
        if not ids:
            raise UserError(f"{index.directory}: the requested split has no clips")
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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _slot(self) -> tuple[int, int]:
        info = get_worker_info()  # (worker processes inherit one OpenCV thread: ClipLoader)
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def _raw(self, slot: int, slots: int) -> Iterator[dict[str, Any]]:
        shards = list(self.shards)
        if self.train and self.data.resampled:
            rng = random.Random(zlib.crc32(f"{self.seed}/{self.epoch}/{slot}".encode()))
            while True:
                path, n = shards[rng.randrange(len(shards))]
                yield from (s for s in iter_shard(path, n) if s["__key__"] in self.ids)
        if self.train:  # the same permutation on every rank and worker
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
            shards = [shards[i] for i in order]
        if len(shards) >= slots:
            for path, n in shards[slot::slots]:
                yield from (s for s in iter_shard(path, n) if s["__key__"] in self.ids)
        else:  # fewer shards than readers: everyone reads all, keeps every slots-th clip
            i = 0
            for path, n in shards:
                for sample in iter_shard(path, n):
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

    def _batch(self, items: list[tuple[dict[str, Any], int]]):
        """Decode a batch straight into one (shared-memory) buffer.

        Returns ``(clips, labels, keys)``; with ``warp_later``, ``(frames, labels, keys,
        maps, brightness)``: the decoded frames uint8 (B, T, H, W, 3) (zero-padded to the
        largest frame of the batch), the source->output pixel maps float64 (B, 2, 3) and the
        brightness factors float64 (B,), for :func:`~nrdfer.data.transforms.warp_batch`.
        """
        data, size = self.data, self.data.size
        decoded, rngs = [], []
        for sample, repeat in items:
            rng = None
            if self.train:
                rng = _clip_rng(self.seed, self.epoch, sample["__key__"], repeat + 1)
            decoded.append(decode_frames(sample, U=data.U, V=data.V, train=self.train, rng=rng))
            rngs.append(rng)
        labels = torch.tensor([y for _, y, _ in decoded], dtype=torch.int64)  # (B,)
        keys = [k for _, _, k in decoded]
        B, T = len(items), data.U * data.V
        if self.warp_later:
            heights = [frames[0].shape[0] for frames, _, _ in decoded]
            widths = [frames[0].shape[1] for frames, _, _ in decoded]
            batch, out = _batch_buffer((B, T, max(heights), max(widths), 3))  # (B, T, H, W, 3)
            if len(set(heights)) > 1 or len(set(widths)) > 1:
                out.fill(0)  # black padding: to the warp it is outside the frame
            maps, factors = np.empty((B, 2, 3)), np.empty(B)
            for b, ((frames, _, _), rng) in enumerate(zip(decoded, rngs, strict=True)):
                h, w = frames[0].shape[:2]
                p = draw_clip_params(h, w, self.augment, rng)
                maps[b], factors[b] = clip_affine(p, size), p.brightness
                for t, frame in enumerate(frames):
                    out[b, t, :h, :w] = frame
            return batch, labels, keys, torch.from_numpy(maps), torch.from_numpy(factors)
        batch, out = _batch_buffer((B, T, 3, size, size))  # (B, T, 3, S, S)
        for b, ((frames, _, _), rng) in enumerate(zip(decoded, rngs, strict=True)):
            if self.train:
                augment_clip(frames, self.augment, rng, out=out[b])
            else:
                resize_clip(frames, size, out=out[b])
        return batch, labels, keys

    def __iter__(self):
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
        super().__init__(
            stream,
            batch_size=None,
            num_workers=processes,
            persistent_workers=False,
            prefetch_factor=4 if processes > 0 else None,
        )
        self.warp_device = warp_device

    def __iter__(self):
        if self.num_workers > 0:
            # The worker processes fork here and inherit one OpenCV thread each. Setting it
            # inside a forked worker instead deadlocks once this process has used OpenCV's
            # thread pool (e.g. the CPU warp of augment_on: device).
            with _one_opencv_thread():
                batches = super().__iter__()
        else:
            batches = super().__iter__()
        return batches if self.warp_device is None else self._warped(batches)

    def _warped(self, batches):
        device, size = self.warp_device, self.dataset.data.size
        for frames, labels, keys, maps, factors in batches:
            frames = frames.to(device, non_blocking=True)  # (B, T, H, W, 3) uint8
            yield warp_batch(frames, maps, factors, size), labels, keys  # (B, T, 3, S, S)

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
    )
    workers = data.num_workers if num_workers is None else num_workers
    return ClipLoader(stream, workers, data.worker_kind, None)
