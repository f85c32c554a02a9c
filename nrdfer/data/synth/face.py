"""Procedural faces drawn with OpenCV: an identity plus facial actions -> pixels.

A face is described in its own coordinate frame (origin at the centre of the face oval, unit =
half the oval's height, y pointing down) and mapped into the image by a similarity transform
(centre, size, in-plane rotation), so head motion is exact and the true face box is known. The
facial actions are a small set of action units (Ekman's FACS) that the seven classes of the
paper (Section 4.1, DFEW's classes) are built from in :mod:`nrdfer.data.synth.expressions`.
The drawing is deliberately photographic enough (shaded skin, sclera/iris/pupil, lips, hair,
neck and shoulders) that the stock RetinaFace detector finds the faces.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import cv2
import numpy as np

RGB = tuple[int, int, int]

_SHIFT = 4  # sub-pixel bits for cv2 drawing (coordinates are multiplied by 2**_SHIFT)
_SCALE = float(1 << _SHIFT)

# Skin tones (RGB) from very light to very dark; an identity interpolates between neighbours.
_SKIN_TONES = np.array(
    [
        (255, 224, 196),
        (241, 194, 160),
        (224, 172, 135),
        (198, 144, 104),
        (161, 110, 75),
        (120, 80, 52),
        (88, 58, 40),
    ],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array(
    [(20, 16, 14), (60, 40, 25), (110, 75, 40), (170, 130, 70), (200, 170, 120), (130, 130, 130)],
    dtype=np.float64,
)
_IRIS_COLOURS = np.array([(60, 40, 25), (90, 60, 30), (60, 90, 120), (70, 100, 60)], dtype=float)

HAIR_STYLES = ("short", "long", "bald", "curly")


@dataclass(frozen=True)
class Identity:
    """What stays fixed for one person: geometry, colours, accessories."""

    aspect: float  # face oval half-width / half-height
    skin: RGB  # skin colour
    hair: RGB  # hair (and brow/beard) colour
    hair_style: str  # one of HAIR_STYLES
    eye_spacing: float  # eye centre distance from the midline (face units)
    eye_size: float  # eye half-width (face units)
    iris: RGB  # iris colour
    brow_thickness: float  # eyebrow thickness (face units)
    nose_length: float  # nose tip y (face units below the centre)
    mouth_width: float  # mouth half-width at rest (face units)
    lip: RGB  # lip colour
    glasses: bool  # wears glasses
    beard: bool  # has a beard
    shirt: RGB  # clothing colour
    rest_brow: float  # resting brow height offset (face units, + = higher)
    rest_smile: float  # resting lip-corner offset (-1..1 action units)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity (many distinct people: shape, skin, hair, spacing, accessories)."""
    t = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = int(t)
    j = min(i + 1, len(_SKIN_TONES) - 1)
    skin = (1 - (t - i)) * _SKIN_TONES[i] + (t - i) * _SKIN_TONES[j]
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 255)
    hair = np.clip(
        _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.85, 1.15), 0, 255
    )
    lip = np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([25, 0, 5]), 0, 255)
    return Identity(
        aspect=float(rng.uniform(0.70, 0.84)),
        skin=_rgb(skin),
        hair=_rgb(hair),
        hair_style=HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=[0.4, 0.3, 0.12, 0.18]))],
        eye_spacing=float(rng.uniform(0.30, 0.37)),
        eye_size=float(rng.uniform(0.14, 0.17)),
        iris=_rgb(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]),
        brow_thickness=float(rng.uniform(0.045, 0.07)),
        nose_length=float(rng.uniform(0.22, 0.30)),
        mouth_width=float(rng.uniform(0.28, 0.34)),
        lip=_rgb(lip),
        glasses=bool(rng.random() < 0.15),
        beard=bool(rng.random() < 0.15),
        shirt=_rgb(rng.uniform(20, 230, 3)),
        rest_brow=float(rng.uniform(-0.02, 0.02)),
        rest_smile=float(rng.uniform(-0.12, 0.12)),
    )


def _rgb(c: np.ndarray) -> RGB:
    return (int(c[0]), int(c[1]), int(c[2]))


