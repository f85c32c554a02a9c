"""One fold end to end, as the ``train`` and ``evaluate`` stages run it: shards in, files out.

The stage scripts pass every path; these functions wire the shard readers
(:mod:`nrdfer.data.shards`), the model registry and the engine together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import torch
from torch import nn

from nrdfer.checkpoint import load_checkpoint, save_checkpoint
from nrdfer.data.shards import INDEX, ShardIndex, eval_loader, train_loader
from nrdfer.device import resolve_device
from nrdfer.engine import distributed as D
from nrdfer.engine.evaluate import (
    SF_PREFIX,
    Batch,
    Predictions,
    compute_metrics,
    confusion_matrices,
    predict,
    save_features,
    write_confusion_json,
    write_predictions_csv,
)
from nrdfer.engine.precision import resolve_precision
from nrdfer.engine.rng_state import seed_everything
from nrdfer.engine.train import FitResult, best_on_test, fit, weight_differences
from nrdfer.errors import UserError
from nrdfer.io import atomic_path, file_digest, write_plot_rows
from nrdfer.labels import ClassSet
from nrdfer.model_file import (
    load_model_file,
    model_file_state,
    model_params_of,
    preprocess_record,
)
from nrdfer.models import build_model, load_weights
from nrdfer.models.decision import num_snippets
from nrdfer.models.registry import model_keys
from nrdfer.params import (
    BaseParams,
    DataParams,
    DetectAlignParams,
    EnhanceParams,
    EvaluateParams,
    ModelParams,
    TrainParams,
    allowed,
    check_clip_shape,
    to_dict,
)
from nrdfer.plots import confusion_png
from nrdfer.results import EVALUATION, FEATURES, headline, read_flat, write_flat

DECISION_KEYS = frozenset({"sf", "snippet_len", "snippet_stride", "mu1", "mu2"})
"""Model params that only the decision stage (snippet-based filter, paper Eq. 6-7) reads."""


REPORTED_MODEL_KEYS = ("name", "dsf", "dct", "sf", "M", "N", "snippet_len", "snippet_stride")
"""Model settings copied into every metrics file, so tables group runs by their content."""


CLASS_SET_KEYS = {"num_classes": "num_classes", "neutral_index": "neutral"}
"""Model params that must equal the data set's class set: key -> ``ClassSet`` attribute."""


def check_class_set(model_params: ModelParams, index: ShardIndex) -> ClassSet:
    """The class set of the shards, after checking the model's head size and (for a model with
    the snippet-based filter) its neutral index against it.

    Raises:
        UserError: one line naming the params key, its value, the shard index and the value
            the data set needs.
    """
    classes = index.class_set
    reads = model_keys(model_params.name)
    for key, attr in CLASS_SET_KEYS.items():
        have, want = getattr(model_params, key), getattr(classes, attr)
        if key in reads and have != want:
            raise UserError(
                f"model.{key} = {have}, but {index.directory / INDEX} holds {classes.dataset} "
                f"({classes.num_classes} classes: {', '.join(classes.classes)}; neutral "
                f"{classes.neutral_name} = {classes.neutral}): set model.{key}: {want}"
            )
    return classes


def live_dir_from_outputs(metrics: str | Path, plots: str | Path) -> Path:
    """The dvclive directory, from the two paths dvc.yaml declares inside it
    (``DIR/metrics.json`` as metrics, ``DIR/plots/metrics`` as plots)."""
    root = Path(metrics).parent
    if Path(metrics).name != "metrics.json" or Path(plots) != root / "plots" / "metrics":
        raise UserError(
            f"--live-metrics {metrics} / --live-plots {plots}: must be DIR/metrics.json and "
            "DIR/plots/metrics of one dvclive directory; fix dvc.yaml"
        )
    return root


@dataclass(frozen=True)
class TrainOutputs:
    """Where the train stage writes (all from dvc.yaml)."""

    checkpoint: Path  # resumable training state, rewritten every epoch (persist: true)
    model: Path  # the selected model file
    live_dir: Path | None  # dvclive directory (metrics.json + plots/metrics); None = no curves
    summary: Path  # flat metrics: selection and the labelled best-on-test numbers


