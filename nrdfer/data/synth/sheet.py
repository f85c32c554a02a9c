"""The contact sheet: a few clips per class, a row of frames each, so a person can look."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from nrdfer.labels import CLASSES

_LABEL_WIDTH = 150  # pixels of the label column
_ROW_HEIGHT = 96  # pixels per clip row


def contact_sheet(
    rows: Sequence[tuple[int, str, np.ndarray]], path: Path, names: Sequence[str] = CLASSES
) -> None:
    """Write a PNG with one row per clip.

    Args:
        rows: ``(label, caption, frames)`` with frames (K, H, W, 3) uint8 RGB.
        path: output PNG.
        names: class names, indexed by ``label`` (default DFEW's).
    """
    cv2.setNumThreads(1)  # no OpenCV thread pool in a process that forks synth workers later
    lines = []
    for label, caption, frames in rows:
        scale = _ROW_HEIGHT / frames.shape[1]
        w = int(round(frames.shape[2] * scale))
        tiles = [cv2.resize(f, (w, _ROW_HEIGHT), interpolation=cv2.INTER_AREA) for f in frames]
        strip = np.concatenate(tiles, axis=1)  # (row, K * w, 3)
        head = np.full((_ROW_HEIGHT, _LABEL_WIDTH, 3), 255, np.uint8)
        cv2.putText(
            head, names[label], (6, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA
        )
        cv2.putText(
            head, caption, (6, 66), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA
        )
        lines.append(np.concatenate([head, strip], axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [
        np.pad(line, ((0, 2), (0, width - line.shape[1]), (0, 0)), constant_values=255)
        for line in lines
    ]
    sheet = np.concatenate(lines, axis=0)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{path}: could not encode the contact sheet")
    path.write_bytes(buf.tobytes())
