"""The seven expression classes in the DFEW order used by every table of the paper.

DFEW's CSV labels are 1..7 (1 Happy, 2 Sad, 3 Neutral, 4 Angry, 5 Surprise, 6 Disgust, 7 Fear);
everyone uses ``label - 1``. AFEW's emotion folders map onto the same order.
"""

from __future__ import annotations

CLASSES: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
NUM_CLASSES = len(CLASSES)
NEUTRAL = CLASSES.index("Neutral")  # 2: the class the snippet-based filter suppresses (Eq. 7)

AFEW_FOLDERS: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
"""AFEW emotion folder name -> class index (folder names are the class names)."""


def dfew_label_to_index(label: int) -> int:
    """DFEW CSV label (1..7) -> class index (0..6); raises ValueError outside 1..7."""
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= NUM_CLASSES:
        raise ValueError(f"DFEW label must be an integer in 1..{NUM_CLASSES}, got {label!r}")
    return label - 1
