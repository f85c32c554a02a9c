"""Reading videos, images and frame folders; writing frame folders atomically.

Videos are decoded with PyAV by one reader, :class:`VideoStream` (frames on demand, with their
timestamps; ``nrdfer predict`` streams a long video through it); :func:`video_frames` (the
frames one at a time, for the detect_align stage and ``nrdfer faces``) and :func:`read_video`
(a short clip's frames in memory) are built on it.
Anything PyAV cannot open or decode raises :class:`~nrdfer.errors.UserError` naming the file,
so a batch job can report one bad video and carry on with the others; a truncated file keeps
what decoded before the damage. Frames come out as they are shown: a display matrix (a phone's
portrait video stores landscape frames with "rotate 90") is applied
(:func:`nrdfer.data.frames.display_orientation`, shared with the ingest's reader).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nrdfer.data.frames import ImageError, display_orientation, orient, read_image_file
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


FALLBACK_FPS = 25.0
"""Frame rate assumed when a container states none (timestamps then come from frame counts)."""


@dataclass(frozen=True)
class DecodedFrame:
    """One kept frame of a video.

    Attributes:
        position: index among the kept frames (after the stride), 0-based.
        index: frame number in the video, 0-based.
        time: presentation time in seconds.
        rgb: uint8 (H, W, 3) RGB, or None when the caller did not ask for this frame's pixels.
    """

    position: int
    index: int
    time: float
    rgb: np.ndarray | None


class VideoStream:
    """Iterate over a video's frames (every ``stride``-th), decoding on demand.

    Args:
        path: the video file.
        stride: keep every ``stride``-th frame (``detect_align.frame_stride``).
    """

    def __init__(self, path: str | Path, stride: int = 1) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.path = Path(path)
        self.stride = stride
        self.fps = FALLBACK_FPS  # set from the container on the first pass

    def frames(
        self, want: Container[int] | None = None, stop: int | None = None
    ) -> Iterator[DecodedFrame]:
        """Decode the kept frames in order.

        Args:
            want: positions whose pixels are needed (None: all); other frames are decoded (the
                codec needs them) but not converted to RGB.
            stop: stop after this position (None: decode to the end).

        Raises:
            UserError: the file is missing, cannot be opened or holds no decodable frame.
        """
        import av

        require_file(self.path, "video")  # missing, or a folder given as a video
        yielded = 0
        orientation: tuple[int, bool] | None = None  # the stream's, from its first frame
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise UserError(f"{self.path}: no video stream in the file")
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"  # frame + slice threads: much faster for 720p
                rate = stream.average_rate or stream.guessed_rate
                self.fps = float(rate) if rate else FALLBACK_FPS
                for index, frame in enumerate(container.decode(stream)):
                    if index % self.stride:
                        continue
                    position = index // self.stride
                    time = frame.time if frame.time is not None else index / self.fps
                    need = want is None or position in want
                    rgb = None
                    if need:  # as shown: the display matrix applied
                        if orientation is None:  # read once: PyAV's side data costs memory
                            orientation = display_orientation(frame)
                        rgb = orient(frame.to_ndarray(format="rgb24"), *orientation)
                    yield DecodedFrame(position, index, float(time), rgb)
                    yielded += 1
                    if stop is not None and position >= stop:
                        return
        except UserError:
            raise
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if not yielded:
                raise UserError(
                    f"{self.path}: cannot decode video ({exc}); re-encode it or check the file"
                ) from None
            # A truncated file: keep what decoded before the damage (as read_video does).
        if not yielded:
            raise UserError(f"{self.path}: the video holds no decodable frames; re-encode it")

    def frame_count(self) -> int:
        """Kept frames as the container states them (after the stride); 0 when it does not say
        or cannot be opened (:meth:`frames` then reports the error)."""
        import av

        try:
            with av.open(str(self.path)) as container:
                n = container.streams.video[0].frames if container.streams.video else 0
        except (av.error.FFmpegError, OSError, ValueError):
            return 0
        return math.ceil(n / self.stride) if n > 0 else 0

    @property
    def frame_time(self) -> float:
        """Seconds between two kept frames."""
        return self.stride / self.fps


def video_frames(path: str | Path, stride: int = 1, max_frames: int = 0) -> Iterator[np.ndarray]:
    """A video's RGB frames (H, W, 3) uint8, one at a time, all of the first frame's size (a
    resolution change mid-stream is resized away).

    Args:
        path: the video file.
        stride: keep every ``stride``-th frame.
        max_frames: keep at most this many frames (after the stride); 0 keeps all.

    Raises:
        UserError: the file is missing, cannot be decoded, or holds no frames.
    """
    stop = max_frames - 1 if max_frames > 0 else None
    size: tuple[int, int] | None = None
    for frame in VideoStream(path, stride).frames(stop=stop):
        rgb = frame.rgb
        if size is None:
            size = rgb.shape[:2]
        elif rgb.shape[:2] != size:
            rgb = cv2.resize(rgb, (size[1], size[0]))
        yield rgb


def read_video(path: str | Path, stride: int = 1, max_frames: int = 0) -> np.ndarray:
    """Decode a video into RGB frames (all in memory: short clips and tests; the detect_align
    stage and ``nrdfer faces`` stream :func:`video_frames`, ``nrdfer predict``
    :class:`VideoStream`).

    Returns:
        uint8 array (T, H, W, 3), RGB.

    Raises:
        UserError: the file is missing, cannot be decoded, or holds no frames.
    """
    return np.stack(list(video_frames(path, stride, max_frames)))  # (T, H, W, 3)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); UserError naming the file if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: cannot read image (missing or not a file); check the path")
    try:
        image = read_image_file(path)
    except ImageError as exc:
        raise UserError(f"{path}: cannot read image: {exc}") from None
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
