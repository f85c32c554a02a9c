"""Fixtures for the predict/export tests: a tiny NR-DFERNet model file and short videos."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from nrdfer.checkpoint import save_checkpoint
from nrdfer.labels import CLASSES
from nrdfer.model_file import model_file_state, preprocess_record
from nrdfer.models import build_model
from nrdfer.params import load_section, to_dict
from tests.conftest import ROOT

FPS = 10
"""Frame rate of the generated videos."""


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster than two on the shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model_params(**changes):
    """A demo-sized NR-DFERNet (8 frames of 32 px, narrow widths) from params.yaml's section."""
    base = dict(
        frames=8,
        image_size=32,
        widths=(8, 16, 32),
        dynamic_blocks=1,
        M=1,
        N=1,
        spatial_heads=2,
        spatial_head_dim=8,
        spatial_mlp_dim=16,
        temporal_heads=2,
        temporal_head_dim=8,
        temporal_mlp_dim=16,
    )
    base.update(changes)
    return dataclasses.replace(load_section(ROOT / "params.yaml", "model"), **base)


def write_model_file(path: Path, *, enhance: bool = True, **model_changes) -> Path:
    """A model file as the train stage writes it (random weights, U x V = 4 x 2, 32 px)."""
    torch.manual_seed(0)
    params = tiny_model_params(**model_changes)
    model = build_model(params)
    data = dataclasses.replace(load_section(ROOT / "params.yaml", "data"), U=4, V=2, size=32)
    detect = dataclasses.replace(
        load_section(ROOT / "params.yaml", "detect_align"), batch_size=8, output_size=64
    )
    enh = load_section(ROOT / "params.yaml", "enhance") if enhance else None
    save_checkpoint(
        path,
        model_file_state(
            model.state_dict(),
            model_params=to_dict(params),
            classes=CLASSES,
            preprocess=preprocess_record(data, detect, enh),
            info={"selection": "last", "selected_epoch": 1},
        ),
    )
    return path


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    return write_model_file(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="session")
def face_patch() -> np.ndarray:
    """The astronaut's head from skimage, 85 x 100 px."""
    import skimage.data

    photo = skimage.data.astronaut()  # (512, 512, 3) RGB
    return cv2.resize(photo[20:220, 140:310], (85, 100), interpolation=cv2.INTER_AREA)


def write_video(path: Path, frames: np.ndarray, fps: int = FPS) -> Path:
    """RGB frames (T, H, W, 3) -> an MJPG .avi."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def face_frames(patch: np.ndarray, n: int, brightness: float = 1.0) -> np.ndarray:
    """n frames (160 x 192) with the face moving and zooming slightly on a gray background."""
    frames = []
    for t in range(n):
        scale = 1.0 + 0.1 * np.sin(t / 3.0)
        face = cv2.resize(patch, None, fx=scale, fy=scale)
        frame = np.full((160, 192, 3), 90, np.uint8)
        x, y = 30 + (t % 12) * 3, 20 + (t % 7) * 2
        frame[y : y + face.shape[0], x : x + face.shape[1]] = face
        frames.append((frame * brightness).astype(np.uint8))
    return np.stack(frames)  # (n, 160, 192, 3)


@pytest.fixture(scope="session")
def videos(tmp_path_factory, face_patch) -> dict[str, Path]:
    """short (1.2 s), long (4 s), dark (0.8 s), no_face and unreadable videos."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, size=(6, 160, 192, 3), dtype=np.uint8) + 100
    bad = root / "broken.mp4"
    bad.write_bytes(rng.integers(0, 256, size=2048, dtype=np.uint8).tobytes())
    return {
        "short": write_video(root / "short.avi", face_frames(face_patch, 12)),
        "long": write_video(root / "long.avi", face_frames(face_patch, 40)),
        "dark": write_video(root / "dark.avi", face_frames(face_patch, 8, brightness=0.3)),
        "no_face": write_video(root / "empty.avi", noise),
        "broken": bad,
    }