ACTION_NAMES: tuple[str, ...] = (
    "brow_raise",  # AU1+2: whole brow up (surprise, fear)
    "brow_lower",  # AU4: brows down and together (anger, disgust)
    "brow_inner",  # AU1: inner brow corners up (sadness, fear)
    "eye_open",  # AU5 (>0) wide / AU7 (<0) narrowed lids; -1 = closed
    "cheek_raise",  # AU6: cheeks up, eyes crinkle (happiness)
    "lip_corner",  # AU12 (>0) pulled up / AU15 (<0) pulled down
    "mouth_open",  # AU25+26: lips part, jaw drops
    "lip_stretch",  # AU20: lips stretched sideways (fear)
    "lip_press",  # AU23+24: lips pressed thin (anger)
    "nose_wrinkle",  # AU9+10: nose wrinkled, upper lip raised (disgust)
    "asymmetry",  # unilateral lip raise on the right side (disgust/contempt)
)


@dataclass(frozen=True)
class Actions:
    """Facial-action intensities; 0 everywhere is the neutral face."""

    brow_raise: float = 0.0
    brow_lower: float = 0.0
    brow_inner: float = 0.0
    eye_open: float = 0.0
    cheek_raise: float = 0.0
    lip_corner: float = 0.0
    mouth_open: float = 0.0
    lip_stretch: float = 0.0
    lip_press: float = 0.0
    nose_wrinkle: float = 0.0
    asymmetry: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in ACTION_NAMES], dtype=np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> Actions:
        return cls(**{n: float(v) for n, v in zip(ACTION_NAMES, values, strict=True)})

    def scaled(self, w: float) -> Actions:
        return Actions.from_array(self.as_array() * w)


assert tuple(f.name for f in dataclasses.fields(Actions)) == ACTION_NAMES


class _Pen:
    """Maps face coordinates to image pixels and draws anti-aliased shapes."""

    def __init__(self, img: np.ndarray, center: tuple[float, float], size: float, angle: float):
        self.img = img
        rad = np.deg2rad(angle)
        c, s = np.cos(rad), np.sin(rad)
        # (2, 2) rotation*scale; image point = center + M @ face point
        self.m = size * np.array([[c, -s], [s, c]])
        self.t = np.asarray(center, dtype=np.float64)
        self.size = size

    def map(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) face coordinates -> (N, 2) image coordinates."""
        return pts @ self.m.T + self.t

    def _fixed(self, pts: np.ndarray) -> np.ndarray:
        return np.round(self.map(pts) * _SCALE).astype(np.int32).reshape(-1, 1, 2)

    def fill(self, pts: np.ndarray, colour: RGB) -> None:
        cv2.fillPoly(self.img, [self._fixed(pts)], colour, cv2.LINE_AA, _SHIFT)

    def line(self, pts: np.ndarray, colour: RGB, width: float, closed: bool = False) -> None:
        thickness = max(1, int(round(width * self.size)))
        cv2.polylines(self.img, [self._fixed(pts)], closed, colour, thickness, cv2.LINE_AA, _SHIFT)


@functools.lru_cache(maxsize=256)
def _unit_arc(n: int, a0: float, a1: float) -> np.ndarray:
    a = np.deg2rad(np.linspace(a0, a1, n, endpoint=a1 - a0 < 360))
    return np.stack([np.cos(a), np.sin(a)], axis=1)  # (n, 2)


def ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 36, a0: float = 0.0, a1: float = 360.0
) -> np.ndarray:
    """Points of an ellipse arc from angle ``a0`` to ``a1`` (degrees) in face coordinates, (n, 2)."""
    return _unit_arc(n, a0, a1) * (rx, ry) + (cx, cy)


@functools.lru_cache(maxsize=4096)
def _shade(c: RGB, f: float) -> RGB:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


def _mix(a: RGB, b: RGB, w: float) -> RGB:
    return tuple(int(x * (1 - w) + y * w) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def face_box(center: tuple[float, float], size: float, angle: float, aspect: float) -> np.ndarray:
    """The true face box (x0, y0, x1, y1) in pixels: brow line to chin, cheek to cheek.

    This is the region a face detector such as RetinaFace boxes (it excludes hair and the
    top of the forehead), used as ground truth for the detection-rate test.
    """
    pen = _Pen(np.zeros((1, 1, 3), np.uint8), center, size, angle)
    arc = ellipse(0.0, 0.0, aspect, 1.0, n=72)
    pts = pen.map(arc[arc[:, 1] >= -0.62])
    return np.array([*pts.min(axis=0), *pts.max(axis=0)])


def draw_person(
    img: np.ndarray,
    ident: Identity,
    act: Actions,
    center: tuple[float, float],
    size: float,
    angle: float,
    gaze: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Draw head, hair, neck and shoulders of ``ident`` showing ``act`` into ``img`` (RGB, in place).

    Args:
        img: (H, W, 3) uint8 RGB image, drawn into.
        ident: who.
        act: facial-action intensities (see :data:`ACTION_NAMES`).
        center: face-oval centre in pixels (x, y).
        size: half the face-oval height in pixels.
        angle: in-plane head rotation in degrees.
        gaze: iris offset (x, y) as a fraction of the eye size.

    Returns:
        The true face box (x0, y0, x1, y1) in pixels, see :func:`face_box`.
    """
    pen = _Pen(img, center, size, angle)
    _draw_body(pen, ident)
    _draw_head(pen, ident, act)
    _draw_hair(pen, ident)
    _draw_brows(pen, ident, act)
    _draw_eyes(pen, ident, act, gaze)
    _draw_nose(pen, ident, act)
    _draw_mouth(pen, ident, act)
    if ident.glasses:
        _draw_glasses(pen, ident)
    return face_box(center, size, angle, ident.aspect)


