"""ONNX export of a model file, snippet-based filter included, checked with onnxruntime.

The graph takes ``clips``: float32 (B, T, 3, S, S) RGB in [0, 1] (any batch B) and gives
``logits_seq`` (B, K) before the filter, ``logits`` (B, K) after it (Eq. 7), ``filter_fired``
(B,) bool and, for models with temporal attention, ``attention`` (B, T') (rollout, Fig. 5).

The filter is in the graph because the model's decision stage is tensor code only: snippets
are cut with a gather and the neutral logit is suppressed with ``torch.where`` (no Python
branch on data). The only Python branches are on settings (``sf`` on, eval mode), fixed at
export. The batch axis is dynamic (the snippets are cut with a gather, which the exporter
expresses for any batch); the check runs at batch 1 and 8.

The model file's class names and input settings are written into the ONNX metadata
(``nrdfer.classes``, ``nrdfer.U`` ...), so an ONNX user needs no other file.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nrdfer.errors import UserError
from nrdfer.io import atomic_path
from nrdfer.models.decision import SUPPRESSION_MARGIN
from nrdfer.params import to_dict
from nrdfer.predict.loading import LoadedModel

__all__ = ["ExportReport", "OnnxGraph", "export_onnx"]

INPUT_NAME = "clips"
OUTPUT_NAMES = ("logits_seq", "logits", "filter_fired", "attention")


class OnnxGraph(nn.Module):
    """The model as ONNX sees it: clips in, a fixed tuple of tensors out (eval mode)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, T, 3, S, S) -> logits_seq (B, K), logits (B, K), filter_fired (B,)[, attention]."""
        out = self.model(clips)
        tensors = (out.logits_seq, out.logits, out.filter_fired)
        return tensors if out.attention is None else (*tensors, out.attention)


@dataclass
class ExportReport:
    """What ``export_onnx`` wrote and how closely onnxruntime matched PyTorch.

    Attributes:
        path: the ONNX file (written only when the check passed).
        input_shape: ("batch", T, 3, S, S) of the graph's input (the batch axis is dynamic).
        check_batches: the batch sizes the check ran at.
        outputs: the graph's output names.
        opset: ONNX opset version.
        max_abs_diff: per float output, the largest |onnxruntime − PyTorch| on random input
            (``logits`` over the entries the filter did not suppress; suppressed entries must
            be suppressed in both).
        fired_mismatch: clips whose ``filter_fired`` differs.
        tolerance: the largest difference accepted.
        seconds: time of the checked forward passes, PyTorch and onnxruntime (CPU).
    """

    path: str
    input_shape: tuple[int | str, ...]
    check_batches: tuple[int, ...]
    outputs: list[str]
    opset: int
    max_abs_diff: dict[str, float]
    fired_mismatch: int
    tolerance: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        """The largest difference over all outputs."""
        return max(self.max_abs_diff.values())

    @property
    def ok(self) -> bool:
        """Within tolerance and identical filter decisions."""
        return self.worst <= self.tolerance and self.fired_mismatch == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path,
            "input_shape": list(self.input_shape),
            "check_batches": list(self.check_batches),
            "outputs": self.outputs,
            "opset": self.opset,
            "max_abs_diff": self.max_abs_diff,
            "worst": self.worst,
            "fired_mismatch": self.fired_mismatch,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "seconds": self.seconds,
        }


def _metadata(loaded: LoadedModel) -> dict[str, str]:
    spec = loaded.spec
    return {
        "nrdfer.classes": json.dumps(list(loaded.classes)),
        "nrdfer.U": str(spec.U),
        "nrdfer.V": str(spec.V),
        "nrdfer.size": str(spec.size),
        "nrdfer.input": "float32 (B, T, 3, S, S) RGB in [0, 1], aligned faces",
        "nrdfer.model_params": json.dumps(to_dict(loaded.params)),
        "nrdfer.detect_align": json.dumps(to_dict(spec.detect_align)),
        "nrdfer.enhance": json.dumps(None if spec.enhance is None else to_dict(spec.enhance)),
    }


def _compare(
    reference: list[np.ndarray], got: list[np.ndarray], names: list[str], neutral: int
) -> tuple[dict[str, float], int]:
    """Max |difference| per float output and the number of differing filter decisions."""
    ref, out = dict(zip(names, reference, strict=True)), dict(zip(names, got, strict=True))
    fired = ref["filter_fired"].astype(bool)  # (B,)
    mismatch = int((fired != out["filter_fired"].astype(bool)).sum())
    diffs: dict[str, float] = {}
    for name in names:
        if name == "filter_fired":
            continue
        a, b = ref[name].astype(np.float64), out[name].astype(np.float64)
        diff = np.abs(a - b)
        if name == "logits":
            # A suppressed neutral logit sits at least SUPPRESSION_MARGIN (1e4) below the clip's
            # max, where float32 steps are ~1e-3: compare only that it is suppressed in both.
            suppressed = np.zeros_like(diff, dtype=bool)
            suppressed[:, neutral] = fired
            floor = b.max(axis=1) - SUPPRESSION_MARGIN / 2  # (B,)
            mismatch += int((b[fired, neutral] > floor[fired]).sum())
            diff = np.where(suppressed, 0.0, diff)
        diffs[name] = float(diff.max()) if diff.size else 0.0
    return diffs, mismatch


def export_onnx(
    loaded: LoadedModel,
    path: str | Path,
    *,
    check_batches: tuple[int, ...] = (1, 8),
    opset: int = 17,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> ExportReport:
    """Export ``loaded.model`` (with its snippet-based filter) to ONNX and check it.

    The graph is traced in eval mode on CPU, checked with ``onnx.checker``, then run with
    onnxruntime on seeded random input in [0, 1] and compared with PyTorch. The file is
    written only if the check passes.

    Args:
        loaded: a model file loaded with :func:`~nrdfer.predict.loading.load_model_for_inference`.
        path: output ``.onnx`` file.
        check_batches: batch sizes the onnxruntime check runs at (the graph's batch axis is
            dynamic: any batch size runs).
        opset: ONNX opset version.
        tolerance: largest accepted |onnxruntime − PyTorch| over the outputs.
        seed: seed of the random check input.

    Raises:
        UserError: the export fails or onnxruntime differs from PyTorch beyond ``tolerance``.
    """
    path = Path(path)
    model = loaded.model.to("cpu")
    graph = OnnxGraph(model).eval()  # export() restores the wrapper's mode: it must be eval
    spec = loaded.spec
    gen = torch.Generator().manual_seed(seed)

    def clips(batch: int) -> torch.Tensor:
        return torch.rand((batch, spec.frames, 3, spec.size, spec.size), generator=gen)

    example = clips(2)
    with torch.inference_mode():
        outputs = graph(example)
    names = list(OUTPUT_NAMES[: len(outputs)])
    with atomic_path(path) as tmp:
        _write_graph(tmp, graph, example, names, opset, loaded)
        diffs, mismatch, seconds = _check_graph(
            tmp, graph, clips, check_batches, names, loaded.params.neutral_index
        )
        report = ExportReport(
            path=str(path),
            input_shape=("batch", spec.frames, 3, spec.size, spec.size),
            check_batches=tuple(check_batches),
            outputs=names,
            opset=opset,
            max_abs_diff=diffs,
            fired_mismatch=mismatch,
            tolerance=tolerance,
            seconds=seconds,
        )
        if not report.ok:
            raise UserError(
                f"{path}: onnxruntime differs from PyTorch (max abs difference "
                f"{report.worst:.3g} > tolerance {tolerance:g}, filter decisions differing: "
                f"{mismatch}); nothing written"
            )
    return report


def _write_graph(
    tmp: Path,
    graph: OnnxGraph,
    example: torch.Tensor,
    names: list[str],
    opset: int,
    loaded: LoadedModel,
) -> None:
    """Trace ``graph`` on ``example`` (B, T, 3, S, S) into the ONNX file ``tmp`` (batch axis
    dynamic), add the model file's metadata and check the file with ``onnx.checker``."""
    import onnx

    try:
        with warnings.catch_warnings():
            # Tracer notes on shape checks (constant at export) and the legacy-exporter
            # deprecation notice: expected, and the onnxruntime check is the judge.
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.simplefilter("ignore", category=DeprecationWarning)
            torch.onnx.export(
                graph,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=names,
                dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *names]},
            )
    except Exception as exc:  # an operator the exporter cannot express
        raise UserError(
            f"{loaded.path}: ONNX export failed ({type(exc).__name__}: {exc})"
        ) from None
    proto = onnx.load(str(tmp))
    for key, value in _metadata(loaded).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))


def _check_graph(
    tmp: Path,
    graph: OnnxGraph,
    clips: Callable[[int], torch.Tensor],
    check_batches: tuple[int, ...],
    names: list[str],
    neutral: int,
) -> tuple[dict[str, float], int, dict[str, float]]:
    """Run the ONNX file ``tmp`` with onnxruntime and ``graph`` with PyTorch on ``clips(b)``
    for each batch size b of ``check_batches``: the largest difference per float output, the
    differing filter decisions and the seconds of each (see :func:`_compare`)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    diffs: dict[str, float] = {}
    mismatch, ort_seconds, torch_seconds = 0, 0.0, 0.0
    for batch in check_batches:
        x = clips(batch)
        start = time.perf_counter()
        with torch.inference_mode():
            reference = [t.numpy() for t in graph(x)]
        torch_seconds += time.perf_counter() - start
        start = time.perf_counter()
        got = session.run(names, {INPUT_NAME: x.numpy()})
        ort_seconds += time.perf_counter() - start
        one, wrong = _compare(reference, got, names, neutral)
        diffs = {k: max(v, diffs.get(k, 0.0)) for k, v in one.items()}
        mismatch += wrong
    return diffs, mismatch, {"torch": torch_seconds, "onnxruntime": ort_seconds}
