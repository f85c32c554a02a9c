"""Reading a clip's frames from disk: a folder of images (numeric order) or a video file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")

_TRAILING_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_sort_key(path: Path) -> tuple[int, int, str]:
    """Sort by the trailing integer of the stem (``00001_00012.jpg`` -> 12), never lexically.

    Names without digits sort after numbered ones, by name.
    """
    match = _TRAILING_INT.search(path.stem)
    if match is None:
        return (1, 0, path.name)
    return (0, int(match.group(1)), path.name)


def list_frames(folder: Path) -> list[Path]:
    """Image files of a clip folder in numeric frame order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=frame_sort_key)


def decode_image(path: Path) -> np.ndarray | None:
    """A BGR uint8 frame, or None when the file is unreadable (corrupt, truncated, empty)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return image


def iter_video(path: Path) -> Iterator[np.ndarray]:
    """Decode a video's frames (BGR uint8) with PyAV; raises ``ValueError`` if unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="bgr24")
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"{path}: cannot decode video ({exc})") from exc


def count_video_frames(path: Path, decode: bool) -> int:
    """Frames of a video: decoded one by one (exact), or from the container header (fast)."""
    if decode:
        return sum(1 for _ in iter_video(path))
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            n = int(container.streams.video[0].frames or 0)
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"{path}: cannot open video ({exc})") from exc
    return n if n > 0 else count_video_frames(path, decode=True)


def read_clip(path: Path) -> tuple[list[np.ndarray], int]:
    """All readable frames of a clip (folder or video) in order, and the number of bad frames.

    A video that fails part-way keeps the frames decoded before the failure (counted as 1 bad).
    """
    if path.is_dir():
        frames, bad = [], 0
        for file in list_frames(path):
            image = decode_image(file)
            if image is None:
                bad += 1
            else:
                frames.append(image)
        return frames, bad
    frames = []
    try:
        for frame in iter_video(path):
            frames.append(frame)
    except ValueError:
        return frames, 1
    return frames, 0