def _draw_body(pen: _Pen, ident: Identity) -> None:
    """Shoulders and neck below the head, long hair falling behind it to the shoulders."""
    a = ident.aspect
    pen.fill(
        np.array([[-2.2, 3.2], [-1.9, 1.75], [-0.6, 1.35], [0.6, 1.35], [1.9, 1.75], [2.2, 3.2]]),
        ident.shirt,
    )
    pen.fill(
        np.array([[-0.38, 0.6], [0.38, 0.6], [0.42, 1.5], [-0.42, 1.5]]), _shade(ident.skin, 0.78)
    )
    pen.fill(ellipse(0.0, 1.42, 0.42, 0.14, a0=0, a1=180, n=12), _shade(ident.shirt, 0.7))
    if ident.hair_style == "long":
        pen.fill(
            np.concatenate(
                [ellipse(0.0, -0.15, a + 0.2, 1.05, a0=180, a1=360, n=24), [[a + 0.28, 1.25]]]
                + [[[-a - 0.28, 1.25]]]
            ),
            ident.hair,
        )


def _draw_head(pen: _Pen, ident: Identity, act: Actions) -> None:
    """Ears, the shaded face oval, the beard and raised cheeks (AU6)."""
    a = ident.aspect
    skin = ident.skin
    dark_skin = _shade(skin, 0.78)
    for side in (-1, 1):
        pen.fill(ellipse(side * (a - 0.02), -0.02, 0.13, 0.22, n=16), dark_skin)
    # Face oval with simple shading: darker rim, lighter centre.
    pen.fill(ellipse(0.0, 0.0, a, 1.0, n=72), dark_skin)
    pen.fill(ellipse(0.0, -0.04, a * 0.9, 0.93, n=72), _shade(skin, 0.92))
    pen.fill(ellipse(0.0, -0.08, a * 0.72, 0.8, n=60), skin)
    if ident.beard:
        beard = np.concatenate(
            [ellipse(0.0, 0.0, a, 1.0, a0=0, a1=180, n=36), [[-a * 0.8, 0.3], [a * 0.8, 0.3]]]
        )
        pen.fill(beard, _mix(ident.hair, skin, 0.25))
    # Cheeks raise (AU6): rounder, rosier cheeks.
    cheek = max(act.cheek_raise, 0.0)
    if cheek > 0.05:
        for side in (-1, 1):
            pen.fill(
                ellipse(side * 0.36, 0.28 - 0.08 * cheek, 0.16, 0.11, n=20),
                _mix(skin, (235, 120, 110), 0.3 * cheek),
            )


def _draw_hair(pen: _Pen, ident: Identity) -> None:
    """Hair on top of the head (a lighter scalp for the bald)."""
    a = ident.aspect
    if ident.hair_style == "bald":
        pen.fill(
            ellipse(0.0, -0.05, a * 0.98, 0.98, a0=200, a1=340, n=20), _shade(ident.skin, 1.04)
        )
        return
    bulk = 0.14 if ident.hair_style == "curly" else 0.05
    cap = ellipse(0.0, -0.12, a + 0.05 + bulk, 0.98 + bulk, a0=180, a1=360, n=40)
    fringe = np.array(
        [[a * 0.98, -0.25], [a * 0.55, -0.52], [0.0, -0.6], [-a * 0.6, -0.5], [-a * 0.98, -0.2]]
    )
    pen.fill(np.concatenate([cap, fringe]), ident.hair)
    if ident.hair_style == "curly":
        for k in range(9):
            ang = np.deg2rad(190 + k * 20)
            pen.fill(
                ellipse((a + 0.05) * np.cos(ang), -0.12 + 1.0 * np.sin(ang), 0.13, 0.13, n=12),
                _shade(ident.hair, 0.9 + 0.04 * (k % 3)),
            )


