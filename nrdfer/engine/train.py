"""The training loop (paper §4.2): SGD with momentum (or AdamW), cross-entropy on
``logits_seq``, a per-epoch learning-rate schedule, mixed precision, DistributedDataParallel,
per-epoch atomic checkpoints, bit-identical resume, a NaN guard and dvclive curves.

Schedule (:func:`make_scheduler`): exponential, ``gamma = lr_final_factor ** (1 / epochs)``, so
the rate falls smoothly from ``lr`` to ``lr * lr_final_factor`` whatever the number of epochs
(the authors' code halves it every 7 epochs: over 70 epochs a factor 2**-10 ~= 1e-3, the
paper preset's), or cosine towards the same end point. Optional, off in the paper preset:
gradient clipping (``grad_clip``), a linear warm-up over the first ``warmup_steps`` optimizer
steps (the step's rate is the epoch's rate times ``step / warmup_steps``), label smoothing, and
an exponential moving average of the weights (``ema_decay``, per step) that is what gets
evaluated and kept. The demo clips gradients and uses the cosine schedule (docs/engine.md,
"Stability").

Data: ``train_batches(epoch)`` returns the batches of one epoch for this rank. It must depend
only on the epoch (and the seed it was built with), so a resumed run sees the same data as an
uninterrupted one. Model selection (paper protocol, docs/data.md): the last epoch, or the
best epoch on a validation split carved out of the training folds. When per-epoch test
evaluation is on, the literature's "best epoch on the test fold" is computed too and every key
carrying it starts with ``best_on_test_``: it was chosen on the test fold and is optimistic.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nrdfer.checkpoint import load_checkpoint, save_checkpoint
from nrdfer.engine import distributed as D
from nrdfer.engine.evaluate import Batch, compute_metrics, predict
from nrdfer.engine.precision import (
    autocast,
    make_grad_scaler,
    prepare_model,
    resolve_precision,
    to_float_clips,
)
from nrdfer.engine.rng_state import capture_rng_state, restore_rng_state, seed_everything
from nrdfer.errors import UserError
from nrdfer.params import TrainParams

BEST_ON_TEST_NOTE = "epoch chosen on the test fold (DFER literature practice): optimistic"
"""Stored beside every ``best_on_test_*`` number so it is never mistaken for the honest one."""

VAL_SELECTION_KEY = "val_sf_war"
"""With ``selection: val`` the epoch with the highest validation WAR after the filter (the
model as it is deployed) is kept; ties keep the earlier epoch."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    """What :func:`fit` returns (on every rank; only rank 0's is written anywhere)."""

    history: list[dict[str, Any]]  # one flat record per epoch
    selected_epoch: int  # 1-based epoch whose weights are in ``model_state``
    selection: str  # "last" or "val"
    model_state: dict[str, torch.Tensor]  # selected weights, on the CPU
    best_on_test: dict[str, Any] = field(default_factory=dict)  # labelled, may be empty
    resumed_from_epoch: int = 0  # epochs already done when this call started


def lr_gamma(params: TrainParams) -> float:
    """Per-epoch ExponentialLR factor taking ``lr`` to ``lr * lr_final_factor`` in ``epochs``."""
    return params.lr_final_factor ** (1.0 / params.epochs)


def make_scheduler(
    optimizer: torch.optim.Optimizer, params: TrainParams
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch schedule from ``lr`` towards ``lr * lr_final_factor``: exponential (the
    paper's "decreased at an exponential rate") or cosine (``schedule: cosine``: epoch ``e`` of
    ``E`` at ``lr * (f + (1 - f) * (1 + cos(pi * e / E)) / 2)``, which keeps the rate high for
    longer and anneals it close to ``lr * f`` over the last epochs)."""
    if params.schedule == "cosine":
        f, epochs = params.lr_final_factor, params.epochs
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda e: f + (1 - f) * (1 + math.cos(math.pi * e / epochs)) / 2
        )
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_gamma(params))


def make_optimizer(model: nn.Module, params: TrainParams) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (paper §4.2), or AdamW (``optimizer: adamw``, with
    ``momentum`` as beta1) for short runs such as the demo."""
    if params.optimizer == "adamw":
        return torch.optim.AdamW(
            model.parameters(),
            lr=params.lr,
            betas=(params.momentum, 0.999),
            weight_decay=params.weight_decay,
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=params.lr,
        momentum=params.momentum,
        weight_decay=params.weight_decay,
    )


def _canonical(obj: Any) -> Any:
    """JSON round trip: tuples become lists, so stored and current run identities compare."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


REPORT_ONLY_KEYS = {"train": ("eval_every_epoch", "log_every"), "data": ("decode_cache_mb",)}
"""Per section, the keys that change what a training reports (test curves, progress) or how fast
it reads its frames, not its weights."""


def weight_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The dotted keys (``model.dsf``, ``fold``, ``shards``) in which two run identities differ
    in anything that shapes the trained weights (:data:`REPORT_ONLY_KEYS` aside)."""
    a, b = _canonical(dict(stored)), _canonical(dict(current))
    differ = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            ignore = REPORT_ONLY_KEYS.get(key, ())
            sub = sorted((set(va) | set(vb)) - set(ignore))
            differ += [f"{key}.{k}" for k in sub if va.get(k) != vb.get(k)]
        elif va != vb:
            differ.append(key)
    return differ


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class WeightAverage:
    """Exponential moving average of a model's weights, updated after every optimizer step:
    ``avg = decay * avg + (1 - decay) * w`` for every floating-point parameter and buffer (the
    BatchNorm running statistics too, which :func:`recalibrate_norms` recomputes for the
    averaged weights after every epoch); integer buffers are copied. The average is
    bias-corrected as Adam's moments are: after ``n`` updates it is
    ``sum_i decay**(n - i) * w_i / sum_i decay**(n - i)`` over the weights after each step, so
    the initial weights never enter it and its horizon is about ``1 / (1 - decay)`` steps from
    the first step on (update ``n`` uses ``decay * (1 - decay**(n - 1)) / (1 - decay**n)``)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        n = self.updates
        d = self.decay * (1 - self.decay ** (n - 1)) / (1 - self.decay**n)
        current = model.state_dict()
        for key, avg in self.model.state_dict().items():
            value = current[key].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(value.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": _cpu_state(self.model)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["weights"])


def best_on_test(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The literature's numbers: for each of without / with the filter, the epoch with the
    highest test WAR and its WAR and UAR. Empty when no epoch was evaluated on test."""
    rows = [r for r in history if r.get("test_war") is not None]
    if not rows:
        return {}
    out: dict[str, Any] = {"best_on_test_note": BEST_ON_TEST_NOTE}
    for tag, prefix in (("", "test_"), ("sf_", "test_sf_")):
        best = max(rows, key=lambda r: (r[f"{prefix}war"], -r["epoch"]))
        out[f"best_on_test_{tag}epoch"] = best["epoch"]
        out[f"best_on_test_{tag}war"] = best[f"{prefix}war"]
        out[f"best_on_test_{tag}uar"] = best[f"{prefix}uar"]
    return out


def _eval_record(prefix: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("war", "uar", "sf_war", "sf_uar", "sf_gain_war", "sf_fired_fraction")
    return {f"{prefix}{k}": metrics[k] for k in keys}


class _Live:
    """dvclive on rank 0, rebuilt from the checkpoint's history on every start so a resumed
    run's curves equal an uninterrupted run's (no duplicated or missing steps)."""

    def __init__(self, live_dir: Path | None, history: Sequence[Mapping[str, Any]]):
        self.live = None
        if live_dir is None:
            return
        from dvclive import Live
        from scmrepo.exceptions import SCMError

        try:
            self.live = Live(
                dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None, report=None
            )
        except SCMError as exc:  # dvclive reads the git HEAD, which a fresh `git init` lacks
            raise UserError(
                f"{live_dir}: dvclive cannot read the git repository here ({exc}); a repository "
                "without commits cannot hold the training curves: commit once "
                "(git add -A && git commit -m 'start'), then re-run"
            ) from None
        for record in history:
            self.log(record)

    def log(self, record: Mapping[str, Any]) -> None:
        if self.live is None:
            return
        self.live.step = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.live.log_metric(key.replace("_", "/", 1), value)
        self.live.make_summary()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


def _summary_line(record: Mapping[str, Any], epochs: int, seconds: float) -> str:
    parts = [
        f"epoch {record['epoch']}/{epochs}",
        f"loss {record['train_loss']:.4f}",
        f"acc {100 * record['train_acc']:.2f}%",
        f"lr {record['lr']:.2e}",
    ]
    for split in ("val", "test"):
        if f"{split}_war" in record:
            parts.append(
                f"{split} WAR {100 * record[f'{split}_war']:.2f} / {100 * record[f'{split}_sf_war']:.2f} SF"
                f"  UAR {100 * record[f'{split}_uar']:.2f} / {100 * record[f'{split}_sf_uar']:.2f} SF"
            )
    parts.append(f"{seconds:.1f}s")
    return " | ".join(parts)


@dataclass
class _Run:
    """The state of one training run: what a checkpoint holds besides the random-number states."""

    base: nn.Module  # the model on its device (what ``state_dict`` saves)
    net: nn.Module  # what the steps call: ``base`` under DDP and/or ``torch.compile``
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: Any  # torch.amp.GradScaler (a no-op one off CUDA fp16)
    identity: Any  # canonical run identity: a checkpoint of another run is not resumed from
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_state: dict[str, torch.Tensor] | None = None
    start: int = 0  # epochs done before this call
    average: WeightAverage | None = None  # ``ema_decay`` > 0: the weights evaluated and kept
    steps: int = 0  # optimizer steps done (the warm-up counts them)

    @property
    def kept(self) -> nn.Module:
        """The model that is evaluated and saved: the weight average, or the trained weights."""
        return self.average.model if self.average is not None else self.base


def _start(
    model: nn.Module,
    params: TrainParams,
    device: torch.device,
    ctx: D.DistContext,
    run_identity: Mapping[str, Any],
) -> _Run:
    """Model on ``device`` (DDP-wrapped, compiled if asked), optimizer, schedule, grad scaler;
    cuDNN picks its fastest convolutions on CUDA (not bit-reproducible there)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    base = prepare_model(model, device, channels_last=params.channels_last)
    net = D.wrap_ddp(base, ctx, device)
    if params.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    optimizer = make_optimizer(base, params)
    return _Run(
        base=base,
        net=net,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, params),
        scaler=make_grad_scaler(device, resolve_precision(params.precision, device)),
        identity=_canonical(dict(run_identity)),
        average=WeightAverage(base, params.ema_decay) if params.ema_decay > 0 else None,
    )


def _resume(
    run: _Run, checkpoint_path: Path, seed: int, ctx: D.DistContext, params: TrainParams, show: bool
) -> None:
    """Continue from ``checkpoint_path`` when it holds this run (same identity): weights,
    optimizer, schedule, scaler, history and every rank's random-number states; otherwise seed
    a fresh run."""
    state = load_checkpoint(checkpoint_path) if checkpoint_path.is_file() else None
    if state is not None and state.get("identity") != run.identity:
        if ctx.is_main:
            tqdm.write(
                f"{checkpoint_path}: written with other params; ignoring it and starting afresh"
            )
        state = None
    if state is None:
        seed_everything(seed + ctx.rank)
        return
    run.base.load_state_dict(state["model_state"])
    if run.average is not None:
        run.average.load_state_dict(state["weight_average"])
    run.steps = int(state.get("steps", 0))
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.history = list(state["history"])
    run.best_val_state = state.get("best_val_state")
    run.start = int(state["epoch"])
    rng = state["rng"]
    if len(rng) == ctx.world_size:
        restore_rng_state(rng[ctx.rank])
    else:
        seed_everything(seed + ctx.rank + 7919 * run.start)
    if show:
        tqdm.write(f"resuming from {checkpoint_path} after epoch {run.start}/{params.epochs}")


def _train_one_epoch(
    run: _Run,
    batches: Iterable[Batch],
    params: TrainParams,
    device: torch.device,
    ctx: D.DistContext,
    epoch: int,
    checkpoint_path: Path,
    show: bool,
) -> dict[str, Any]:
    """One pass over ``batches``; returns the epoch's record (lr, train loss and accuracy over
    every rank's clips). A NaN/inf loss raises :class:`TrainingDiverged`."""
    precision = resolve_precision(params.precision, device)
    lr = run.optimizer.param_groups[0]["lr"]
    run.net.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*B, correct, clips
    try:
        total: int | None = len(batches)  # type: ignore[arg-type]
    except TypeError:  # iterable-style loaders have no length
        total = None
    step_bar = tqdm(batches, desc=f"epoch {epoch + 1}", total=total, leave=False, disable=not show)
    base = run.base
    for step, (clips, labels, _keys) in enumerate(step_bar, start=1):
        x = to_float_clips(clips, device)  # (B, T, 3, H, W) float in [0, 1]
        y = labels.to(device, non_blocking=True)  # (B,)
        with autocast(device, precision):
            out = run.net(x)
        loss = F.cross_entropy(out.logits_seq.float(), y, label_smoothing=params.label_smoothing)
        if hasattr(base, "extra_loss"):  # center / EC-STFL baselines
            loss = loss + base.extra_loss(out, y)
        if not torch.isfinite(loss):
            kept = (
                f"the last good checkpoint {checkpoint_path} (after epoch {epoch}) is kept"
                if epoch > 0
                else "no checkpoint was written yet"
            )
            raise TrainingDiverged(
                f"loss is {loss.item()} at epoch {epoch + 1}, step {step}; training stopped "
                f"and {kept}. Lower train.lr, set train.grad_clip, or check the data."
            )
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if params.grad_clip > 0:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.base.parameters(), params.grad_clip)
        _optimizer_step(run, params.warmup_steps)
        with torch.no_grad():
            n = y.numel()
            sums += torch.stack(
                [
                    loss.detach().double() * n,
                    (out.logits_seq.argmax(dim=1) == y).sum().double(),
                    torch.tensor(float(n), dtype=torch.float64, device=device),
                ]
            )
        if show and step % params.log_every == 0:
            step_bar.set_postfix(loss=f"{loss.item():.4f}")
    step_bar.close()
    run.scheduler.step()
    sums = D.all_reduce_sum(sums, ctx).cpu()
    if sums[2] == 0:
        raise UserError(f"epoch {epoch + 1}: the training loader gave no clips")
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss": float(sums[0] / sums[2]),
        "train_acc": float(sums[1] / sums[2]),
    }


def recalibrate_norms(
    model: nn.Module, batches: Iterable[Batch], n_batches: int, device: torch.device, precision: str
) -> None:
    """Recompute the BatchNorm running statistics of ``model`` (the weight average) from its
    own activations on the first ``n_batches`` training batches (a cumulative average, as
    SWA's ``update_bn``): averaged statistics belong to older weights and do not match averaged
    weights while training still moves fast. The random-number state is left as it was."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or n_batches <= 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    model.train()
    devices = [device] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        for i, (clips, _labels, _keys) in enumerate(batches):
            if i == n_batches:
                break
            with autocast(device, precision):
                model(to_float_clips(clips, device))  # (B, T, 3, H, W)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def _optimizer_step(run: _Run, warmup_steps: int) -> None:
    """One optimizer step at the epoch's rate, scaled by ``n / warmup_steps`` for the run's
    ``n``-th step (1-based) during the warm-up (the scheduled rate is put back afterwards: the
    schedule never sees the factor), then the weight average's update."""
    run.steps += 1
    factor = min(1.0, run.steps / warmup_steps) if warmup_steps > 0 else 1.0
    scheduled = [group["lr"] for group in run.optimizer.param_groups]
    if factor < 1.0:
        for group in run.optimizer.param_groups:
            group["lr"] = group["lr"] * factor
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if factor < 1.0:
        for group, lr in zip(run.optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr
    if run.average is not None:
        run.average.update(run.base)


def _evaluate_epoch(
    run: _Run,
    record: dict[str, Any],
    params: TrainParams,
    device: torch.device,
    classes: Sequence[str],
    val_batches: Callable[[], Iterable[Batch]] | None,
    test_batches: Callable[[], Iterable[Batch]] | None,
) -> None:
    """Rank 0, after an epoch: validation metrics (keeping the best weights for
    ``selection: val``) and, when ``eval_every_epoch``, test metrics, added to ``record``."""
    precision = resolve_precision(params.precision, device)
    plain = run.kept
    if val_batches is not None:
        vm = compute_metrics(predict(plain, val_batches(), device, precision), classes)
        record.update(_eval_record("val_", vm))
        best_so_far = max((r[VAL_SELECTION_KEY] for r in run.history), default=-math.inf)
        if record[VAL_SELECTION_KEY] > best_so_far:
            run.best_val_state = _cpu_state(plain)
    if params.eval_every_epoch and test_batches is not None:
        tm = compute_metrics(predict(plain, test_batches(), device, precision), classes)
        record.update(_eval_record("test_", tm))


def _save_checkpoint(
    run: _Run, checkpoint_path: Path, rng_states: list[Any], classes: Sequence[str]
) -> None:
    """Rank 0: everything a killed run needs to continue bit-identically, written atomically."""
    ckpt: dict[str, Any] = {
        "kind": "training",
        "identity": run.identity,
        "epoch": run.history[-1]["epoch"],
        "model_state": _cpu_state(run.base),
        "steps": run.steps,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng_states,
        "history": run.history,
        "classes": list(classes),
    }
    if run.best_val_state is not None:
        ckpt["best_val_state"] = run.best_val_state
    if run.average is not None:
        ckpt["weight_average"] = run.average.state_dict()
    save_checkpoint(checkpoint_path, ckpt)


def _selected(run: _Run, params: TrainParams) -> tuple[int, dict[str, torch.Tensor]]:
    """The 1-based epoch kept and its weights: the last, or the best on validation."""
    if params.selection != "val":
        return len(run.history), _cpu_state(run.kept)
    if run.best_val_state is None:
        raise UserError("selection 'val': no epoch was evaluated on the validation split")
    best = max(run.history, key=lambda r: (r[VAL_SELECTION_KEY], -r["epoch"]))["epoch"]
    return best, run.best_val_state


def fit(
    model: nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    params: TrainParams,
    *,
    seed: int,
    device: torch.device,
    checkpoint_path: str | Path,
    run_identity: Mapping[str, Any],
    classes: Sequence[str],
    test_batches: Callable[[], Iterable[Batch]] | None = None,
    val_batches: Callable[[], Iterable[Batch]] | None = None,
    live_dir: str | Path | None = None,
    ctx: D.DistContext | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` for ``params.epochs`` epochs, resuming from ``checkpoint_path`` if it
    holds an unfinished run with the same ``run_identity``.

    Args:
        model: freshly built model (weights already initialised, e.g. after
            ``seed_everything(seed)``); its forward returns a ``ModelOutput``.
        train_batches: epoch (0-based) -> this rank's training batches of that epoch.
        params: the ``train`` section.
        seed: seeds the training randomness (dropout, ...) of a fresh run, offset by rank.
        device: where to train (see :func:`nrdfer.device.resolve_device`).
        checkpoint_path: written atomically after every epoch (rank 0); read on start.
        run_identity: plain dict (params of every section that shapes the run); a checkpoint
            written with another identity is not resumed from (training starts afresh).
        classes: class names in logit order (for per-class metrics).
        test_batches: the test fold, evaluated after each epoch when
            ``params.eval_every_epoch`` (Fig. 4 curves, labelled best-on-test numbers).
        val_batches: a validation split of the training data; required by ``selection: val``.
        live_dir: dvclive directory (rank 0), or None for no dvclive.
        ctx: distributed context (world size 1 when None).
        progress: show progress bars and the per-epoch summary line (rank 0 only).
        on_epoch_end: called with each epoch's record after its checkpoint is written.

    Raises:
        TrainingDiverged: a NaN/inf loss; names epoch and step, keeps the last checkpoint.
        UserError: ``selection: val`` without a validation split.
    """
    ctx = ctx or D.DistContext()
    checkpoint_path = Path(checkpoint_path)
    _check_selection(params, val_batches)
    show = progress and ctx.is_main
    run = _start(model, params, device, ctx, run_identity)
    _resume(run, checkpoint_path, seed, ctx, params, show)
    live = _Live(Path(live_dir), run.history) if (live_dir is not None and ctx.is_main) else None
    epoch_bar = tqdm(
        range(run.start, params.epochs), desc="epochs", initial=run.start, total=params.epochs,
        disable=not show,
    )  # fmt: skip
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        batches = train_batches(epoch)
        record = _train_one_epoch(run, batches, params, device, ctx, epoch, checkpoint_path, show)
        if run.average is not None:  # BatchNorm statistics of the averaged weights
            recalibrate_norms(
                run.average.model, train_batches(epoch), params.ema_bn_batches, device,
                resolve_precision(params.precision, device),
            )  # fmt: skip
        if ctx.is_main:
            _evaluate_epoch(run, record, params, device, classes, val_batches, test_batches)
        run.history.append(record)
        rng_states = D.gather_objects(capture_rng_state(), ctx)
        if ctx.is_main:
            _save_checkpoint(run, checkpoint_path, rng_states, classes)
            _report_epoch(record, params.epochs, time.perf_counter() - t0, live, show)
        D.barrier(ctx)
        if on_epoch_end is not None:
            on_epoch_end(record)
    epoch_bar.close()
    if live is not None:
        live.close()

    return _result(run, params)


def _report_epoch(
    record: dict[str, Any], epochs: int, seconds: float, live: _Live | None, show: bool
) -> None:
    """An epoch's record to dvclive and, when progress is shown, its summary line."""
    if live is not None:
        live.log(record)
    if show:
        tqdm.write(_summary_line(record, epochs, seconds))


def _check_selection(
    params: TrainParams, val_batches: Callable[[], Iterable[Batch]] | None
) -> None:
    if params.selection == "val" and val_batches is None:
        raise UserError(
            "train.selection is 'val' but the fold has no validation split; set "
            "folds.val_fraction > 0 or train.selection: last"
        )


def _result(run: _Run, params: TrainParams) -> FitResult:
    """What :func:`fit` returns: the history, the selected epoch and its weights, the
    labelled best-on-test numbers."""
    selected, model_state = _selected(run, params)
    return FitResult(
        history=run.history,
        selected_epoch=selected,
        selection=params.selection,
        model_state=model_state,
        best_on_test=best_on_test(run.history),
        resumed_from_epoch=run.start,
    )
