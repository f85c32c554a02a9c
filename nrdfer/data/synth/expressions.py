"""The expressions as facial-action intensities, and their course over time.

Each class of DFEW (paper Section 4.1; order of :data:`nrdfer.labels.CLASSES`) is a set of
action units at apex (after Ekman & Friesen's prototypes); MAFW's four further classes
(contempt, anxiety, helplessness, disappointment) follow, each with its source named
(:data:`EXPRESSIONS`: the seven, then the four). Every data set's class maps onto one of them
(:data:`CLASS_EXPRESSIONS`). A clip's expression follows a
temporal profile in [0, 1]: onset -> apex -> (partial) offset for a clean clip, or a short
window inside an otherwise neutral clip for the paper's N2 noise (Fig. 1's N2: "excessive
neutral frames in non-neutral expression sequence"). Idle behaviour (blinks, talking,
gaze) is added on top so neutral frames are not all identical.
"""

from __future__ import annotations

import numpy as np

from nrdfer.data.synth.face import ACTION_NAMES, Actions
from nrdfer.labels import CLASS_SETS, CLASSES

CLASS_ACTIONS: dict[str, Actions] = {
    "Happy": Actions(lip_corner=1.0, mouth_open=0.4, cheek_raise=1.0),
    "Sad": Actions(brow_inner=1.0, lip_corner=-1.2, eye_open=-0.35),
    "Neutral": Actions(),
    "Angry": Actions(brow_lower=1.0, lip_press=1.0, eye_open=-0.25, lip_corner=-0.2),
    "Surprise": Actions(brow_raise=1.0, eye_open=1.0, mouth_open=1.0),
    "Disgust": Actions(
        nose_wrinkle=1.0,
        asymmetry=1.2,
        brow_lower=0.3,
        eye_open=-0.35,
        lip_corner=-0.3,
        mouth_open=0.25,
    ),
    "Fear": Actions(
        brow_raise=0.6,
        brow_inner=0.8,
        eye_open=0.9,
        mouth_open=0.6,
        lip_stretch=1.0,
        lip_corner=-0.3,
    ),
    # Ekman & Friesen (1986), "A new pan-cultural facial expression of emotion", Motivation and
    # Emotion 10: the lip corner tightened and raised on one side of the face (unilateral
    # AU12 + AU14): a one-sided raise with the lips slightly pressed
    "Contempt": Actions(asymmetry=1.0, lip_corner=0.3, lip_press=0.3, eye_open=-0.15),
    # Harrigan & O'Connell (1996), "How do you look when feeling anxious? Facial displays of
    # anxiety", Personality and Individual Differences 21: brows raised and drawn together
    # (AU1 + AU2 + AU4), lips stretched (AU20), eyes widened, more blinking
    "Anxiety": Actions(
        brow_inner=0.8,
        brow_raise=0.2,
        brow_lower=0.4,
        eye_open=0.4,
        lip_stretch=0.6,
        lip_press=0.5,
    ),
    # Darwin (1872), The Expression of the Emotions in Man and Animals, ch. XI (helplessness,
    # impotence): eyebrows raised with transverse wrinkles on the forehead, the mouth opened;
    # here with the lip corners lowered as in resignation
    "Helplessness": Actions(
        brow_raise=0.8, brow_inner=0.6, lip_corner=-0.6, mouth_open=0.5, eye_open=0.1
    ),
    # No FACS prototype is published for disappointment; our approximation: a weak sadness
    # (Ekman & Friesen's prototype, AU1 + AU15) with the lips pressed (AU24) and the lids
    # lowered, apart from Sad by the press and the weaker brows and mouth
    "Disappointment": Actions(
        brow_inner=0.5, brow_lower=0.2, lip_corner=-0.5, lip_press=0.8, eye_open=-0.5
    ),
}
"""Apex action units per expression (FACS prototypes, simplified)."""

EXPRESSIONS: tuple[str, ...] = tuple(CLASS_ACTIONS)
"""Expression names in index order: DFEW's seven classes (the same indices), then MAFW's four."""

assert EXPRESSIONS[: len(CLASSES)] == CLASSES