def _draw_glasses(pen: _Pen, ident: Identity) -> None:
    for side in (-1, 1):
        pen.line(
            ellipse(side * ident.eye_spacing, -0.14, 0.17, 0.12, n=24),
            (30, 30, 30),
            0.025,
            closed=True,
        )
    pen.line(
        np.array([[-ident.eye_spacing + 0.17, -0.16], [ident.eye_spacing - 0.17, -0.16]]),
        (30, 30, 30),
        0.025,
    )


def _draw_brows(pen: _Pen, ident: Identity, act: Actions) -> None:
    raise_ = 0.24 * act.brow_raise + ident.rest_brow
    lower = 0.2 * act.brow_lower
    inner = 0.24 * act.brow_inner
    for side in (-1, 1):
        x_in = side * (ident.eye_spacing - 0.13 + 0.03 * act.brow_lower)
        x_out = side * (ident.eye_spacing + 0.17)
        base = -0.36 - raise_ + lower
        inner_y = base + 0.03 - inner + 0.12 * act.brow_lower
        outer_y = base + 0.03 + 0.05 * act.brow_inner
        mid = (x_in + x_out) / 2
        arch = 0.045 + 0.05 * act.brow_raise - 0.03 * act.brow_lower
        pts = np.array([[x_in, inner_y], [mid, base - arch], [x_out, outer_y]])
        # quadratic Bezier through the three control points
        t = np.linspace(0, 1, 12)[:, None]
        curve = (1 - t) ** 2 * pts[0] + 2 * (1 - t) * t * pts[1] + t**2 * pts[2]
        thick = ident.brow_thickness * (1 + 0.5 * max(act.brow_lower, 0.0))
        poly = np.concatenate([curve - [0, thick / 2], (curve + [0, thick / 2])[::-1]])
        pen.fill(poly, _shade(ident.hair, 0.8))
    if act.brow_lower > 0.3:  # frown lines between the brows
        for dx in (-0.04, 0.04):
            pen.line(
                np.array([[dx, -0.32], [dx * 0.6, -0.22]]),
                _shade(ident.skin, 0.6),
                0.02 * act.brow_lower,
            )


def _draw_eyes(pen: _Pen, ident: Identity, act: Actions, gaze: tuple[float, float]) -> None:
    w = ident.eye_size
    # lid opening: 1 = rest, >1 wide (AU5), <1 narrowed (AU7, AU6 squint), 0 closed
    # eye_open = -1 closes the eye, +1 doubles the opening; a cheek raise squints
    open_ = 1.0 + act.eye_open - 0.45 * max(act.cheek_raise, 0.0)
    open_ = float(np.clip(open_, 0.0, 2.2))
    h = 0.065 * open_
    for side in (-1, 1):
        cx, cy = side * ident.eye_spacing, -0.14
        # socket shadow
        pen.fill(
            ellipse(cx, cy - 0.01, w * 1.25, 0.1 + 0.02 * open_, n=24), _shade(ident.skin, 0.85)
        )
        if h < 0.01:
            pen.line(np.array([[cx - w, cy], [cx + w, cy]]), (40, 30, 30), 0.02)
            continue
        upper = ellipse(cx, cy, w, h * 1.15, a0=180, a1=360, n=16)
        lower = ellipse(cx, cy, w, h * 0.85, a0=0, a1=180, n=16)
        eye = np.concatenate([upper, lower])
        pen.fill(eye, (240, 238, 232))
        # iris and pupil, clipped to the lid opening by drawing the lids over them
        ir = 0.055
        ix, iy = cx + gaze[0] * w * 0.4, cy + gaze[1] * h * 0.3
        pen.fill(ellipse(ix, iy, ir, ir, n=20), ident.iris)
        pen.fill(ellipse(ix, iy, ir * 0.45, ir * 0.45, n=12), (15, 12, 12))
        pen.fill(ellipse(ix + 0.015, iy - 0.015, 0.012, 0.012, n=8), (250, 250, 250))
        # lids: skin above the upper lid and below the lower lid covers the iris overflow
        above = np.concatenate([upper, [[cx + w, cy - 0.2], [cx - w, cy - 0.2]]])
        below = np.concatenate([lower, [[cx - w, cy + 0.16], [cx + w, cy + 0.16]]])
        pen.fill(above, _shade(ident.skin, 0.87))
        pen.fill(below, _shade(ident.skin, 0.95))
        pen.line(upper, (35, 25, 25), 0.03)
        pen.line(lower, _shade(ident.skin, 0.7), 0.012)