def train_fold(
    shards: str | Path,
    fold: str,
    *,
    base: BaseParams,
    data: DataParams,
    model_params: ModelParams,
    train: TrainParams,
    outputs: TrainOutputs,
    init: str | Path | None = None,
    progress: bool = True,
    detect_align: DetectAlignParams | None = None,
    enhance: EnhanceParams | None = None,
) -> FitResult:
    """Train one fold from its shards (single process or one rank of a torchrun job).

    Args:
        shards: shard directory with ``index.json`` (``data/shards/<dataset>``).
        fold: fold name in the index (``"1"`` .. ``"5"`` for DFEW).
        init: a model file to start from (AFEW fine-tuning from a DFEW model), or None.
        detect_align: face settings stored in the model file for ``nrdfer predict``.
        enhance: enhancement settings stored likewise (None: the data was not enhanced).
    """
    ctx = D.init_distributed(base.device)
    try:
        if ctx.enabled and not data.resampled:
            raise UserError(
                f"training on {ctx.world_size} processes needs data.resampled: true in "
                "params.yaml (every rank must get the same number of batches)"
            )
        # a clear error when the shards stage has not run, or its classes do not fit the model
        class_set = check_class_set(model_params, ShardIndex(shards))
        device = resolve_device(base.device, ctx.local_rank)
        seed_everything(base.seed)
        model = build_model(model_params)
        identity = _run_identity(base, data, model_params, train, fold, shards)
        if init is not None:
            _start_from(model, model_params, init, class_set)
            identity["init"] = file_digest(init)
        train_batches, test, val = _fold_batches(shards, fold, data, train, base.seed, ctx, device)
        result = fit(
            model,
            train_batches,
            train,
            seed=base.seed,
            device=device,
            checkpoint_path=outputs.checkpoint,
            run_identity=identity,
            classes=class_set.classes,
            test_batches=test,
            val_batches=val,
            live_dir=outputs.live_dir,
            ctx=ctx,
            progress=progress,
        )
        if ctx.is_main:
            info = {
                "selection": result.selection,
                "selected_epoch": result.selected_epoch,
                "epochs": train.epochs,
                "fold": str(fold),
                "seed": base.seed,
                "dataset": class_set.dataset,
            }
            save_checkpoint(
                outputs.model,
                model_file_state(
                    result.model_state,
                    model_params=to_dict(model_params),
                    classes=class_set.classes,
                    preprocess=preprocess_record(data, detect_align, enhance),
                    info=info,
                ),
            )
            _write_summary(outputs.summary, result.history, info)
        D.barrier(ctx)
        return result
    finally:
        D.shutdown(ctx)


def take_finished_training(
    checkpoint: str | Path,
    model_file: str | Path,
    shards: str | Path,
    fold: str,
    *,
    base: BaseParams,
    data: DataParams,
    model_params: ModelParams,
    train: TrainParams,
    outputs: TrainOutputs,
) -> str | None:
    """Take the weights of a finished training with these settings instead of training again.

    ``checkpoint`` and ``model_file`` are another stage's training of this fold: a grid cell
    whose settings are the main model's (Table 1's full model, Table 3's M and N of params.yaml)
    is the main training of that fold. When the checkpoint was written with the same params of
    every section that shapes the weights (``train.eval_every_epoch`` and ``train.log_every``
    aside), on the same shard index, without a starting model, and its training finished,
    ``model_file`` is copied to ``outputs.model`` and the training summary written as
    :func:`train_fold` writes it (with ``weights_from`` naming the file): on CPU the same bits
    the training would produce (tests/engine/test_stages.py).

    Returns:
        None when the weights were taken; otherwise why not (the caller trains).
    """
    checkpoint, model_file = Path(checkpoint), Path(model_file)
    if not checkpoint.is_file() or not model_file.is_file():
        return f"{checkpoint if not checkpoint.is_file() else model_file} does not exist"
    fix = "re-run the stage that trained it"
    state = load_checkpoint(checkpoint, what="training checkpoint", fix=fix)
    ours = _run_identity(base, data, model_params, train, fold, shards)
    differ = weight_differences(state.get("identity") or {}, ours)
    if differ:
        return f"{checkpoint} was trained with other settings ({', '.join(differ[:4])})"
    done = int(state.get("epoch", 0))
    if done != train.epochs:
        return f"{checkpoint} holds {done} of {train.epochs} epochs"
    saved = load_model_file(model_file)
    kept = state.get("best_val_state") if train.selection == "val" else state["model_state"]
    weights = saved["model_state"]
    same = kept is not None and kept.keys() == weights.keys()
    if not (same and all(torch.equal(kept[k], weights[k]) for k in kept)):
        return f"{model_file} does not hold the weights of {checkpoint}"
    history = state["history"]
    if not train.eval_every_epoch:  # this run's summary has no test curves to pick from
        history = [{k: v for k, v in r.items() if not k.startswith("test_")} for r in history]
    with atomic_path(outputs.model) as tmp:
        tmp.write_bytes(model_file.read_bytes())
    _write_summary(outputs.summary, history, saved["info"], {"weights_from": str(model_file)})
    return None


