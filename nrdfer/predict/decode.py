"""The window timeline of a long video: ``nrdfer predict --window`` cuts the video into windows
and answers for each. Decoding is :class:`nrdfer.preprocess.video.VideoStream`'s (the one PyAV
reader of the project)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["window_bounds"]

TAIL_MERGE_SHARE = 0.5
"""A last window shorter than this share of ``--window`` is merged into the window before it."""


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
