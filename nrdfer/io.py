"""Atomic file writes and the small, flat, deterministic metric/plot files.

Every file the pipeline produces is written to a temporary file in the same directory and
renamed into place, so an interrupted run never leaves a partial file under an output name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Use for writers that want a file name (``torch.save``, ``cv2.imwrite``, pandas).
    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` atomically on close."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing ('w' or 'wb')")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _clean(value: Any) -> Any:
    """JSON-safe, deterministic form: floats rounded to 6 digits, NaN/inf to None."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _clean(value.item())
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        seq = value.tolist() if hasattr(value, "tolist") else value
        return [_clean(v) for v in seq]
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json(path: str | Path, data: Any, *, sort_keys: bool = False) -> None:
    """Write ``data`` as indented JSON, atomically, with floats rounded for stable diffs."""
    text = json.dumps(_clean(data), indent=2, sort_keys=sort_keys, allow_nan=False)
    write_text(path, text + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc}); delete it and re-run its stage"
        ) from None


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> None:
    """A flat metrics file for ``dvc metrics show``: keys kept in the given order."""
    write_json(path, metrics)


def write_plot_rows(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """A list of flat records (one per x value) for ``dvc plots``, as JSON."""
    write_json(path, list(rows))
