"""Reading videos, images and frame folders; writing frame folders atomically.

Videos are decoded with PyAV. Anything PyAV cannot open or decode raises
:class:`~nrdfer.errors.UserError` naming the file, so a batch job can report one bad video and
carry on with the others.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from nrdfer.errors import UserError
from nrdfer.io import require_file

VIDEO_EXTS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")
"""File suffixes (lower case) treated as videos when walking a raw video folder."""

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""File suffixes (lower case) treated as frames inside a clip folder, or as a still image."""

_TRAILING_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_sort_key(name: str) -> tuple[int, str]:
    """Sort frames by the trailing integer of the stem (``1.jpg`` < ``2.jpg`` < ``10.jpg``)."""
    stem = Path(name).stem
    match = _TRAILING_INT.search(stem)
    return (int(match.group(1)) if match else -1, stem)


def read_video(path: str | Path, stride: int = 1, max_frames: int = 0) -> np.ndarray:
    """Decode a video into RGB frames.

    Args:
        path: the video file.
        stride: keep every ``stride``-th frame.
        max_frames: keep at most this many frames (after the stride); 0 keeps all.

    Returns:
        uint8 array (T, H, W, 3), RGB.

    Raises:
        UserError: the file is missing, cannot be decoded, or holds no frames.
    """
    import av

    path = Path(path)
    require_file(path, "video")  # missing, or a folder given as a video
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path}: no video stream in the file")
            stream = container.streams.video[0]
            for i, frame in enumerate(container.decode(stream)):
                if i % stride:
                    continue
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    except UserError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if not frames:
            raise UserError(
                f"{path}: cannot decode video ({exc}); re-encode or remove it"
            ) from None
        # A truncated file: keep what decoded before the damage.
    if not frames:
        raise UserError(f"{path}: the video holds no decodable frames; re-encode or remove it")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:  # a resolution change mid-stream: resize to the first frame's size
        h, w = frames[0].shape[:2]
        frames = [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h)) for f in frames]
    return np.stack(frames)  # (T, H, W, 3)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); UserError naming the file if unreadable."""
    path = Path(path)
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise UserError(
            f"{path}: cannot read image (missing, truncated or not an image file); "
            "replace or delete the file and re-run"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def list_videos(root: str | Path) -> list[Path]:
    """Every video under ``root`` (recursively), as paths relative to ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: video folder not found; check the path (dvc.yaml passes it)")
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and is_video(p) and not _hidden(p.relative_to(root))
    )


def list_frame_dirs(root: str | Path) -> list[Path]:
    """Every folder under ``root`` that directly holds image frames, relative to ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"{root}: frame folder tree not found; run the stage that writes it (detect_align) "
            "or check the path"
        )
    dirs = {
        p.parent.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not _hidden(p.relative_to(root))
    }
    return sorted(dirs)


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def frame_files(folder: str | Path) -> list[Path]:
    """The image frames directly inside ``folder``, ordered by their trailing integer."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    return sorted(files, key=lambda p: frame_sort_key(p.name))


def read_frames(folder: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Read a clip folder: RGB frames (T, H, W, 3) uint8, their file names, and the names of
    the frames skipped because they do not decode (as ingest skips them).

    Raises:
        UserError: no frame in the folder decodes, or the frames differ in size.
    """
    files = frame_files(folder)
    frames, names, skipped = [], [], []
    for file in files:
        try:
            frames.append(read_image(file))
            names.append(file.name)
        except UserError:
            skipped.append(file.name)
    if not frames:
        raise UserError(
            f"{folder}: no readable image frame in the folder"
            + (f" ({len(skipped)} do not decode)" if skipped else "")
            + "; add the frames or remove the folder"
        )
    if len({f.shape for f in frames}) > 1:
        raise UserError(
            f"{folder}: the frames differ in size ({', '.join(sorted({str(f.shape[1::-1]) for f in frames}))}); "
            "replace the odd ones or remove the folder"
        )
    return np.stack(frames), names, skipped  # (T, H, W, 3)


def frame_name(index: int) -> str:
    """Name of the ``index``-th (0-based) written frame: ``00001.jpg`` ..."""
    return f"{index + 1:05d}.jpg"


def write_frames_atomic(
    folder: str | Path,
    frames: np.ndarray | Sequence[np.ndarray],
    quality: int,
    names: Sequence[str] | None = None,
) -> None:
    """Write RGB frames as JPEGs into ``folder``, all or nothing.

    The frames go into a hidden temporary sibling folder that is renamed onto ``folder`` once
    every file is written, so an interrupted job never leaves a half-written clip under the
    final name (and a re-run can treat an existing folder as done).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for i, frame in enumerate(frames):
            name = names[i] if names is not None else frame_name(i)
            bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
            if not ok:
                raise OSError(f"{tmp / name}: JPEG encoding failed")
            (tmp / name).write_bytes(buf.tobytes())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
