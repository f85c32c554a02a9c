"""Streaming video decoding with timestamps (PyAV), and the window timeline of a long video.

``nrdfer.preprocess.video.read_video`` holds every frame of a clip in memory, which suits
AFEW's short clips but not a minute of 720p video (4 GB of RGB). Inference therefore decodes
twice in a stream: once to detect faces in every frame (frames are dropped after detection) and
once to warp only the frames the test-protocol sampling picks. Error handling is that of
``read_video``: a file PyAV cannot open, or that holds no decodable frame, raises
:class:`~nrdfer.errors.UserError` naming it; a truncated file keeps what decoded before the
damage.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrdfer.errors import UserError
from nrdfer.io import require_file

__all__ = ["DecodedFrame", "VideoStream", "window_bounds"]

FALLBACK_FPS = 25.0
"""Frame rate assumed when a container states none (timestamps then come from frame counts)."""

TAIL_MERGE_SHARE = 0.5
"""A last window shorter than this share of ``--window`` is merged into the window before it."""


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
                    rgb = frame.to_ndarray(format="rgb24") if need else None
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

    @property
    def frame_time(self) -> float:
        """Seconds between two kept frames."""
        return self.stride / self.fps


def window_bounds(
    times: Sequence[float], window: float, frame_time: float
) -> list[tuple[int, int]]:
    """Cut a video into consecutive windows of ``window`` seconds for the timeline.

    Frame ``i`` belongs to window ``⌊(times[i] − times[0]) / window⌋``. A last window covering
    less than :data:`TAIL_MERGE_SHARE` of ``window`` is merged into the one before it, so no
    window is classified from a handful of frames.

    Args:
        times: presentation times (s) of the kept frames, non-decreasing.
        window: window length in seconds; <= 0 disables the timeline.
        frame_time: seconds covered by one kept frame.

    Returns:
        ``(start, end)`` position ranges (end exclusive), or ``[]`` when the video fits in
        one window (no timeline).
    """
    if window <= 0 or not times:
        return []
    t0 = times[0]
    slots = [math.floor((t - t0) / window) for t in times]
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(slots) + 1):
        if i == len(slots) or slots[i] != slots[start]:
            bounds.append((start, i))
            start = i
    if len(bounds) >= 2:
        last_start, last_end = bounds[-1]
        covered = times[last_end - 1] - times[last_start] + frame_time
        if covered < TAIL_MERGE_SHARE * window:
            bounds[-2:] = [(bounds[-2][0], last_end)]
    return bounds if len(bounds) >= 2 else []
