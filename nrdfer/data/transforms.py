"""Clip augmentation as in the authors' code, in OpenCV/numpy, identical for every frame of a clip.

Training (datasets.md, "Augmentation"): one random-sized crop per clip (area 90–100 % of the
frame, aspect 5/7–7/5) resized to ``size x size``, horizontal flip with p = 0.5, brightness
jitter (factor uniform in ``[max(0, 1 - b), 1 + b]``, b = 0.6) and a rotation uniform in
``±rotation`` degrees. The crop, resize, flip and rotation are composed into ONE affine map per
clip and applied with one ``cv2.warpAffine`` per frame (pixels that fall outside the
source frame are black, as after the authors' rotation). Test: resize to ``size x size``.

Frames come in as uint8 ``(H, W, 3)`` arrays; the output clip is uint8 ``(T, 3, size, size)``,
the shared batch format. The same maps can instead be applied after batching, on the training
device (:func:`warp_batch`, ``data.augment_on: device``), which takes the per-pixel work off
the DataLoader workers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


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

    Falls back to the largest centred box of an in-range aspect when no draw fits. All
    uniforms come from one generator call (with a 90-100 % area and aspects 5/7-7/5 only
    ~15 % of the draws fit a square frame; one numpy call per draw cost ~30 µs a clip).
    """
    total = height * width
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    u = rng.random(2 * attempts + 2).tolist()  # areas, log-aspects, then y0 and x0
    for k in range(attempts):
        target = total * (area[0] + (area[1] - area[0]) * u[k])
        ratio = math.exp(log_lo + (log_hi - log_lo) * u[attempts + k])
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            y0 = int(u[-2] * (height - h + 1))  # uniform in 0 .. height - h
            x0 = int(u[-1] * (width - w + 1))
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
    u_flip, u_bright, u_angle = rng.random(3).tolist()
    low = max(0.0, 1.0 - aug.brightness)
    factor = low + (1.0 + aug.brightness - low) * u_bright
    angle = aug.rotation * (2.0 * u_angle - 1.0)
    return ClipParams(box=box, flip=u_flip < aug.flip_p, brightness=factor, angle=angle)


def clip_affine(p: ClipParams, size: int) -> np.ndarray:
    """The 2x3 map source pixel -> output pixel: crop+resize, then flip, then rotate.

    Composed in closed form (plain floats: a tenth of the time of three numpy matrices).
    """
    x0, y0, w, h = p.box
    sx, sy = size / w, size / h
    # crop + resize, pixel centres: x1 = (x - x0 + 0.5) * sx - 0.5, y1 likewise
    tx, ty = (0.5 - x0) * sx - 0.5, (0.5 - y0) * sy - 0.5
    ax = sx  # x1 = ax * x + tx
    if p.flip:  # x2 = (size - 1) - x1
        ax, tx = -ax, (size - 1.0) - tx
    # rotation by p.angle degrees counter-clockwise about the output centre c, as
    # cv2.getRotationMatrix2D: [[a, b, (1 - a) c - b c], [-b, a, b c + (1 - a) c]]
    theta = math.radians(p.angle)
    a, b = math.cos(theta), math.sin(theta)
    c = (size - 1) / 2.0
    rx, ry = (1 - a) * c - b * c, b * c + (1 - a) * c
    return np.array(
        [
            [a * ax, b * sy, a * tx + b * ty + rx],
            [-b * ax, a * sy, -b * tx + a * ty + ry],
        ]
    )


def warp_clip_into(
    frames: Sequence[np.ndarray], matrix: np.ndarray, brightness: float, out: np.ndarray
) -> np.ndarray:
    """Warp T frames with one 2x3 map and scale their brightness, written into ``out``.

    One ``cv2.warpAffine`` per frame (fixed-point bilinear, black outside the frame) into an
    interleaved scratch frame, a saturating brightness scale of it, and a split into the planes
    of ``out``. (Measured per 112² frame on one core: warpAffine 31 µs, a remap with
    per-clip tables 40 µs + 54 µs per clip for the tables; the split 4 µs, a numpy transpose
    10 µs.)

    Args:
        frames: T uint8 frames (H, W, 3) of one size.
        matrix: the 2x3 map source pixel -> output pixel (:func:`clip_affine`).
        brightness: multiplicative factor (1 = none); results are rounded and saturated.
        out: uint8 (T, 3, S, S) destination (e.g. a slot of a shared-memory batch).

    Returns:
        ``out``.
    """
    if not out.flags.c_contiguous or out.dtype != np.uint8:
        raise ValueError("out must be a C-contiguous uint8 (T, 3, S, S) array")
    size = out.shape[-1]
    tmp = np.empty((size, size, 3), np.uint8)  # (S, S, 3): cv2 writes interleaved channels
    for t, frame in enumerate(frames):
        warp_frame_into(frame, matrix, brightness, out[t], tmp)
    return out


