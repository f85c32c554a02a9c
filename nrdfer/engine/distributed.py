"""Multi-GPU / multi-node training through ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node=N stages/train.py ...`` starts N processes and sets the rendezvous
variables; :func:`init_distributed` hands them to ``torch.distributed`` (``env://`` init, which
reads them itself), so nothing here reads the environment. Backend: NCCL on CUDA, gloo on CPU.
A single process (plain ``python stages/train.py``) gets a :class:`DistContext` of world size 1
and no process group.

Only rank 0 writes outputs (checkpoints, dvclive, metric files); the others train their share
of every batch and wait at barriers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0  # global rank
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this node (picks the GPU)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes outputs and shows progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def context_from_process_group() -> DistContext:
    """The context of an already initialised process group (world size 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    rank = dist.get_rank()
    local = dist.get_node_local_rank(fallback_rank=rank)
    return DistContext(rank=rank, world_size=dist.get_world_size(), local_rank=local)


def init_distributed(device_spec: str) -> DistContext:
    """Join the torchrun job if this process was started by torchrun; else world size 1.

    Args:
        device_spec: ``base.device``; ``"cpu"`` forces gloo even where CUDA exists.
    """
    if not (dist.is_available() and dist.is_torchelastic_launched()):
        return DistContext()
    if not dist.is_initialized():
        use_cuda = device_spec != "cpu" and torch.cuda.is_available()
        if use_cuda:
            local = dist.get_node_local_rank(fallback_rank=0)
            torch.cuda.set_device(local % torch.cuda.device_count())
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return context_from_process_group()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` when the job has more than one process."""
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over ranks (returned unchanged for a single process)."""
    if ctx.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` for a single process)."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out