_MAFW_NAMES = {  # MAFW's words for DFEW's seven classes; its other four are capitalised
    "anger": "Angry",
    "disgust": "Disgust",
    "fear": "Fear",
    "happiness": "Happy",
    "neutral": "Neutral",
    "sadness": "Sad",
    "surprise": "Surprise",
}
CLASS_EXPRESSIONS: dict[str, tuple[int, ...]] = {
    name: tuple(
        EXPRESSIONS.index(_MAFW_NAMES.get(c, c.capitalize()) if name == "mafw" else c)
        for c in classes.classes
    )
    for name, classes in CLASS_SETS.items()
}
"""Data set -> the expression index of each of its classes, in its logit order
(DFEW, AFEW, FERV39k: 0..6; MAFW: anger -> Angry, ..., contempt -> Contempt, ...)."""

_ACTION_JITTER = 0.2  # per-clip multiplicative spread of each action unit at apex
_ACTION_LEAK = 0.06  # std of small unrelated actions (people are never pure prototypes)
_BLINK_RATE = 0.04  # probability per frame that a blink starts
_TALK_SHARE = 0.35  # share of clips in which the person talks (small mouth movements)
_TALK_AMPLITUDE = 0.14  # maximum extra mouth opening while talking


def apex_actions(label: int, intensity: float, rng: np.random.Generator) -> Actions:
    """The actions of expression ``label`` (index into :data:`EXPRESSIONS`) at apex for one clip.

    Args:
        label: expression index (DFEW's class index for DFEW's seven classes).
        intensity: overall strength at apex (1 = the prototype).
        rng: random source for the per-clip variation.
    """
    base = CLASS_ACTIONS[EXPRESSIONS[label]].as_array()
    jitter = rng.uniform(1 - _ACTION_JITTER, 1 + _ACTION_JITTER, base.shape)
    leak = rng.normal(0.0, _ACTION_LEAK, base.shape)
    return Actions.from_array(base * jitter * intensity + leak)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def temporal_profile(
    n: int, rng: np.random.Generator, window: tuple[int, int] | None = None
) -> np.ndarray:
    """Expression strength per frame, shape (n,), in [0, 1].

    Args:
        n: number of frames.
        rng: random source.
        window: for an N2 clip, ``(start, length)`` of the short expressive window; the
            rest of the clip is neutral. ``None`` for a clean clip: onset within the first
            15 % of the clip, apex reached after 10-25 % more, held to 75-100 % of the clip,
            then a partial offset.
    """
    t = np.arange(n, dtype=np.float64)
    if window is not None:
        start, length = window
        ramp = max(1.0, length / 4)
        up = _smoothstep((t - start + 1) / ramp)
        down = _smoothstep((start + length - t) / ramp)
        return np.minimum(up, down)
    onset = rng.uniform(0.0, 0.15) * n
    rise = max(1.0, rng.uniform(0.10, 0.25) * n)
    hold_end = rng.uniform(0.75, 1.0) * n
    residual = rng.uniform(0.5, 0.9)  # level the offset decays to by the last frame
    prof = _smoothstep((t - onset) / rise)
    tail = max(1.0, n - hold_end)
    decay = 1 - (1 - residual) * _smoothstep((t - hold_end) / tail)
    return prof * decay


def idle_actions(n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame idle behaviour as action offsets, shape (n, len(ACTION_NAMES)): blinks, talk."""
    out = np.zeros((n, len(ACTION_NAMES)))
    eye = ACTION_NAMES.index("eye_open")
    mouth = ACTION_NAMES.index("mouth_open")
    f = 0
    while f < n:
        if rng.random() < _BLINK_RATE:
            out[f : f + 2, eye] = -2.0  # closed for two frames (-2 overrides any widening)
            f += 2
        f += 1
    if rng.random() < _TALK_SHARE:
        freq = rng.uniform(0.4, 0.9)  # radians per frame: a syllable every ~7-15 frames
        phase = rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(0.3, 1.0) * _TALK_AMPLITUDE
        out[:, mouth] = amp * np.clip(np.sin(freq * np.arange(n) + phase), 0, None)
    return out


def frame_actions(
    apex: Actions, profile: np.ndarray, idle: np.ndarray, rest: Actions | None = None
) -> list[Actions]:
    """Combine apex actions, the temporal profile (n,) and idle offsets (n, A) into n frames."""
    base = np.zeros(len(ACTION_NAMES)) if rest is None else rest.as_array()
    # (n, A) = (n, 1) * (1, A)
    values = base[None, :] + profile[:, None] * apex.as_array()[None, :] + idle
    eye = ACTION_NAMES.index("eye_open")
    values[:, eye] = np.maximum(values[:, eye], -1.0)  # fully closed is the floor
    return [Actions.from_array(v) for v in values]