def warp_frame_into(
    frame: np.ndarray, matrix: np.ndarray, brightness: float, out: np.ndarray, tmp: np.ndarray
) -> None:
    """One frame of :func:`warp_clip_into`: uint8 (H, W, 3) -> ``out`` uint8 (3, S, S).

    ``tmp`` is an (S, S, 3) uint8 scratch frame (reused from frame to frame).
    """
    size = out.shape[-1]
    cv2.warpAffine(
        frame, matrix, (size, size), dst=tmp, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    if brightness != 1.0:  # per frame, while it is in cache: ~40 % faster than per clip
        cv2.convertScaleAbs(tmp, dst=tmp, alpha=brightness)
    cv2.split(tmp, [out[0], out[1], out[2]])  # (3, S, S), in place


def augment_clip(
    frames: Sequence[np.ndarray],
    aug: ClipAugment,
    rng: np.random.Generator,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Training augmentation with one set of random parameters for all frames.

    Args:
        frames: T uint8 frames (H, W, 3) of the same size.
        aug: augmentation settings.
        rng: the clip's random generator.
        out: optional uint8 (T, 3, size, size) destination.

    Returns:
        uint8 array (T, 3, size, size).
    """
    height, width = frames[0].shape[:2]
    p = draw_clip_params(height, width, aug, rng)
    if out is None:
        out = np.empty((len(frames), 3, aug.size, aug.size), np.uint8)
    return warp_clip_into(frames, clip_affine(p, aug.size), p.brightness, out)


def resize_clip(
    frames: Sequence[np.ndarray], size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Test transform: resize every frame to ``size x size``; returns uint8 (T, 3, size, size)."""
    if out is None:
        out = np.empty((len(frames), 3, size, size), np.uint8)
    for t, f in enumerate(frames):
        resize_frame_into(f, out[t])
    return out


def resize_frame_into(frame: np.ndarray, out: np.ndarray) -> None:
    """One frame of :func:`resize_clip`: uint8 (H, W, 3) -> ``out`` uint8 (3, S, S)."""
    size = out.shape[-1]
    if frame.shape[:2] != (size, size):
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR)
    cv2.split(frame, [out[0], out[1], out[2]])  # (3, S, S), in place


# ---- augmentation after batching, on the training device (data.augment_on: device) ----


def _normalised_theta(matrix: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """``affine_grid`` theta (align_corners=False) of a source->output pixel map."""
    inverse = np.vstack([cv2.invertAffineTransform(matrix), [0, 0, 1]])  # output px -> source px
    out_px = np.array([[size / 2, 0, (size - 1) / 2], [0, size / 2, (size - 1) / 2], [0, 0, 1]])
    src_norm = np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])
    return (src_norm @ inverse @ out_px)[:2]


def warp_batch(
    frames: torch.Tensor,
    matrices: torch.Tensor,
    brightness: torch.Tensor,
    size: int,
    backend: str = "auto",
) -> torch.Tensor:
    """The training augmentation of a whole batch, on the device that holds ``frames``.

    Same maps and brightness as :func:`augment_clip` (drawn in the loader), applied after
    batching: ``torch`` (``affine_grid`` + bilinear ``grid_sample``, black outside the
    frame) on accelerators, OpenCV's fixed-point remap on the CPU. The two agree to
    within interpolation rounding (a grey level or two).

    Args:
        frames: uint8 (B, T, H, W, 3), frames zero-padded to a common H x W at the
            bottom/right.
        matrices: float (B, 2, 3) source pixel -> output pixel maps.
        brightness: float (B,) multiplicative factors.
        size: output side S.
        backend: ``auto`` (OpenCV on CPU, torch elsewhere), ``torch`` or ``opencv``.

    Returns:
        uint8 (B, T, 3, S, S) on ``frames.device``.
    """
    B, T, H, W, _ = frames.shape
    if backend == "auto":
        backend = "opencv" if frames.device.type == "cpu" else "torch"
    if backend == "opencv":
        src = frames.cpu().numpy()
        out = np.empty((B, T, 3, size, size), np.uint8)
        for b in range(B):
            m = matrices[b].double().cpu().numpy()
            warp_clip_into(list(src[b]), m, float(brightness[b]), out[b])
        return torch.from_numpy(out).to(frames.device)
    if backend != "torch":
        raise ValueError(f"backend must be auto, torch or opencv, got {backend!r}")
    theta = np.stack(
        [_normalised_theta(m, H, W, size) for m in matrices.double().cpu().numpy()]
    )  # (B, 2, 3)
    theta = torch.as_tensor(theta, dtype=torch.float32, device=frames.device)
    theta = theta.repeat_interleave(T, dim=0)  # (B·T, 2, 3)
    x = frames.reshape(B * T, H, W, 3).permute(0, 3, 1, 2).float()  # (B·T, 3, H, W)
    grid = F.affine_grid(theta, [B * T, 3, size, size], align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    scale = brightness.to(frames.device, torch.float32).repeat_interleave(T)  # (B·T,)
    y = (y * scale.view(-1, 1, 1, 1)).round_().clamp_(0, 255)
    return y.to(torch.uint8).view(B, T, 3, size, size)