def _run_identity(
    base: BaseParams,
    data: DataParams,
    model_params: ModelParams,
    train: TrainParams,
    fold: str,
    shards: str | Path,
) -> dict[str, Any]:
    """What a checkpoint must have been written with to be resumed from: the params of every
    section that shapes the run, the fold, the shard index's digest (and the digest of the
    model file training starts from, filled in by the caller)."""
    return {
        "base": to_dict(base),
        "data": to_dict(data),
        "model": to_dict(model_params),
        "train": to_dict(train),
        "fold": str(fold),
        "shards": file_digest(Path(shards) / INDEX),
        "init": None,
    }


def _start_from(
    model: nn.Module, model_params: ModelParams, init: str | Path, class_set: ClassSet
) -> None:
    """Load the weights of the model file ``init`` into ``model`` (fine-tuning), which must
    have been built with the same architecture keys and predict the shards' classes."""
    state = load_model_file(init)
    keys = sorted(model_keys(model_params.name))  # what defines the architecture
    ours = to_dict(model_params)
    differ = [k for k in keys if state["model_params"].get(k) != ours[k]]
    if differ:
        raise UserError(
            f"{init}: built with other model params than params.yaml's model section "
            f"(model.{differ[0]}: {state['model_params'].get(differ[0])!r} there, "
            f"{ours[differ[0]]!r} here); fine-tuning needs the same architecture"
        )
    if list(state["classes"]) != list(class_set.classes):
        raise UserError(
            f"{init}: predicts {', '.join(state['classes'])}, but the shards hold "
            f"{class_set.dataset} ({', '.join(class_set.classes)}); fine-tuning needs "
            "the same classes in the same order"
        )
    load_weights(model, state["model_state"], str(init))


def _fold_batches(
    shards: str | Path,
    fold: str,
    data: DataParams,
    train: TrainParams,
    seed: int,
    ctx: D.DistContext,
    device: torch.device,
) -> tuple[Callable[[int], Iterable[Batch]], Callable | None, Callable | None]:
    """What ``fit`` draws batches from: the fold's training batches of an epoch (this rank's
    share), and its test (``eval_every_epoch``) and validation (``selection: val``) batches
    or None."""
    loader = train_loader(
        shards,
        fold,
        data,
        seed=seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        device=device,  # data.augment_on: device/auto warps the batches there
    )

    def train_batches(epoch: int):
        loader.set_epoch(epoch)
        return loader

    test = val = None
    if train.eval_every_epoch:
        test_loader = eval_loader(shards, fold, data, split="test")

        def test():
            return test_loader

    if train.selection == "val":
        val_loader = eval_loader(shards, fold, data, split="val")

        def val():
            return val_loader

    return train_batches, test, val


