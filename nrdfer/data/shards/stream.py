"""The clip stream: shards of a fold split -> decoded, sampled, augmented batches."""

from __future__ import annotations

import math
import random
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from nrdfer.data.sampling import sample_indices
from nrdfer.data.shards.format import CorruptShardError, check_frame, checked_clip
from nrdfer.data.shards.index import ShardIndex
from nrdfer.data.shards.reading import iter_shard
from nrdfer.data.shards.ring import BatchRing
from nrdfer.data.transforms import (
    ClipAugment,
    clip_affine,
    draw_clip_params,
    resize_frame_into,
    warp_frame_into,
)
from nrdfer.errors import UserError
from nrdfer.params import DataParams


def _clip_rng(seed: int, epoch: int, key: str, stream: int) -> np.random.Generator:
    """A clip's own generator: the same whichever rank/worker reads it (stream 0: oversampling
    draw, stream r + 1: sampling and augmentation of the r-th copy)."""
    return np.random.default_rng([seed, epoch, zlib.crc32(key.encode()), stream])


def repeat_factors(labels: Sequence[int], epoch_size: str = "largest_class") -> dict[int, float]:
    """Class-balanced sampling (NR-DFERNet*): how many times, on average, one clip of class c
    is drawn per epoch, so that every class contributes equally.

    ``epoch_size``: ``largest_class``: every class as often as the largest one (``max_count /
    count_c``; the epoch grows, each clip at least once); ``dataset``: the epoch keeps the
    training set's size (``N / (K * count_c)``: clips of large classes are drawn less than once,
    rare ones more; the paper's "reduce the sampling of classes with a large proportion and
    increase the sampling of classes with a small proportion").
    """
    counts = Counter(int(y) for y in labels)
    if epoch_size == "dataset":
        per_class = sum(counts.values()) / len(counts)
        return {c: per_class / n for c, n in counts.items()}
    top = max(counts.values())
    return {c: top / n for c, n in counts.items()}


class FrameCache:
    """Decoded frames kept across epochs, keyed by (shard, clip, stored frame index), up to a
    byte limit (then nothing more is added: no eviction, so what is kept never churns).

    Decoding is deterministic, so a cached frame is the same bits as a fresh decode; its CRC-32
    was checked when it was first decoded. Frames are stored read-only. One per stream, so one
    per reader process (``data.num_workers`` processes hold one each)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.bytes = 0
        self.frames: dict[tuple[str, str, int], np.ndarray] = {}

    def get(self, where: tuple[str, str, int]) -> np.ndarray | None:
        return self.frames.get(where)

    def put(self, where: tuple[str, str, int], frame: np.ndarray) -> None:
        if self.bytes + frame.nbytes <= self.limit:
            frame.flags.writeable = False
            self.frames[where] = frame
            self.bytes += frame.nbytes


@dataclass
class _ClipPlan:
    """What a batch needs of one clip before decoding: see :meth:`ClipStream._plan`."""

    key: str
    url: str
    jpegs: list[memoryview]
    positions: dict[int, list[int]]  # stored frame index -> its places among the T
    label: int
    rng: np.random.Generator | None
    crcs: list[int] | None  # each stored frame's CRC-32 (None: not checked)
    cache: FrameCache | None = None

    def decode(self, i: int) -> np.ndarray:
        """Stored frame ``i`` as uint8 RGB (H, W, 3), its CRC-32 checked first (or, when the
        cache holds it, the frame decoded and checked before; read-only)."""
        if self.cache is not None:
            frame = self.cache.get((self.url, self.key, i))
            if frame is None:
                frame = self._decode(i)
                self.cache.put((self.url, self.key, i), frame)
            return frame
        return self._decode(i)

    def _decode(self, i: int) -> np.ndarray:
        if self.crcs is not None:
            check_frame(self.url, self.key, i, self.jpegs[i], self.crcs[i])
        try:
            image = cv2.imdecode(np.frombuffer(self.jpegs[i], np.uint8), cv2.IMREAD_COLOR_RGB)
        except cv2.error:  # a header claiming more pixels than OpenCV's limit
            image = None
        if image is None:
            raise CorruptShardError(
                f"shard {self.url}: frame {i} of {self.key!r} does not decode; "
                "re-run the shards stage"
            )
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
        verify: bool = True,
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
        self.verify = verify  # frame CRC-32s checked (off only to measure their cost)
        self.cache = (  # decoded frames kept across epochs (data.decode_cache_mb)
            FrameCache(data.decode_cache_mb << 20) if data.decode_cache_mb > 0 else None
        )
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
            repeat_factors([index.label(c) for c in ids], data.balanced_epoch)
            if train and data.balanced
            else None
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
        """A clip's stored JPEGs, its T = U·V sampled frame indices (§3.2) and its label
        (``.cls``, JSON and ``index.json`` must agree)."""
        key, url = sample["__key__"], sample.get("__url__", "?")
        rng = None
        if self.train:
            rng = _clip_rng(self.seed, self.epoch, key, repeat + 1)
        label = self.labels[key]
        jpegs, crcs = checked_clip(sample, label)
        idx = sample_indices(len(jpegs), self.data.U, self.data.V, train=self.train, rng=rng)
        positions: dict[int, list[int]] = {}
        for t, i in enumerate(idx.tolist()):
            positions.setdefault(i, []).append(t)
        crcs = crcs if self.verify else None
        return _ClipPlan(key, url, jpegs, positions, label, rng, crcs, self.cache)

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
        yield from map(self._batch, _chunked(stream, self.data.batch_size))


@contextmanager
def one_opencv_thread() -> Iterator[None]:
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
