"""Tiny real models and generated clips for the engine tests (fast on 2 busy CPU cores)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nrdfer.labels import NEUTRAL, NUM_CLASSES
from nrdfer.models.decision import cut_snippets, snippet_filter
from nrdfer.models.output import ModelOutput
from nrdfer.params import TrainParams


class TinyVideoNet(nn.Module):
    """Per-frame conv -> frame tokens -> mean -> linear, with the real snippet filter (Eq. 7)."""

    def __init__(self, width: int = 8, dropout: float = 0.0, mu1: float = 0.7, mu2: float = 0.05):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, NUM_CLASSES)
        self.mu1, self.mu2 = mu1, mu2

    def forward(self, x: torch.Tensor) -> ModelOutput:
        b, t = x.shape[:2]
        maps = F.relu(self.conv(x.flatten(0, 1)))  # (B*T, C, h, w)
        tokens = self.drop(maps.mean(dim=(2, 3))).view(b, t, -1)  # (B*T, C) -> (B, T, C)
        feature = tokens.mean(dim=1)  # (B, C)
        logits_seq = self.head(feature)
        snippet_logits = self.head(cut_snippets(tokens, 2, 1).mean(dim=2))  # (B, Ns, K)
        logits, fired = snippet_filter(logits_seq, snippet_logits, self.mu1, self.mu2, NEUTRAL)
        attention = tokens.norm(dim=-1).softmax(dim=1)  # (B, T)
        return ModelOutput(logits_seq, logits, fired, feature, snippet_logits, attention)


class NanAfter(nn.Module):
    """Wraps a model; its training forward number ``n`` (1-based) returns NaN logits."""

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x: torch.Tensor) -> ModelOutput:
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls == self.n:
                out.logits_seq = out.logits_seq * float("nan")
        return out


PALETTE = [(220, 60, 60), (60, 200, 60), (60, 60, 220), (210, 210, 60), (200, 60, 200),
           (60, 200, 200), (130, 130, 130)]  # fmt: skip


def make_clips(
    n: int = 32, frames: int = 4, size: int = 16, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """uint8 clips (n, T, 3, H, W) whose colour depends on the class, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    colours = torch.tensor(PALETTE, dtype=torch.float32)  # (K, 3)
    base = colours[labels][:, None, :, None, None]  # (n, 1, 3, 1, 1)
    noise = torch.randn(n, frames, 3, size, size, generator=g) * 30
    clips = (base + noise).clamp(0, 255).to(torch.uint8)
    keys = [f"clip{i:03d}" for i in range(n)]
    return clips, labels, keys


class BatchSource:
    """epoch -> shuffled batches (seeded by epoch); with ``world > 1`` rank r gets the r-th
    contiguous part of every global batch, as a DDP shard reader would."""

    def __init__(self, data, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1):
        self.clips, self.labels, self.keys = data
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world

    def __call__(self, epoch: int) -> list:
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(len(self.labels), generator=g)
        out = []
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            part = idx.chunk(self.world)[self.rank]
            out.append((self.clips[part], self.labels[part], [self.keys[i] for i in part]))
        return out

    def eval(self) -> list:
        idx = torch.arange(len(self.labels))
        return [
            (self.clips[c], self.labels[c], [self.keys[i] for i in c])
            for c in idx.split(self.batch_size)
        ]


def train_params(**overrides) -> TrainParams:
    values = dict(
        epochs=3,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-4,
        lr_final_factor=0.1,
        grad_clip=0.0,
        schedule="exponential",
        warmup_steps=0,
        ema_decay=0.0,
        ema_bn_batches=0,
        label_smoothing=0.0,
        precision="fp32",
        channels_last=False,
        compile=False,
        eval_every_epoch=False,
        selection="last",
        log_every=1,
    )
    values.update(overrides)
    return TrainParams(**values)


def ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank of a 2-process gloo job training TinyVideoNet (see test_ddp.py)."""
    import json
    from pathlib import Path

    import torch.distributed as dist

    from nrdfer.engine.distributed import context_from_process_group, shutdown
    from nrdfer.engine.rng_state import seed_everything
    from nrdfer.engine.train import fit
    from nrdfer.labels import CLASSES

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    ctx = context_from_process_group()
    seed_everything(0)
    result = fit(
        TinyVideoNet(),
        BatchSource(make_clips(32, seed=11), batch_size=8, rank=ctx.rank, world=ctx.world_size),
        train_params(epochs=3),
        seed=0,
        device=torch.device("cpu"),
        checkpoint_path=Path(out_dir) / "ckpt.pt",
        run_identity={},
        classes=CLASSES,
        ctx=ctx,
        progress=False,
    )
    torch.save(result.model_state, Path(out_dir) / f"final{rank}.pt")
    (Path(out_dir) / f"history{rank}.json").write_text(json.dumps(result.history))
    shutdown(ctx)