def _write_summary(
    path: Path,
    history: Sequence[Mapping[str, Any]],
    info: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """The train stage's flat metrics: the selection, the last epoch's training loss and
    accuracy, the labelled best-on-test numbers (from the per-epoch test records of
    ``history``, if any), then ``extra``."""
    last = history[-1]
    summary: dict[str, Any] = {
        **info,
        "train_loss": last["train_loss"],
        "train_acc": last["train_acc"],
    }
    summary.update(best_on_test(history))
    summary.update(extra or {})
    write_flat(path, summary)


@dataclass(frozen=True)
class EvalOutputs:
    """Where an evaluation writes (all from dvc.yaml)."""

    details: Path  # everything measured: counts, per class, filter, settings, training (JSON)
    metrics: Path | None = None  # the headline (results.HEADLINE) for `dvc metrics show`
    confusion: Path | None = None  # dir: confusion records without / with the filter (dvc plots)
    per_class: Path | None = None  # dir: per-class accuracy without / with the filter (dvc plots)
    confusion_png: Path | None = None  # both row-normalised matrices as a PNG
    predictions: Path | None = None  # per-clip CSV
    features: Path | None = None  # npz: keys, labels, predictions (+ features, attention)


PLOT_FILES = {"without_sf": "", "with_sf": SF_PREFIX}
"""File stem in a plots dir -> metrics prefix of the predictions it shows."""


@dataclass(frozen=True)
class RunFolder:
    """One grid run (train, then a single evaluation) in one folder, as the grid stages of
    dvc.yaml declare it: resumable checkpoint, model file, training summary, evaluation
    details and features."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.pt"

    def train_outputs(self) -> TrainOutputs:
        return TrainOutputs(
            checkpoint=self.root / "last.pt",
            model=self.model,
            live_dir=None,
            summary=self.root / "training.json",
        )

    def eval_outputs(self) -> EvalOutputs:
        return EvalOutputs(
            details=self.root / EVALUATION,
            features=self.root / FEATURES,
        )


def _training_summary(path: str | Path) -> dict[str, Any]:
    """The train stage's flat JSON summary; a UserError naming the file if it is not one."""
    fix = "give the summary the train stage writes (re-run the train stage if it is gone)"
    return read_flat(path, "training summary", fix)


def _with_decision(model_params: ModelParams, decision: Mapping[str, Any]) -> ModelParams:
    """The model's params with the snippet filter settings of ``decision``, checked: their
    ranges and, with the filter on, that the snippets fit the T - 1 frame tokens."""
    shown = ", ".join(f"model.{k} = {v!r}" for k, v in decision.items())
    try:
        changed = dataclasses.replace(model_params, **decision)
    except pydantic.ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        raise UserError(
            f"evaluation setting model.{name} = {decision.get(name)!r}: must be "
            f"{allowed(ModelParams, name)}"
        ) from None
    if changed.sf:
        try:
            num_snippets(changed.frames - 1, changed.snippet_len, changed.snippet_stride)
        except ValueError as exc:
            raise UserError(f"evaluation settings {shown}: {exc}; choose smaller ones") from None
    return changed


def evaluate_fold(
    shards: str | Path,
    fold: str,
    model_file: str | Path,
    *,
    base: BaseParams,
    data: DataParams,
    evaluate: EvaluateParams,
    outputs: EvalOutputs,
    split: str = "test",
    progress: bool = True,
    decision: Mapping[str, Any] | None = None,
    training: str | Path | None = None,
    record: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate a model file on a fold's ``test`` (or ``val``) split and write every output.

    ``decision`` overrides settings of the snippet-based filter (keys of
    :data:`DECISION_KEYS`), which act at evaluation only and change no weight: Table 2's
    L x S grid evaluates one trained model with several snippet widths and strides.
    ``training``: the training summary of the model, whose selection and labelled best-on-test
    numbers the details file carries along (so the 5-fold summary reads one file per fold).
    ``record``: further fields the details file records as given (e.g. the noise benchmark's
    ``noise`` kind and ``level`` of the test set).
    """
    carried = {} if training is None else _training_summary(training)  # before the work
    state, model_params, model = _model_to_evaluate(model_file, data, decision)
    device = resolve_device(base.device)
    precision = resolve_precision(evaluate.precision, device)
    model.to(device)
    classes = _check_classes(model_file, list(state["classes"]), shards)
    loader = eval_loader(shards, fold, data, split=split)
    pred = predict(
        model,
        loader,
        device,
        precision,
        progress=progress,
        desc=f"eval {split}",
        keep_frames=evaluate.fig5_clips if evaluate.save_features else 0,
    )
    metrics = compute_metrics(pred, classes)
    settings = {f"model_{k}": getattr(model_params, k) for k in REPORTED_MODEL_KEYS}
    metrics = {"fold": str(fold), "split": split, **settings, **metrics, **state["info"]}
    metrics.update({k: v for k, v in carried.items() if k not in metrics})
    metrics.update(record or {})
    write_flat(outputs.details, metrics)
    if outputs.metrics is not None:
        write_flat(outputs.metrics, headline(metrics))
    _write_plots(outputs, pred, metrics, classes)
    if outputs.predictions is not None:
        write_predictions_csv(outputs.predictions, pred, classes)
    if outputs.features is not None:
        if not evaluate.save_features:
            pred.features = np.zeros((len(pred.keys), 0), dtype=np.float32)  # (N, 0): not kept
            pred.attention = None
            pred.frames = None
        meta = {"fold": str(fold), "split": split, **settings}
        save_features(outputs.features, pred, meta=meta)
    return metrics


def _model_to_evaluate(
    model_file: str | Path, data: DataParams, decision: Mapping[str, Any] | None
) -> tuple[dict[str, Any], ModelParams, nn.Module]:
    """The model file's state, its model params with the ``decision`` overrides (checked:
    only the snippet filter's settings, in range, fitting the clips of ``data``) and the model
    built from them with the file's weights, on the CPU."""
    state = load_model_file(model_file)
    model_params = model_params_of(state, model_file)
    check_clip_shape(model_params, data, lambda key: str(model_file) if key[0] == "m" else "")
    if decision:
        unknown = sorted(set(decision) - DECISION_KEYS)
        if unknown:
            raise UserError(
                f"cannot change model.{unknown[0]} at evaluation: only the snippet filter's "
                f"settings ({', '.join(sorted(DECISION_KEYS))}) can; re-train for the others"
            )
        model_params = _with_decision(model_params, decision)
    model = build_model(model_params, str(model_file))
    load_weights(model, state["model_state"], str(model_file))
    return state, model_params, model


def _check_classes(model_file: str | Path, classes: list[str], shards: str | Path) -> list[str]:
    """``classes`` (the model file's), after checking that the shards hold the same ones."""
    data_classes = ShardIndex(shards).class_set
    if classes != list(data_classes.classes):
        raise UserError(
            f"{model_file}: the model predicts {len(classes)} classes ({', '.join(classes)}), "
            f"but {Path(shards) / INDEX} holds {data_classes.dataset} "
            f"({', '.join(data_classes.classes)}); evaluate a model trained on this data set"
        )
    return classes


def _write_plots(
    outputs: EvalOutputs, pred: Predictions, metrics: Mapping[str, Any], classes: list[str]
) -> None:
    """The plot files ``outputs`` asks for: confusion records and per-class accuracies without
    and with the filter (``dvc plots``), and the confusion PNG."""
    for stem, prefix in PLOT_FILES.items():
        predicted = pred.pred if prefix else pred.pred_seq
        if outputs.confusion is not None:
            write_confusion_json(
                outputs.confusion / f"{stem}.json", pred.labels, predicted, classes
            )
        if outputs.per_class is not None:
            write_plot_rows(
                outputs.per_class / f"{stem}.json",
                [
                    {"class": c, "accuracy": metrics[f"{prefix}acc_{c}"]}
                    for c in classes
                    if metrics[f"{prefix}acc_{c}"] is not None
                ],
            )
    if outputs.confusion_png is not None:
        confusion_png(outputs.confusion_png, confusion_matrices(pred, len(classes)), classes)


def evaluate_runs(
    shards: str | Path,
    fold: str,
    runs: str | Path,
    details: str | Path,
    *,
    base: BaseParams,
    data: DataParams,
    evaluate: EvaluateParams,
    record: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Evaluate the model file of every run folder under ``runs`` (:class:`RunFolder` layout:
    ``<runs>/<run>/model.pt``, with its training summary when there is one) on one fold's test
    split; each run's details go to ``<details>/<run>.json``, with ``record``. Returns the
    metrics per run."""
    folders = sorted(p for p in Path(runs).iterdir() if RunFolder(p).model.is_file())
    if not folders:
        raise UserError(f"{runs}: no run folder with a model file; run the training stages first")
    out = {}
    for folder in folders:
        run = RunFolder(folder)
        summary = run.train_outputs().summary
        out[folder.name] = evaluate_fold(
            shards,
            fold,
            run.model,
            base=base,
            data=data,
            evaluate=evaluate,
            outputs=EvalOutputs(details=Path(details) / f"{folder.name}.json"),
            progress=progress,
            training=summary if summary.is_file() else None,
            record=record,
        )
    return out


def evaluate_snippet_grid(
    shards: str | Path,
    fold: str,
    model_file: str | Path,
    details: str | Path,
    *,
    base: BaseParams,
    data: DataParams,
    evaluate: EvaluateParams,
    snippet_lens: Iterable[int],
    snippet_strides: Iterable[int],
    split: str = "test",
    training: str | Path | None = None,
    record: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[tuple[int, int], dict[str, Any]]:
    """Evaluate one model file with every snippet width L and stride S (paper Table 2) in one
    process; each setting's details go to ``<details>/L<L>-S<S>.json``, the same file a single
    :func:`evaluate_fold` with that ``decision`` writes. Returns the metrics per (L, S)."""
    out = {}
    strides = list(snippet_strides)
    for snippet_len in snippet_lens:
        for snippet_stride in strides:
            out[(snippet_len, snippet_stride)] = evaluate_fold(
                shards,
                fold,
                model_file,
                base=base,
                data=data,
                evaluate=evaluate,
                outputs=EvalOutputs(
                    details=Path(details) / f"L{snippet_len}-S{snippet_stride}.json"
                ),
                split=split,
                progress=progress,
                training=training,
                decision={"snippet_len": snippet_len, "snippet_stride": snippet_stride},
                record=record,
            )
    return out
