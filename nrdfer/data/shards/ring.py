"""Reusable shared-memory batch buffers of the DataLoader worker processes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.multiprocessing.reductions import StorageWeakRef

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
