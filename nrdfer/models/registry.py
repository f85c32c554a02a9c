"""Model registry: ``build_model(params)`` dispatches on ``params.name``.

A model module registers a builder ``(ModelParams) -> nn.Module`` with :func:`register`, naming
the keys of the ``model`` section the builder reads (:func:`model_keys`): a baseline reads a
handful, so dvc.yaml's baseline stages declare only those and NR-DFERNet's settings never
re-run them, and fine-tuning compares only those keys with the initial model file. The
built-in modules (NR-DFERNet and, when present, the baselines package) are imported on the
first lookup, so ``import nrdfer.models.registry`` stays cheap and free of import cycles.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from nrdfer.errors import UserError

if TYPE_CHECKING:
    from nrdfer.params import ModelParams

__all__ = [
    "Builder",
    "ModelParamsError",
    "UnknownModelError",
    "available_models",
    "build_model",
    "MAX_MODEL_PARAMETERS",
    "load_weights",
    "model_keys",
    "parameter_count",
    "register",
]

Builder = Callable[["ModelParams"], nn.Module]

_BUILDERS: dict[str, Builder] = {}
_READS: dict[str, frozenset[str]] = {}
_COUNTS: dict[str, Callable[[ModelParams], int]] = {}
_BUILTIN_MODULES = ("nrdfer.models.nrdfernet", "nrdfer.models.baselines")
_loaded = False


class UnknownModelError(UserError, KeyError):
    """``model.name`` names no registered model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelParamsError(UserError, ValueError):
    """The ``model`` section's values do not fit together (a constructor refused them)."""


MAX_MODEL_PARAMETERS = 10**9
"""The largest model :func:`build_model` builds, in parameters (4 GB of float32 weights; the
paper's NR-DFERNet has 31.3 million). Larger ``model`` params (from params.yaml or a model
file) are refused before anything is allocated."""


def register(
    name: str, reads: Iterable[str], parameters: Callable[[ModelParams], int] | None = None
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name`` (``model.name`` in params.yaml);
    ``reads``: the ``model`` keys the builder uses (a test checks it against a build);
    ``parameters``: the model's parameter count from its params, without building it
    (:func:`parameter_count` builds on the ``meta`` device for a model without one)."""

    def deco(builder: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"model name '{name}' is registered twice")
        _BUILDERS[name] = builder
        _READS[name] = frozenset(reads)
        if parameters is not None:
            _COUNTS[name] = parameters
        return builder

    return deco


def parameter_count(params: ModelParams) -> int:
    """Parameters of the model ``params`` describe, without allocating it: the model's own
    formula (NR-DFERNet: :func:`~nrdfer.models.nrdfernet.nrdfernet_parameters`), else a build on
    PyTorch's ``meta`` device (shapes only, no memory, no random numbers drawn).

    Raises:
        UnknownModelError: no model of that name is registered.
    """
    _load_builtins()
    if params.name not in _BUILDERS:
        raise UnknownModelError(
            f"unknown model '{params.name}' (model.name); known: {', '.join(sorted(_BUILDERS))}"
        )
    if params.name in _COUNTS:
        return _COUNTS[params.name](params)
    import torch

    with torch.device("meta"):
        model = _BUILDERS[params.name](params)
    return sum(p.numel() for p in model.parameters())


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    _loaded = True


def available_models() -> list[str]:
    """Registered model names, sorted."""
    _load_builtins()
    return sorted(_BUILDERS)


def model_keys(name: str) -> frozenset[str]:
    """The ``model`` params keys that define model ``name`` (``name`` included)."""
    _load_builtins()
    if name not in _READS:
        raise UnknownModelError(
            f"unknown model '{name}' (model.name); known: {', '.join(sorted(_BUILDERS))}"
        )
    return _READS[name] | {"name"}


def build_model(params: ModelParams, source: str = "") -> nn.Module:
    """Build the model named ``params.name`` from the ``model`` params section.

    Args:
        params: the ``model`` section.
        source: where the params come from (a model file), for the messages.

    Raises:
        UnknownModelError: no model of that name is registered (the message lists the known ones).
        ModelParamsError: the section's values do not fit together (e.g. a snippet wider than
            the clip), or describe a model of more than :data:`MAX_MODEL_PARAMETERS` (checked
            by counting, before anything is allocated).
    """
    where = f"{source}: " if source else ""
    try:
        count = parameter_count(params)
        if count > MAX_MODEL_PARAMETERS:
            raise ModelParamsError(
                f"{where}the model section (model.name = {params.name!r}, model.widths = "
                f"{list(params.widths)}, ...) describes a model of {count:,} parameters, more than "
                f"the {MAX_MODEL_PARAMETERS:,} nrdfer builds; make it smaller"
                + ("" if not source else " (the file is damaged or not for this nrdfer)")
            )
        return _BUILDERS[params.name](params)
    except ValueError as exc:  # a constructor's own check: values that do not fit together
        if isinstance(exc, ModelParamsError):
            raise
        raise ModelParamsError(
            f"{where}model.name = {params.name!r}: the model section's values do not fit "
            f"together ({exc}); change one of them"
        ) from None


def load_weights(model: nn.Module, weights: Mapping[str, Any], source: str) -> None:
    """``model.load_state_dict(weights)``, or one line naming ``source`` and the first key that
    is missing, unexpected or of another shape (the weights do not fit the model's params).

    Raises:
        UserError: the weights do not fit the model.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    shapes = [
        f"{k}: {tuple(weights[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in weights and tuple(getattr(weights[k], "shape", ())) != tuple(v.shape)
    ]
    problems = [
        f"{len(keys)} {what}, e.g. {keys[0]}"
        for keys, what in (
            (missing, "missing"),
            (unexpected, "unexpected"),
            (shapes, "of another shape"),
        )
        if keys
    ]
    if problems:
        raise UserError(
            f"{source}: the weights do not fit the recorded model params ({'; '.join(problems)}); "
            "the file is damaged or from another nrdfer version: re-run training"
        )
    model.load_state_dict(weights)
