"""Fixtures for the preprocessing tests: a real face photo and tiny generated videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ASTRONAUT_LANDMARKS = np.array(
    [(204, 100), (247, 103), (223, 129), (202, 138), (244, 140)], dtype=np.float32
)
"""Landmarks of the face in skimage's astronaut photo (the issue's reference numbers)."""

FACE_BOX = (140, 20, 310, 220)
"""A region (x1, y1, x2, y2) of the astronaut photo holding her whole head."""


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()  # (512, 512, 3) RGB uint8


@pytest.fixture(scope="session")
def face_patch(astronaut) -> np.ndarray:
    """The astronaut's head, scaled to 85x100 px."""
    x1, y1, x2, y2 = FACE_BOX
    return cv2.resize(astronaut[y1:y2, x1:x2], (85, 100), interpolation=cv2.INTER_AREA)


def scene(patch: np.ndarray, positions, size=(160, 192), brightness: float = 1.0) -> np.ndarray:
    """A gray (H, W) canvas with ``patch`` pasted at each (x, y) in ``positions``."""
    h, w = size
    frame = np.full((h, w, 3), 90, np.uint8)
    for x, y in positions:
        ph, pw = patch.shape[:2]
        frame[y : y + ph, x : x + pw] = patch
    return (frame * brightness).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """Write RGB frames as an MJPG .avi (what AFEW-like raw clips look like)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_shown_as(path: Path, shown: np.ndarray, degrees: int = 0, hflip: bool = False) -> Path:
    """A lossless video (FFV1, .mkv) whose display matrix (PyAV ``set_display_rotation``:
    ``degrees`` counter-clockwise, then a mirror) shows ``shown`` (T, H, W, 3): the frames
    stored are ``shown`` turned back, as a phone stores a portrait video."""
    import av

    stored = shown[:, :, ::-1] if hflip else shown
    stored = np.ascontiguousarray(np.rot90(stored, -(degrees // 90), axes=(1, 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height = stored.shape[2], stored.shape[1]
        stream.pix_fmt = "bgr0"  # lossless RGB: the shown frames come back bit for bit
        if degrees or hflip:
            stream.set_display_rotation(degrees, hflip=hflip)
        for frame in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def moving_face_frames(patch: np.ndarray, n: int = 5, brightness: float = 1.0) -> np.ndarray:
    return np.stack(
        [scene(patch, [(30 + 6 * t, 25 + 3 * t)], brightness=brightness) for t in range(n)]
    )


@pytest.fixture
def one_thread():
    """Run torch on one thread (the test machines are shared; oversubscription is slow)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
