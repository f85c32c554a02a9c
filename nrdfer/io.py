"""Atomic file writes, checked reads of JSON and torch files, and the small, flat,
deterministic metric/plot files.

The model file's format lives in :mod:`nrdfer.model_file`, the training checkpoint's in
:mod:`nrdfer.checkpoint`.

Every file the pipeline produces is written to a temporary file in the same directory and
renamed into place, so an interrupted run never leaves a partial file under an output name.
Files get the permissions of a plain ``open`` (0666 less the umask: 0644 under umask 022), so
colleagues sharing a project folder can read them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import secrets
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from nrdfer.errors import UserError

OWNER_MARKER = ".nrdfer-owner"
"""File an nrdfer command leaves in every output folder it may later replace or clean."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Use for writers that want a file name (``torch.save``, ``cv2.imwrite``, pandas).
    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # tempfile.mkstemp would create the file 0600 whatever the umask
        tmp_path = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
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


def require_file(path: str | Path, what: str) -> Path:
    """``path`` if it is a file; else a UserError saying it is missing or is a folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a {what}; give the {what} itself")
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    return path


def load_torch(path: str | Path, what: str, fix: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a file that is not one (corrupt, another
    format, or pickled objects that could run code) is a UserError naming it and ``fix``."""
    import pickle

    import torch

    path = require_file(path, what)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # corrupt, or not a torch file
            raise UserError(
                f"{path}: not a readable {what} (corrupt or another format); {fix}"
            ) from None
        raise UserError(
            f"{path}: refused: the {what} holds pickled Python objects besides tensors and "
            f"plain values, which could run code when loaded; {fix}"
        ) from None
    except Exception as exc:  # truncated/corrupt file, not a torch file
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "unreadable"
        raise UserError(
            f"{path}: not a readable {what} ({type(exc).__name__}: {reason}); {fix}"
        ) from None


def check_writable(path: str | Path, option: str) -> Path:
    """Refuse, before any work, an output file the user named that cannot be written:
    a folder, a path under a file, or a place without write permission."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name, e.g. {path / 'out.png'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: no permission to write in {parent}; choose another path")
    return path


_DISK_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
}


@contextlib.contextmanager
def disk_errors(folder: str | Path, rerun: str) -> Iterator[None]:
    """Turn a write failing inside the block for want of space or permission (disk full, quota,
    read-only file system, no permission) into a UserError naming the path: ``<path>: cannot
    write (the disk is full); free space or choose another folder, then <rerun>``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        where = exc.filename or folder  # a failed write() on an open file names no file
        raise UserError(
            f"{where}: cannot write ({_DISK_ERRORS[exc.errno]}); free space or make it "
            f"writable, or choose another folder, then {rerun}"
        ) from None


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Inside the block SIGTERM raises SystemExit(143) in this process, so ``finally`` clauses
    run (temp folders removed) before it ends, as for Ctrl-C. Processes forked inside the
    block keep the default (they end at once). No effect outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:  # a forked worker: end as SIGTERM does by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def claim_dir(
    path: str | Path, owner: str, *, create: bool = True, legacy: str | None = None
) -> Path:
    """Make ``path`` an output folder of ``owner`` (e.g. "nrdfer synth"), which may then replace
    or clean it: a folder that does not exist, is empty, or holds ``owner``'s marker file (or
    ``legacy``, an entry only ``owner`` writes, from before the marker existed). ``create``:
    make the folder and write the marker.

    Anything else (a project folder given as ``--out .``, another command's output) is never
    touched: UserError naming the folder, before any work.
    """
    path = Path(path)
    marker = path / OWNER_MARKER
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file; {owner} writes a folder there, give another path")
    if path.is_dir() and any(path.iterdir()):
        mine = marker.is_file() and marker.read_text(encoding="utf-8").strip() == owner
        if not mine and not (legacy and (path / legacy).exists()):
            raise UserError(
                f"{path}: not an output folder of {owner} (it holds other files and no "
                f"{OWNER_MARKER} of {owner}), so it is never replaced or cleaned; give a new or "
                "empty folder, or move its contents away"
            )
    if create:
        path.mkdir(parents=True, exist_ok=True)
        write_text(marker, owner + "\n")
    return path


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


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file: part of a run's identity (shard index, initial weights), so a
    persisted checkpoint is resumed from only when the data and the starting point match."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
