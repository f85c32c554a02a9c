"""The vocabulary of allowed values: a field's type with its range, and the words a message
uses for them (``Int(1, 32)`` is an integer in [1, 32], described as "an integer in [1, 32]").
"""

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from pydantic import AfterValidator, BeforeValidator

from nrdfer.errors import UserError


class ParamsError(UserError, ValueError):
    """A params file, an override or a model file holds a value the schema does not allow."""


def Rule(text: str, check: Callable[[Any], bool]) -> AfterValidator:  # noqa: N802
    """Field metadata: ``check`` the value once its type is right; ``text`` says what is allowed."""

    def after(value: Any) -> Any:
        if not check(value):
            raise ValueError(text)
        return value

    after.text = text  # type: ignore[attr-defined]
    return AfterValidator(after)


def describe(tp: Any) -> str:
    """What a field's type allows, in words."""
    if tp is bool:
        return "true or false"
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, get_args(tp)))
    return next(m.func.text for m in reversed(get_args(tp)) if hasattr(m.func, "text"))


def allowed(cls: type, name: str) -> str:
    """What field ``name`` of section ``cls`` allows, in words."""
    return describe(get_type_hints(cls, include_extras=True)[name])


def Int(lo: int, hi: int | None = None, *, even: bool = False, zero: str = "") -> Any:  # noqa: N802
    """An integer in [lo, hi] (no upper bound when ``hi`` is None), even if asked; ``zero``:
    0 is allowed too and means that."""
    text = f"an {'even ' * even}integer " + (f">= {lo}" if hi is None else f"in [{lo}, {hi}]")
    text = f"0 ({zero}) or {text}" if zero else text

    def check(v: int) -> bool:
        return (zero and v == 0) or (lo <= v and (hi is None or v <= hi) and not (even and v % 2))

    return Annotated[int, Rule(text, check)]


def Float(lo: float, hi: float, *, gt: bool = False, lt: bool = False) -> Any:  # noqa: N802
    """A finite number in [lo, hi]; ``gt``/``lt`` leave ``lo``/``hi`` out."""
    text = f"a number in {'[('[gt]}{lo}, {hi}{'])'[lt]}"
    return Annotated[
        float, Rule(text, lambda v: (lo < v if gt else lo <= v) and (v < hi if lt else v <= hi))
    ]


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value  # YAML lists -> frozen tuples


def Pair(item: Any, what: str = "[min, max] with min <= max") -> Any:  # noqa: N802
    """Two values, ordered unless ``what`` says otherwise (e.g. ``[width, height]``)."""
    rule = Rule(
        f"a list {what}, each {describe(item)}", lambda v: "min" not in what or v[0] <= v[1]
    )
    return Annotated[tuple[item, item], BeforeValidator(_as_tuple), rule]


def Seq(item: Any, min_len: int = 1, length: int = 0) -> Any:  # noqa: N802
    """A list of ``length`` values, or of at least ``min_len`` distinct values."""
    size = f"of {length} values" if length else f"of {min_len} or more distinct values"

    def check(v: tuple) -> bool:
        return len(v) == length if length else len(v) >= min_len and len(set(v)) == len(v)

    return Annotated[
        tuple[item, ...],
        BeforeValidator(_as_tuple),
        Rule(f"a list {size}, each {describe(item)}", check),
    ]


def Text(text: str, pattern: str) -> Any:  # noqa: N802
    """A string matching ``pattern`` (described by ``text``)."""
    return Annotated[str, Rule(text, lambda v: re.fullmatch(pattern, v) is not None)]