def _draw_nose(pen: _Pen, ident: Identity, act: Actions) -> None:
    y = ident.nose_length
    wr = act.nose_wrinkle
    y_tip = y - 0.03 * wr
    shadow = _shade(ident.skin, 0.72)
    pen.line(np.array([[0.05, -0.1], [0.07, y_tip - 0.08], [0.1, y_tip]]), shadow, 0.02)
    pen.fill(ellipse(0.0, y_tip, 0.13, 0.06, n=20, a0=0, a1=180), _shade(ident.skin, 0.8))
    for side in (-1, 1):
        pen.fill(ellipse(side * 0.06, y_tip + 0.01, 0.035, 0.02, n=12), _shade(ident.skin, 0.45))
    if wr > 0.15:  # wrinkles across the bridge
        for k in range(3):
            yy = -0.02 + 0.05 * k
            pen.line(
                np.array([[-0.08, yy], [0.0, yy - 0.02], [0.08, yy]]),
                _shade(ident.skin, 0.55),
                0.022 * wr,
            )


def _draw_mouth(pen: _Pen, ident: Identity, act: Actions) -> None:
    y0 = 0.55
    corner = float(np.clip(act.lip_corner + ident.rest_smile, -1.5, 1.5))
    open_ = float(np.clip(act.mouth_open, 0.0, 1.5))
    width = ident.mouth_width * (
        1
        + 0.3 * max(corner, 0)
        + 0.4 * act.lip_stretch
        - 0.3 * act.lip_press
        - 0.3 * open_ * (1 - max(act.lip_stretch, max(corner, 0)))
    )
    thin = 1 - 0.8 * float(np.clip(act.lip_press, 0, 1))
    raise_r = 0.16 * act.asymmetry + 0.04 * act.nose_wrinkle  # upper-lip raise (AU10), right side
    xs = np.linspace(-1, 1, 15)
    corner_dy = -0.32 * corner  # up is negative y
    # mid line of the mouth: corners move with AU12/AU15, the lip raise lifts one side
    mid_line = y0 + corner_dy * xs**2 - raise_r * np.clip(xs, 0, 1) * 0.9
    gap = 0.24 * open_ + 0.004
    up_lip = (0.055 + 0.01 * open_) * thin
    lo_lip = (0.07 + 0.01 * open_) * thin
    shape = 1 - xs**2  # lips are thickest in the middle
    x = xs * width
    top_in = mid_line - gap * shape * 0.35
    bot_in = mid_line + gap * shape * 0.65
    top_out = top_in - up_lip * (0.4 + 0.6 * shape)
    bot_out = bot_in + lo_lip * (0.4 + 0.6 * shape)
    lip_dark = _shade(ident.lip, 0.85)
    pen.fill(
        np.stack([np.concatenate([x, x[::-1]]), np.concatenate([top_out, bot_out[::-1]])], 1),
        ident.lip,
    )
    if open_ > 0.05 or corner > 0.5:
        inner = np.stack([np.concatenate([x, x[::-1]]), np.concatenate([top_in, bot_in[::-1]])], 1)
        pen.fill(inner, (60, 20, 25))
        if corner > 0.3:  # a smile shows the upper teeth
            teeth_h = np.minimum(bot_in - top_in, 0.05 + 0.03 * corner) * shape
            teeth = np.stack(
                [np.concatenate([x, x[::-1]]), np.concatenate([top_in, (top_in + teeth_h)[::-1]])],
                1,
            )
            pen.fill(teeth, (238, 234, 222))
    pen.line(
        np.stack([x, (top_in + bot_in) / 2 * (open_ < 0.05) + top_in * (open_ >= 0.05)], 1),
        lip_dark,
        0.015,
    )
    if corner > 0.3:  # nasolabial folds of a smile
        for side in (-1, 1):
            pen.line(
                np.array([[side * 0.17, 0.3], [side * (width + 0.05), y0 + corner_dy * 0.5]]),
                _shade(ident.skin, 0.72),
                0.012 * corner,
            )
