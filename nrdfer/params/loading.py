"""Reading params: strict YAML (a key written twice is an error, ``1e-3`` is a number), ``-S``
overrides, and the sections built with messages that say where a bad value came from."""

import copy
import dataclasses
import json
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from nrdfer.params.rules import ParamsError, allowed
from nrdfer.params.sections import OVERLAYS, SECTIONS

T = TypeVar("T")


def _build(cls: type[T], data: Any, section: str, origin: Callable[[str], str], hint: str) -> T:
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if not isinstance(data, Mapping):
        raise ParamsError(f"{origin(section)}: section '{section}' must be a mapping{hint}")
    wrong = [
        f"unknown key '{section}.{k}' (known keys: {', '.join(fields)}); remove it or fix its "
        "spelling"
        for k in data
        if k not in fields
    ] + [f"missing key '{section}.{k}'; add it" for k in fields if k not in data]
    if wrong:
        raise ParamsError(f"{origin(section)}: {wrong[0]}{hint}")
    try:
        return cls(**data)
    except pydantic.ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        key, value = f"{section}.{name}", _shown(json.dumps(to_dict(data[name]), default=str))
        raise ParamsError(
            f"{origin(key)}: {key} = {value}: must be {allowed(cls, name)}{hint}"
        ) from None


MAX_YAML_BYTES = 1_000_000
"""Largest params file, preset or ``-S`` value read (params.yaml is about 20 KB): a bigger one
is refused before it is read."""

