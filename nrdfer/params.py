"""Typed, frozen parameters loaded from ``params.yaml``.

This is the only module that reads YAML parameters. ``params.yaml`` has one top-level section
per pipeline stage plus a shared ``base`` section; each section maps onto a frozen dataclass
below. Loading is strict: an unknown key, a missing key or a value of the wrong type raises
:class:`ParamsError` naming the dotted key and the file.

Overrides use the syntax of ``dvc exp run -S``: ``section.key=value`` with the value parsed as
YAML (``model.M=3``, ``train.lr=3e-4``, ``model.dsf=false``, ``data.folds=[1,2]``).

Only ``stages/`` and ``cli.py`` call :func:`load_params`; library code receives the
dataclasses (or plain arguments) and never sees the file.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from nrdfer.errors import UserError


class ParamsError(UserError, ValueError):
    """A params file (or an override) does not match the typed schema."""


# --------------------------------------------------------------------------------------------
# Sections. Each field has a comment; every field must be present in params.yaml (no silent
# defaults), so a reader of params.yaml sees every knob the code uses.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseParams:
    """Settings shared by every stage."""

    seed: int  # master seed: data generation, splits, sampling, initialisation
    device: str  # "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"


SECTIONS: dict[str, type] = {
    "base": BaseParams,
}
"""Section name in params.yaml -> dataclass. Other modules of this file register theirs below."""


T = TypeVar("T")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert containers; raise on mismatch."""

    def fail(extra: str = "") -> ParamsError:
        got = f"{type(value).__name__} {value!r}"
        return ParamsError(
            f"{source}: key '{key}': expected {_type_name(tp)}, got {got}{extra}. "
            f"Fix the value in {source}."
        )

    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ParamsError(
                f"{source}: key '{key}': {value!r} is not one of {choices}. "
                f"Fix the value in {source}."
            )
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise fail()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ParamsError as exc:
                errors.append(exc)
        raise fail()
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise fail()
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise fail(f" (needs exactly {len(args)} items)")
            return tuple(
                _convert(v, a, f"{key}[{i}]", source)
                for i, (v, a) in enumerate(zip(args, value, strict=True))
            )
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items)  # frozen: lists become tuples
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail()
        k_tp, v_tp = get_args(tp) or (Any, Any)
        return types.MappingProxyType(
            {
                _convert(k, k_tp, key, source): _convert(v, v_tp, f"{key}.{k}", source)
                for k, v in value.items()
            }
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise fail()
        return _build(tp, value, key, source)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if tp is float:
        # YAML reads 1e-3 as a string (no dot in the mantissa); accept it like DVC/YAML 1.2 does.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise fail() from None
        raise fail()
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    raise ParamsError(f"{source}: key '{key}': unsupported annotation {_type_name(tp)}")


def _build(cls: type[T], data: Mapping[str, Any], prefix: str, source: str) -> T:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ParamsError(
            f"{source}: unknown key '{prefix}.{unknown[0]}' (known keys of '{prefix}': "
            f"{', '.join(names)}). Remove it or fix its spelling."
        )
    missing = [n for n in names if n not in data]
    if missing:
        raise ParamsError(
            f"{source}: missing key '{prefix}.{missing[0]}'. Add it to {source} "
            f"(see the project's params.yaml for its meaning)."
        )
    values = {n: _convert(data[n], hints[n], f"{prefix}.{n}", source) for n in names}
    return cls(**values)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``-S`` override ``section.key=value`` (value as YAML) into (dotted key, value)."""
    if "=" not in text:
        raise ParamsError(f"override '{text}': expected KEY=VALUE, e.g. model.M=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ParamsError(f"override '{text}': bad key '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ParamsError(f"override '{text}': value is not valid YAML ({exc})") from None
    return key, value


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a deep copy of ``raw`` with ``section.key=value`` overrides applied.

    Like ``dvc exp run -S``, an override may only change a key that exists.
    """
    import copy

    out = copy.deepcopy(dict(raw))
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                raise ParamsError(f"override '{text}': unknown key '{'.'.join(parts[: i + 1])}'")
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ParamsError(f"override '{text}': unknown key '{key}'")
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a params file with ``yaml.safe_load``; a clear error if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(
            f"{path}: params file not found. Run from the project root or pass --params PATH."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    return data


def load_section(
    path: str | Path, name: str, overrides: Sequence[str] = (), raw: Mapping[str, Any] | None = None
) -> Any:
    """Load one section of ``path`` into its dataclass (see :data:`SECTIONS`)."""
    if name not in SECTIONS:
        raise ParamsError(f"unknown params section '{name}' (known: {', '.join(SECTIONS)})")
    data = apply_overrides(raw if raw is not None else read_yaml(path), overrides)
    if name not in data:
        raise ParamsError(f"{path}: missing section '{name}'. Add it to {path}.")
    section = data[name]
    if not isinstance(section, Mapping):
        raise ParamsError(f"{path}: section '{name}' must be a mapping")
    return _build(SECTIONS[name], section, name, str(path))


def load_params(
    path: str | Path, sections: Sequence[str], overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Load the named sections of ``path`` (with ``-S`` overrides) into their dataclasses.

    Unknown top-level sections are an error too, so a typo in a section name can't hide.
    Overrides of sections not requested are still checked against the file.
    """
    raw = apply_overrides(read_yaml(path), overrides)
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ParamsError(
            f"{path}: unknown section '{unknown[0]}' (known: {', '.join(SECTIONS)}). "
            "Remove it or fix its spelling."
        )
    return {name: load_section(path, name, raw=raw) for name in sections}


def load_all(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Load and validate every section (used by tests and ``nrdfer`` sub-commands)."""
    return load_params(path, list(SECTIONS), overrides)


def to_dict(obj: Any) -> Any:
    """Plain-Python form of a params dataclass (tuples as lists), e.g. for checkpoints/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>") -> T:
    """Rebuild a section dataclass from :func:`to_dict` output (strict, like the file)."""
    name = next((k for k, v in SECTIONS.items() if v is cls), cls.__name__)
    return _build(cls, data, name, source)


__all__ = [
    "BaseParams",
    "ParamsError",
    "SECTIONS",
    "apply_overrides",
    "from_dict",
    "load_all",
    "load_params",
    "load_section",
    "parse_override",
    "read_yaml",
    "to_dict",
]
