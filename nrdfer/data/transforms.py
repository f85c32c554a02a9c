"""Clip augmentation as in the authors' code, in OpenCV/numpy, identical for every frame of a clip.

Training (datasets.md, "Augmentation"): one random-sized crop per clip (area 90–100 % of the
frame, aspect 5/7–7/5) resized to ``size x size``, horizontal flip with p = 0.5, brightness
jitter (factor uniform in ``[max(0, 1 - b), 1 + b]``, b = 0.6) and a rotation uniform in
``±rotation`` degrees. The crop, resize, flip and rotation are composed into ONE affine map per
clip and applied with a single ``cv2.warpAffine`` per frame (pixels that fall outside the
source frame are black, as after the authors' rotation). Test: resize to ``size x size``.

Frames come in and go out as uint8 ``(H, W, 3)`` arrays; the output clip is uint8
``(T, 3, size, size)``, the shared batch format.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ClipAugment:
    """Augmentation parameters (the ``data`` section of params.yaml carries them).

    Attributes:
        size: output height = width in pixels (112 in the paper).
        crop_area: range of the crop's share of the frame area.
        crop_aspect: range of the crop's aspect ratio (width / height).
        flip_p: probability of a horizontal flip.
        brightness: brightness jitter strength b.
        rotation: maximum absolute rotation in degrees.
    """

    size: int
    crop_area: tuple[float, float]
    crop_aspect: tuple[float, float]
    flip_p: float
    brightness: float
    rotation: float


@dataclass(frozen=True)
class ClipParams:
    """The random draws shared by every frame of one clip."""

    box: tuple[int, int, int, int]  # crop x0, y0, w, h in source pixels
    flip: bool
    brightness: float  # multiplicative factor
    angle: float  # degrees, counter-clockwise


def random_crop_box(
    height: int,
    width: int,
    area: tuple[float, float],
    aspect: tuple[float, float],
    rng: np.random.Generator,
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """A random-sized crop box (x0, y0, w, h), torchvision ``RandomResizedCrop`` style.

    Falls back to the largest centred box of an in-range aspect when no draw fits.
    """
    total = height * width
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(attempts):
        target = total * rng.uniform(area[0], area[1])
        ratio = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            y0 = int(rng.integers(0, height - h + 1))
            x0 = int(rng.integers(0, width - w + 1))
            return x0, y0, w, h
    ratio = width / height
    if ratio < aspect[0]:
        w, h = width, int(round(width / aspect[0]))
    elif ratio > aspect[1]:
        w, h = int(round(height * aspect[1])), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def draw_clip_params(
    height: int, width: int, aug: ClipAugment, rng: np.random.Generator
) -> ClipParams:
    """Draw one crop, flip, brightness and angle for a whole clip."""
    box = random_crop_box(height, width, aug.crop_area, aug.crop_aspect, rng)
    flip = bool(rng.random() < aug.flip_p)
    factor = float(rng.uniform(max(0.0, 1.0 - aug.brightness), 1.0 + aug.brightness))
    angle = float(rng.uniform(-aug.rotation, aug.rotation))
    return ClipParams(box=box, flip=flip, brightness=factor, angle=angle)


def clip_affine(p: ClipParams, size: int) -> np.ndarray:
    """The 2x3 map source pixel -> output pixel: crop+resize, then flip, then rotate."""
    x0, y0, w, h = p.box
    sx, sy = size / w, size / h
    # pixel centres: x_out = (x_in - x0 + 0.5) * sx - 0.5
    crop = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5], [0, 0, 1]])
    flip = np.eye(3)
    if p.flip:
        flip = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0, 0, 1]])
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    rot = np.vstack([cv2.getRotationMatrix2D(centre, p.angle, 1.0), [0, 0, 1]])
    return (rot @ flip @ crop)[:2]


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> np.ndarray:
    """Output pixel coordinates (2, S, S) as float32: rows (y), then columns (x)."""
    return np.mgrid[0:size, 0:size].astype(np.float32)


def affine_maps(matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point remap tables of a 2x3 output<-source affine map, computed once per clip.

    ``cv2.remap`` with these tables does what ``cv2.warpAffine`` does, about 3x faster per
    frame because the coordinates are computed once for all T frames.
    """
    inverse = cv2.invertAffineTransform(matrix)  # output pixel -> source pixel
    ys, xs = _grid(size)  # (S, S) each
    map_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    map_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return cv2.convertMaps(map_x.astype(np.float32), map_y.astype(np.float32), cv2.CV_16SC2)


def _to_clip(frames: Sequence[np.ndarray]) -> np.ndarray:
    clip = np.stack(frames)  # (T, S, S, 3)
    return np.ascontiguousarray(clip.transpose(0, 3, 1, 2))  # (T, 3, S, S)


def augment_clip(
    frames: Sequence[np.ndarray], aug: ClipAugment, rng: np.random.Generator
) -> np.ndarray:
    """Training augmentation with one set of random parameters for all frames.

    Args:
        frames: T uint8 frames (H, W, 3) of the same size.
        aug: augmentation settings.
        rng: the clip's random generator.

    Returns:
        uint8 array (T, 3, size, size).
    """
    height, width = frames[0].shape[:2]
    p = draw_clip_params(height, width, aug, rng)
    map1, map2 = affine_maps(clip_affine(p, aug.size), aug.size)
    out = [
        cv2.remap(f, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        for f in frames
    ]
    clip = _to_clip(out)  # (T, 3, S, S)
    if p.brightness != 1.0:
        flat = clip.reshape(clip.shape[0] * 3, -1)  # (T·3, S·S): cv2 takes 2-D arrays
        clip = cv2.convertScaleAbs(flat, alpha=p.brightness).reshape(clip.shape)
    return clip


def resize_clip(frames: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Test transform: resize every frame to ``size x size``; returns uint8 (T, 3, size, size)."""
    out = [
        f
        if f.shape[:2] == (size, size)
        else cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR)
        for f in frames
    ]
    return _to_clip(out)