MAX_YAML_DEPTH = 50
"""Deepest nesting of lists and mappings in params YAML (params.yaml nests 3 levels)."""


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``, plus ``1e-3`` read as a number (YAML 1.2, as DVC writes it).

    Aliases (``*name``) are refused: a few KB of nested aliases expand to billions of values
    ("billion laughs"), and ``&a [*a]`` is a list that holds itself. Nesting deeper than
    :data:`MAX_YAML_DEPTH` is refused too.
    """

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in params; write the value out",
                self.peek_event().start_mark,
            )
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested deeper than {MAX_YAML_DEPTH} levels",
                self.peek_event().start_mark,
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _once(node: Any, path: str, source: str) -> None:
    """Refuse a mapping key written twice (PyYAML would keep the last one silently)."""
    lines: dict[str, int] = {}
    for key, value in node.value if isinstance(node, yaml.MappingNode) else []:
        if not isinstance(key, yaml.ScalarNode):
            raise ParamsError(
                f"{source}: a key at line {key.start_mark.line + 1} is a list or mapping; "
                "keys are plain names"
            )
        dotted, line = f"{path}.{key.value}".lstrip("."), key.start_mark.line + 1
        if key.value in lines:
            raise ParamsError(
                f"{source}: key '{dotted}' is written twice (lines {lines[key.value]} and "
                f"{line}); keep one"
            )
        lines[key.value] = line
        _once(value, dotted, source)
    for item in node.value if isinstance(node, yaml.SequenceNode) else []:
        _once(item, path, source)


def parse_yaml(text: str, source: str, path: str = "") -> Any:
    """YAML text -> values; malformed YAML, a key written twice, an alias, nesting deeper
    than :data:`MAX_YAML_DEPTH` or text over :data:`MAX_YAML_BYTES` raise ParamsError."""
    if len(text) > MAX_YAML_BYTES:
        raise ParamsError(
            f"{source}: {len(text):,} characters of YAML, over the limit of {MAX_YAML_BYTES:,} "
            "(nrdfer.params.MAX_YAML_BYTES); a params file is a few KB"
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _once(node, path, source)
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        text = _shown(" ".join(str(exc).split()), 300)
        raise ParamsError(f"{source}: not valid YAML ({text})") from None
    except ParamsError:
        raise
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        why = "an integer of over 4300 digits" if "4300" in str(exc) else _shown(str(exc))
        raise ParamsError(f"{source}: a value cannot be read ({why}); fix it") from None
    finally:
        loader.dispose()


def read_yaml_text(path: str | Path, what: str = "params file") -> str:
    """The text of a YAML file, refusing before reading anything that is not a regular file
    (a folder, a FIFO that would block, ``/dev/zero``), over :data:`MAX_YAML_BYTES`, or not
    UTF-8 text."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ParamsError(
            f"{path}: {what} not found; run from the project root or pass the right path"
        ) from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read the {what} ({exc.strerror}); check it") from None
    if stat.S_ISDIR(info.st_mode):
        raise ParamsError(f"{path}: is a folder, not a {what}; pass the YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise ParamsError(f"{path}: not a regular file (a device or pipe); pass a YAML {what}")
    if info.st_size > MAX_YAML_BYTES:
        raise ParamsError(
            f"{path}: {info.st_size:,} bytes, over the limit of {MAX_YAML_BYTES:,} for a {what} "
            "(nrdfer.params.MAX_YAML_BYTES); pass the right file"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read the {what} ({exc.strerror}); check it") from None
    if len(data) > MAX_YAML_BYTES:  # grew since the stat
        raise ParamsError(f"{path}: over the limit of {MAX_YAML_BYTES:,} bytes for a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(
            f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a params file; a clear error if it is missing, malformed or has a duplicate key."""
    if Path(path).is_dir():
        raise ParamsError(f"{path}: is a folder, not a params file; pass --params PATH/params.yaml")
    if not Path(path).exists():
        raise ParamsError(
            f"{path}: params file not found; run from the project root or pass --params PATH"
        )
    data = parse_yaml(read_yaml_text(path), str(path)) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    return data


def parse_override(text: str, flag: str = "-S") -> tuple[str, Any]:
    """Parse one override ``section.key=value`` (value as YAML) into (dotted key, value)."""
    key, _, raw = (part.strip() for part in text.partition("="))
    if "=" not in text or not key or "" in key.split("."):
        raise ParamsError(f"{flag} {_shown(text)}: expected KEY=VALUE, e.g. model.M=3")
    return key, (parse_yaml(raw, f"{flag} {_shown(text)}", key) if raw else "")


def _shown(text: str, limit: int = 200) -> str:
    """``text`` for a message, cut to about ``limit`` characters."""
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text):,} characters)"


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str], *, flag: str = "-S") -> dict:
    """A deep copy of ``raw`` with overrides applied; like ``dvc exp run -S``, an override may
    only change a key that exists."""
    out = copy.deepcopy(dict(raw))
    for text in overrides:
        key, value = parse_override(text, flag)
        *parents, last = key.split(".")
        node: Any = out
        for i, part in enumerate(parents + [last]):
            if not isinstance(node, dict) or part not in node:
                raise ParamsError(
                    f"{flag} {text}: unknown key '{'.'.join(key.split('.')[: i + 1])}'"
                )
            node = node[part] if i < len(parents) else node
        node[last] = value
    return out


def load_params(
    path: str | Path, sections: Sequence[str], overrides: Sequence[str] = (), *, flag: str = "-S"
) -> dict[str, Any]:
    """Load the named sections of ``path``, with ``overrides`` (given as ``flag``: ``-S`` or
    ``--set``), into their dataclasses. Unknown sections in the file are an error too."""
    raw = apply_overrides(read_yaml(path), overrides, flag=flag)
    unknown = [k for k in [*raw, *sections] if k not in SECTIONS]
    if unknown:
        raise ParamsError(
            f"{path}: unknown section '{unknown[0]}' (known: {', '.join(SECTIONS)}); remove it "
            "or fix its spelling"
        )
    keys = [(text.split("=", 1)[0].strip(), text) for text in overrides]

    def origin(key: str) -> str:  # the last override touching ``key``, else the file
        hits = [t for k, t in keys if f"{key}.".startswith(f"{k}.") or k.startswith(f"{key}.")]
        return f"{flag} {_shown(hits[-1])}" if hits else str(path)

    def build(name: str) -> Any:
        if name not in raw:
            raise ParamsError(f"{path}: missing section '{name}'; add it")
        if name not in OVERLAYS or not isinstance(raw[name], Mapping):
            return _build(SECTIONS[name], raw[name], name, origin, "")
        under = to_dict(build(OVERLAYS[name]))  # checked as its own section first
        return _build(SECTIONS[name], {**under, **raw[name]}, name, origin, "")

    built = {name: build(name) for name in sections}
    if "model" in built and "data" in built:
        check_clip_shape(built["model"], built["data"], origin)
    return built


def check_clip_shape(model: Any, data: Any, origin: Callable[[str], str] = lambda key: "") -> None:
    """The model's frame count and input size are the clips ``data`` makes: ``model.frames`` =
    ``data.U`` x ``data.V`` and ``model.image_size`` = ``data.size``; else a ParamsError naming
    both keys (and where each value came from) before any work."""

    def where(*keys: str) -> str:
        places = dict.fromkeys(origin(k) for k in keys if origin(k))
        return f" ({', '.join(places)})" if places else ""

    if model.frames != data.U * data.V:
        raise ParamsError(
            f"model.frames = {model.frames} but data.U x data.V = {data.U} x {data.V} = "
            f"{data.U * data.V}{where('model.frames', 'data.U', 'data.V')}: the model reads the "
            f"U x V frames sampled per clip; set model.frames to {data.U * data.V} or change "
            "data.U / data.V"
        )
    if model.image_size != data.size:
        raise ParamsError(
            f"model.image_size = {model.image_size} but data.size = {data.size}"
            f"{where('model.image_size', 'data.size')}: the model reads data.size x data.size "
            f"frames; set both to the same value"
        )


def load_section(path: str | Path, name: str, overrides: Sequence[str] = ()) -> Any:
    return load_params(path, [name], overrides)[name]


def load_all(path: str | Path, overrides: Sequence[str] = (), *, flag: str = "-S") -> dict:
    return load_params(path, list(SECTIONS), overrides, flag=flag)


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
    """A section from :func:`to_dict` output (e.g. stored in model file ``source``), with the
    same checks as params.yaml."""
    name = next((k for k, v in SECTIONS.items() if v is cls), cls.__name__)
    hint = "; the file is damaged or from another nrdfer version: re-run training"
    return _build(cls, data, name, lambda key: source, hint)
