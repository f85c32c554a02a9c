"""One clip as pixels: a cluttered scene, a moving person, lighting, camera noise.

:func:`render_clip` turns a :class:`ClipSpec` (what the clip shows, decided by the layout
writer from the parameters) into RGB frames plus the true face box of the labelled person in
every frame, which is the ground truth for the detection test and the DFEW face crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nrdfer.data.synth.expressions import (
    apex_actions,
    frame_actions,
    idle_actions,
    temporal_profile,
)
from nrdfer.data.synth.face import Actions, Identity, draw_person, face_box, sample_identity
from nrdfer.data.synth.noise import draw_occluder
from nrdfer.labels import NUM_CLASSES

_PAN = 0.08  # background is rendered this much larger per side so the camera can pan
_NOISE_PAD = 32  # the per-clip sensor-noise bank is this much larger than a frame
_BLUR_SIGMA = 0.5  # optical blur in pixels (per 112 px of face-crop scale it is similar)


@dataclass(frozen=True)
class ClipSpec:
    """What one clip shows (all randomness of its content comes from the clip's own seed)."""

    label: int  # expression index (expressions.EXPRESSIONS; DFEW's class index for DFEW)
    n_frames: int  # number of frames
    size: tuple[int, int]  # scene (width, height) in pixels
    face_size: tuple[float, float]  # face-oval half-height as a share of the height (min, max)
    position_spread: float  # how far from the centre the face may sit (share of width/height)
    head_motion: float  # scale of head shift / zoom / roll (1 = default amplitude)
    intensity: tuple[float, float]  # apex intensity range (1 = prototype)
    n1_kind: str | None  # N1 noise kind (see noise.N1_KINDS) or None
    n1_frames: tuple[int, ...]  # frames replaced by N1 noise
    n2_window: tuple[int, int] | None  # (start, length) of the expressive window for N2 clips
    dark_gain: float | None  # brightness factor of a dark (low-light) clip, None = normal
    # the expressions of the data set's classes (N1 other_person shows another one of them)
    expressions: tuple[int, ...] = tuple(range(NUM_CLASSES))


@dataclass
class RenderedClip:
    """Frames and ground truth of one rendered clip."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    boxes: np.ndarray  # (T, 4) float (x0, y0, x1, y1): the labelled person's face box
    visible: np.ndarray  # (T,) bool: the labelled face is shown unoccluded (not an N1 frame)
    profile: np.ndarray  # (T,) expression strength in [0, 1]


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A cluttered indoor/outdoor-like backdrop (RGB uint8, (H, W, 3)): wall, floor, objects."""
    img = np.empty((height, width, 3), np.uint8)
    wall = rng.uniform(40, 220, 3)
    # vertical gradient on the wall: (H, 1, 1) * (3,) -> (H, 1, 3)
    ramp = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(0.85, 1.15), height)[:, None, None]
    img[:] = np.clip(ramp * wall, 0, 255).astype(np.uint8)
    horizon = int(height * rng.uniform(0.65, 0.9))
    img[horizon:] = np.clip(rng.uniform(30, 180, 3), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(4, 11))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = (
            int(rng.integers(width // 12, width // 3)),
            int(rng.integers(height // 12, height // 2)),
        )
        if kind == 0:  # furniture / window / picture frame
            cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
            if rng.random() < 0.5:
                cv2.rectangle(img, (x, y), (x + w, y + h), (20, 20, 20), 2)
        elif kind == 1:  # lamp / plant / plate
            cv2.ellipse(img, (x, y), (w // 2, h // 3), 0, 0, 360, colour, -1, cv2.LINE_AA)
        else:  # shelves, cables, edges
            cv2.line(img, (x, y), (x + w, y + int(rng.integers(-h, h))), colour, 2, cv2.LINE_AA)
    texture = rng.normal(0, 6, (height // 4 + 1, width // 4 + 1, 1))
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(img + texture, 0, 255).astype(np.uint8)


def _wobble(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random trajectory in [-1, 1], shape (n,): two sinusoids of random phase."""
    t = np.arange(n)
    f = rng.uniform(0.02, 0.12, 2)  # cycles per frame
    p = rng.uniform(0, 2 * np.pi, 2)
    w = rng.uniform(0.3, 1.0)
    return (np.sin(2 * np.pi * f[0] * t + p[0]) + w * np.sin(2 * np.pi * f[1] * t + p[1])) / (1 + w)


@dataclass(frozen=True)
class _Pose:
    cx: np.ndarray  # (T,) face centre x
    cy: np.ndarray  # (T,) face centre y
    size: np.ndarray  # (T,) face half-height in pixels
    angle: np.ndarray  # (T,) in-plane rotation in degrees


def _pose(spec: ClipSpec, rng: np.random.Generator, aspect: float) -> _Pose:
    w, h = spec.size
    n = spec.n_frames
    base = rng.uniform(*spec.face_size) * h
    size = base * (1 + 0.08 * spec.head_motion * _wobble(n, rng))
    cx0 = w * (0.5 + rng.uniform(-1, 1) * spec.position_spread)
    cy0 = h * (0.45 + rng.uniform(-1, 1) * spec.position_spread * 0.5)
    cx = cx0 + 0.35 * base * spec.head_motion * _wobble(n, rng)
    cy = cy0 + 0.2 * base * spec.head_motion * _wobble(n, rng)
    angle = rng.uniform(-6, 6) + 8 * spec.head_motion * _wobble(n, rng)
    # keep the whole face oval (with hair) inside the frame
    margin_x, margin_y = size * (aspect + 0.25), size * 1.15
    cx = np.clip(cx, margin_x, w - margin_x)
    cy = np.clip(cy, margin_y, h - margin_y)
    return _Pose(cx, cy, size, angle)


def _lighting(spec: ClipSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame brightness (T,) and a fixed side-light map (H, W, 3) with a colour tint."""
    w, h = spec.size
    n = spec.n_frames
    level = rng.uniform(0.85, 1.1) * (1 + rng.uniform(0, 0.08) * _wobble(n, rng))
    if spec.dark_gain is not None:
        level = level * spec.dark_gain
    direction = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.0, 0.35)
    xs = np.linspace(-1, 1, w)[None, :]
    ys = np.linspace(-1, 1, h)[:, None]
    side = 1 + strength * 0.5 * (np.cos(direction) * xs + np.sin(direction) * ys)  # (H, W)
    tint = rng.uniform(0.92, 1.08, 3)
    return level, (side[:, :, None] * tint[None, None, :]).astype(np.float32)  # (H, W, 3)


def _other_label(label: int, expressions: tuple[int, ...], rng: np.random.Generator) -> int:
    """Another expression of the same class set (DFEW: ``(label + 1..6) % 7``)."""
    n = len(expressions)
    return int(expressions[(expressions.index(label) + rng.integers(1, n)) % n])


def render_clip(
    spec: ClipSpec,
    rng: np.random.Generator,
    ident: Identity | None = None,
    noise_rng: np.random.Generator | None = None,
) -> RenderedClip:
    """Render one clip.

    Args:
        spec: what the clip shows.
        rng: the clip's random source (seeded per clip, so clips are independent).
        ident: the labelled person; drawn from ``rng`` when None.
        noise_rng: where the noise's own randomness comes from (the other person of an N1 cut,
            the occluders); ``rng`` draws then the same values whatever ``spec``'s noise, so
            the clip differs from its clean version only in its noisy frames and, for N2, its
            expression timing. None: everything from ``rng`` (the demo data set's stream).
    """
    w, h = spec.size
    n = spec.n_frames
    ident = ident if ident is not None else sample_identity(rng)
    pad_x, pad_y = int(w * _PAN), int(h * _PAN)
    bg = make_background(rng, w + 2 * pad_x, h + 2 * pad_y)
    pan_x = (pad_x * (1 + 0.5 * _wobble(n, rng))).astype(int)
    pan_y = (pad_y * (1 + 0.3 * _wobble(n, rng))).astype(int)
    pose = _pose(spec, rng, ident.aspect)
    intensity = rng.uniform(*spec.intensity)
    if noise_rng is None:
        profile = temporal_profile(n, rng, spec.n2_window)
    else:  # the clean timing is drawn either way, so the draws after it do not depend on N2
        profile = temporal_profile(n, rng)
        if spec.n2_window is not None:
            profile = temporal_profile(n, noise_rng, spec.n2_window)
    nrng = rng if noise_rng is None else noise_rng
    rest = Actions(lip_corner=float(rng.normal(0, 0.05)))
    acts = frame_actions(
        apex_actions(spec.label, intensity, rng), profile, idle_actions(n, rng), rest
    )
    gaze = np.stack([_wobble(n, rng), 0.5 * _wobble(n, rng)], axis=1)  # (T, 2)
    level, light = _lighting(spec, rng)
    noise_sigma = rng.uniform(1.5, 4.0) + (1.5 if spec.dark_gain is not None else 0.0)
    noise = rng.standard_normal((h + _NOISE_PAD, w + _NOISE_PAD, 1), dtype=np.float32)
    noise *= np.float32(noise_sigma)

    n1 = set(spec.n1_frames)
    other = None
    if spec.n1_kind == "other_person":
        other = _other_shot(spec, nrng, intensity, (w + 2 * pad_x, h + 2 * pad_y))
    frames = np.empty((n, h, w, 3), np.uint8)
    boxes = np.empty((n, 4))
    visible = np.ones(n, bool)
    for f in range(n):
        boxes[f] = face_box((pose.cx[f], pose.cy[f]), pose.size[f], pose.angle[f], ident.aspect)
        backdrop = other[3] if (other is not None and f in n1) else bg
        img = np.ascontiguousarray(backdrop[pan_y[f] : pan_y[f] + h, pan_x[f] : pan_x[f] + w])
        if f in n1 and spec.n1_kind == "no_face":
            img = np.ascontiguousarray(bg[-h:, :w][:, ::-1])  # the camera looks elsewhere
        elif f in n1 and other is not None:
            o_ident, o_pose, o_act, _ = other
            draw_person(
                img, o_ident, o_act, (o_pose.cx[f], o_pose.cy[f]), o_pose.size[f], o_pose.angle[f]
            )
        else:
            draw_person(
                img,
                ident,
                acts[f],
                (pose.cx[f], pose.cy[f]),
                pose.size[f],
                pose.angle[f],
                tuple(gaze[f]),
            )
            if f in n1:  # occlusion
                draw_occluder(img, boxes[f], nrng, ident.skin)
        visible[f] = f not in n1
        frames[f] = _camera(img, light, level[f], noise, rng)
    return RenderedClip(frames=frames, boxes=boxes, visible=visible, profile=profile)


def _other_shot(
    spec: ClipSpec, nrng: np.random.Generator, intensity: float, bg_size: tuple[int, int]
) -> tuple[Identity, _Pose, Actions, np.ndarray]:
    """An N1 cut to another shot: another person (of another expression), pose, apex
    actions and backdrop."""
    o_spec = ClipSpec(
        **{**spec.__dict__, "label": _other_label(spec.label, spec.expressions, nrng)}
    )
    o_ident = sample_identity(nrng)
    return (
        o_ident,
        _pose(o_spec, nrng, o_ident.aspect),
        apex_actions(o_spec.label, intensity, nrng),
        make_background(nrng, *bg_size),
    )


def _camera(
    img: np.ndarray, light: np.ndarray, level: float, noise: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """What the camera records of a drawn frame: lens blur, lighting, and sensor noise (a
    random window of the noise bank)."""
    h, w = img.shape[:2]
    img = cv2.GaussianBlur(img, (0, 0), _BLUR_SIGMA)
    lit = img.astype(np.float32)
    lit *= light
    lit *= np.float32(level)
    ox, oy = int(rng.integers(0, _NOISE_PAD)), int(rng.integers(0, _NOISE_PAD))
    lit += noise[oy : oy + h, ox : ox + w]
    return np.clip(lit, 0, 255, out=lit).astype(np.uint8)
