"""The loaders: a DataLoader over a clip stream, checked, for training and evaluation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from nrdfer.data.shards.format import CorruptShardError, some_ids
from nrdfer.data.shards.index import ShardIndex
from nrdfer.data.shards.ring import BatchRing
from nrdfer.data.shards.stream import ClipStream, one_opencv_thread
from nrdfer.data.transforms import warp_batch
from nrdfer.errors import UserError
from nrdfer.params import DataParams


def _as_is(batch: Any) -> Any:
    return batch


class ClipLoader(DataLoader):
    """A DataLoader over a :class:`ClipStream` (batching happens in the workers).

    With ``warp_device`` set, the workers decode and draw, and each batch is augmented here,
    after batching, on that device (:func:`~nrdfer.data.transforms.warp_batch`); the
    batches it yields then already live on the device.
    """

    def __init__(self, stream: ClipStream, workers: int, warp_device: torch.device | None) -> None:
        processes = workers
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
            with one_opencv_thread():
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
                + "; ".join(f"{what} {some_ids(ids)}" for what, ids in wrong.items() if ids)
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
    return ClipLoader(stream, workers, warp)


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
    return ClipLoader(stream, workers, None)
