"""The two kinds of noisy frames of the paper (Section 1, Fig. 1), planned per clip.

- **N1** (target-irrelevant frames): a short run of frames that do not show the labelled
  person's expression: no face at all (the camera looks elsewhere), the face heavily occluded,
  or a cut to another person with another expression.
- **N2** (frames with the wrong expression intensity): a non-neutral clip in which most
  frames are neutral and the labelled expression shows only in a short window.

The rates are parameters (``synth.n1_rate``, ``synth.n2_rate``); the plan is recorded per clip
in ``synth_meta.json`` so tests and analyses can check it.
"""

from __future__ import annotations

import numpy as np

from nrdfer.data.synth.face import RGB
from nrdfer.labels import NEUTRAL

N1_KINDS: tuple[str, ...] = ("no_face", "occlusion", "other_person")


def plan_n1(
    n: int, rng: np.random.Generator, rate: float, share: tuple[float, float]
) -> tuple[str | None, tuple[int, ...]]:
    """Decide whether a clip gets N1 frames, which kind, and which frames.

    Args:
        n: frames in the clip.
        rng: random source.
        rate: probability that the clip has N1 frames.
        share: (min, max) share of the clip's frames that are irrelevant; at least one frame
            and never more than half of the clip.

    Returns:
        ``(kind, frames)``: kind in :data:`N1_KINDS` or None, and the sorted frame indices (one
        contiguous run, as a cut or an occluder passing by would give).
    """
    if rng.random() >= rate:
        return None, ()
    kind = N1_KINDS[int(rng.integers(len(N1_KINDS)))]
    k = int(np.clip(round(rng.uniform(*share) * n), 1, n // 2))
    start = int(rng.integers(0, n - k + 1))
    return kind, tuple(range(start, start + k))


def plan_n2(
    n: int, label: int, rng: np.random.Generator, rate: float, share: tuple[float, float]
) -> tuple[int, int] | None:
    """For a non-neutral clip, with probability ``rate``, a short expressive window.

    Returns:
        ``(start, length)`` of the window (``share`` of the clip, at least 3 frames), or None
        for a clean clip (and always None for neutral clips).
    """
    if label == NEUTRAL or rng.random() >= rate:
        return None
    length = int(np.clip(round(rng.uniform(*share) * n), 3, n))
    start = int(rng.integers(0, n - length + 1))
    return start, length


def draw_occluder(img: np.ndarray, box: np.ndarray, rng: np.random.Generator, skin: RGB) -> None:
    """Cover most (60-90 %) of the face box: a hand, or an object passing in front (in place)."""
    import cv2

    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cover = rng.uniform(0.6, 0.9)
    if rng.random() < 0.5:  # a hand: a skin-coloured palm with fingers, over the lower face
        cx, cy = x0 + w * rng.uniform(0.35, 0.65), y0 + h * (1 - cover / 2)
        axes = (int(w * 0.55), int(h * cover / 2))
        cv2.ellipse(img, (int(cx), int(cy)), axes, 0, 0, 360, skin, -1, cv2.LINE_AA)
        for k in range(4):
            fx = int(cx - axes[0] * 0.75 + k * axes[0] * 0.5)
            top = int(cy - axes[1] * 1.6)
            cv2.line(img, (fx, int(cy)), (fx, top), skin, max(2, int(w * 0.12)), cv2.LINE_AA)
    else:  # an object (a cup, a phone, someone passing) covering the face from one side
        colour = tuple(int(c) for c in rng.integers(20, 230, 3))
        side = rng.random() < 0.5
        xa = x0 - w * 0.3 if side else x1 - w * cover
        xb = x0 + w * cover if side else x1 + w * 0.3
        cv2.rectangle(img, (int(xa), int(y0 - h * 0.3)), (int(xb), int(y1 + h * 0.3)), colour, -1)
