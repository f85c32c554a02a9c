"""Reading a clip's frames from disk: a folder of images (numeric order) or a video file.

A video's frames come out as they are shown: its display matrix (a phone's portrait video
stores landscape frames with "rotate 90") is applied (:func:`display_orientation`,
:func:`orient`), here and in every reader of :mod:`nrdfer.preprocess.video`.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")

_TRAILING_INT = re.compile(r"(\d+)(?!.*\d)")

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image (width x height) decoded from a file: 64 megapixels (an 8000 x 8000 photo,
192 MB decoded). A header claiming more (a decompression bomb, a damaged header) is refused
before anything is decoded: a frame is then skipped as unreadable, a still image refused."""

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageError(ValueError):
    """An image file that is not decoded; the message says why (without the file name)."""


def header_size(data: bytes | memoryview | np.ndarray) -> tuple[int, int] | None:
    """(width, height) as a PNG, JPEG, WebP or BMP header states it, or None for other formats
    or a header this reader does not follow (the decoder then checks the decoded size)."""
    buf = memoryview(data).cast("B")
    try:
        if buf[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack_from(">II", buf, 16)
        if buf[:4] == b"RIFF" and buf[8:12] == b"WEBP":
            return _webp_size(buf)
        if buf[:2] == b"BM":
            w, h = struct.unpack_from("<ii", buf, 18)
            return abs(w), abs(h)
        if buf[:2] == b"\xff\xd8":
            pos = 2
            while pos + 4 <= len(buf) and buf[pos] == 0xFF:
                marker = buf[pos + 1]
                if marker == 0xFF:  # fill byte
                    pos += 1
                elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
                    pos += 2
                elif marker in _JPEG_SOF:
                    h, w = struct.unpack_from(">HH", buf, pos + 5)
                    return w, h
                else:
                    pos += 2 + struct.unpack_from(">H", buf, pos + 2)[0]
    except struct.error:  # a header cut short
        return None
    return None


def _webp_size(buf: memoryview) -> tuple[int, int] | None:
    """(width, height) of a WebP file's first chunk: lossy, lossless or extended."""
    chunk = buf[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack_from("<HH", buf, 26)
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = struct.unpack_from("<I", buf, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(buf[24:27], "little") + 1
        return w, int.from_bytes(buf[27:30], "little") + 1
    return None


def decode_image_bytes(data: np.ndarray, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file's bytes (uint8 array) with OpenCV, refusing oversized images.

    The one place images and frames read from files are decoded. The size stated in the
    header is checked against :data:`MAX_IMAGE_PIXELS` before decoding, and the decoded size
    after (for formats whose header is not read here).

    Raises:
        ImageError: empty, not an image, damaged, or over the pixel limit.
    """
    if data.size == 0:
        raise ImageError("empty file; replace or delete it")
    size = header_size(data)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageError(_too_large(*size))
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error:  # e.g. a header claiming more pixels than OpenCV's own limit
        image = None
    if image is None or image.size == 0:
        raise ImageError(
            "not a readable image (truncated, damaged or another format); replace or delete it"
        )
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ImageError(_too_large(image.shape[1], image.shape[0]))
    return image


def _too_large(width: int, height: int) -> str:
    return (
        f"the image is {width} x {height} pixels, over the limit of {MAX_IMAGE_PIXELS:,} "
        "(nrdfer.data.frames.MAX_IMAGE_PIXELS); shrink it or leave it out"
    )


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


def read_image_file(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """An image file decoded by :func:`decode_image_bytes` (BGR uint8 by default).

    Raises:
        ImageError: unreadable (also a missing file or folder) or over the pixel limit.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"cannot read the file ({exc.strerror or exc}); check it") from None
    return decode_image_bytes(data, flags)


def decode_image(path: Path) -> np.ndarray | None:
    """A BGR uint8 frame, or None when the file is unreadable (corrupt, truncated, empty,
    a header that does not parse or claims more than :data:`MAX_IMAGE_PIXELS`)."""
    try:
        return read_image_file(path)
    except ImageError:
        return None


def orientation_of_matrix(matrix: Sequence[float]) -> tuple[int, bool]:
    """Quarter turns (counter-clockwise) and mirroring that show a frame as a display matrix
    says: the frame is shown as ``fliplr(rot90(frame, turns))`` when ``mirror``, else as
    ``rot90(frame, turns)``.

    Args:
        matrix: the 3 x 3 display matrix, row-major (FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``,
            the mp4 ``tkhd`` matrix), as numbers; scale and translation do not matter.

    FFmpeg's convention: a counter-clockwise rotation by ``r`` has ``(m0, m1, m3, m4) =
    (cos r, -sin r, sin r, cos r)`` (PyAV's ``frame.rotation`` reads back ``r``), a mirror
    applied after it negates the first column (``m0``, ``m3``); a vertical mirror is a
    horizontal one after half a turn. A matrix that is not a multiple of a quarter turn is
    taken as the nearest one.
    """
    m0, m1, m3, m4 = (float(matrix[i]) for i in (0, 1, 3, 4))
    scale = max(abs(m0), abs(m1), abs(m3), abs(m4))
    if not math.isfinite(scale) or scale == 0:
        return 0, False
    mirror = m0 * m4 - m1 * m3 < 0  # a reflection flips the sign of the determinant
    if mirror:
        m0, m3 = -m0, -m3
    angle = math.degrees(math.atan2(m3, m0))  # counter-clockwise
    return round(angle / 90) % 4, mirror


def display_orientation(frame: Any) -> tuple[int, bool]:
    """:func:`orientation_of_matrix` of a PyAV frame's display matrix side data ((0, False)
    without one). The matrix is the stream's (the container's track header): read it from the
    first frame only; reading PyAV's ``side_data`` of every frame of a 720p video held on to
    hundreds of MB."""
    from av.sidedata.sidedata import Type

    data = frame.side_data.get(Type.DISPLAYMATRIX)
    if data is None:
        return 0, False
    raw = bytes(data)
    if len(raw) < 36:
        return 0, False
    return orientation_of_matrix(np.frombuffer(raw[:36], dtype="<i4").astype(np.float64))


def orient(rgb: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """A decoded frame (H, W, 3) as it is shown (:func:`orientation_of_matrix`)."""
    if not turns and not mirror:
        return rgb
    out = np.rot90(rgb, turns)  # counter-clockwise, (H, W) -> (W, H) for odd turns
    return np.ascontiguousarray(out[:, ::-1] if mirror else out)


def iter_video(path: Path) -> Iterator[np.ndarray]:
    """Decode a video's frames (BGR uint8) with PyAV, as they are shown (the display matrix
    applied); raises ``ValueError`` if unreadable."""
    import av

    orientation: tuple[int, bool] | None = None  # the stream's, from its first frame
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if orientation is None:  # read once: PyAV's side data costs memory
                    orientation = display_orientation(frame)
                yield orient(frame.to_ndarray(format="bgr24"), *orientation)
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
