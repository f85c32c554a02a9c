"""Class sets: each data set's class names in logit order and its neutral class.

DFEW (the seed paper's data set) has seven classes; its CSV labels are 1..7 (1 Happy, 2 Sad,
3 Neutral, 4 Angry, 5 Surprise, 6 Disgust, 7 Fear) and everyone uses ``label - 1``, the order of
every table of the paper. AFEW's emotion folders map onto the same order. :data:`CLASSES`,
:data:`NUM_CLASSES` and :data:`NEUTRAL` are DFEW's.

FERV39k has the same seven emotions, written as words in its split files (``Happy``, ``Sad``,
...). Its logit order is DFEW's: MAE-DFER's FERV39k preparation (``preprocess/ferv39k.py``)
maps the words onto exactly this order, and a shared order lets a DFEW model be read, compared
or fine-tuned on FERV39k without remapping its head.

MAFW has eleven single-expression classes, written as lower-case words in its split files;
its logit order is the one of MAFW's class list as public loaders use it (MAE-DFER
``preprocess/mafw.py``, DFER-CLIP): anger, disgust, fear, happiness, neutral, sadness,
surprise, contempt, anxiety, helplessness, disappointment (neutral = 4). Compound
(multi-expression) labels are not a class set here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassSet:
    """A data set's classes: names in logit order and the neutral class.

    Attributes:
        dataset: the data set's short name (``dfew``, ``afew``, ``ferv39k``, ``mafw``).
        classes: class names in logit order (index = logit position).
        neutral_name: the neutral class (the one the snippet-based filter suppresses, Eq. 7).
    """

    dataset: str
    classes: tuple[str, ...]
    neutral_name: str

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"{self.dataset}: class names must be distinct, at least two")
        if self.neutral_name not in self.classes:
            raise ValueError(f"{self.dataset}: neutral class {self.neutral_name!r} not a class")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def neutral(self) -> int:
        """Index of the neutral class."""
        return self.classes.index(self.neutral_name)

    def index_of(self, label: str) -> int:
        """Class index of a label as written in a split file or folder name (any letter case,
        surrounding blanks ignored); raises ValueError naming the known labels otherwise."""
        key = label.strip().lower()
        lookup = {name.lower(): i for i, name in enumerate(self.classes)}
        if key not in lookup:
            raise ValueError(
                f"unknown {self.dataset} label {label!r} (known: {', '.join(self.classes)})"
            )
        return lookup[key]


DFEW = ClassSet(
    "dfew", ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"), "Neutral"
)
AFEW = ClassSet("afew", DFEW.classes, "Neutral")
FERV39K = ClassSet("ferv39k", DFEW.classes, "Neutral")
MAFW = ClassSet(
    "mafw",
    (
        "anger",
        "disgust",
        "fear",
        "happiness",
        "neutral",
        "sadness",
        "surprise",
        "contempt",
        "anxiety",
        "helplessness",
        "disappointment",
    ),
    "neutral",
)

CLASS_SETS: dict[str, ClassSet] = {c.dataset: c for c in (DFEW, AFEW, FERV39K, MAFW)}
"""Data set short name -> its class set."""


def class_set(dataset: str) -> ClassSet:
    """The class set of a data set; raises ValueError for an unknown name."""
    try:
        return CLASS_SETS[dataset]
    except KeyError:
        raise ValueError(f"unknown data set {dataset!r} (known: {', '.join(CLASS_SETS)})") from None


CLASSES: tuple[str, ...] = DFEW.classes
NUM_CLASSES = DFEW.num_classes
NEUTRAL = DFEW.neutral  # 2: the class the snippet-based filter suppresses (Eq. 7)

AFEW_FOLDERS: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
"""AFEW emotion folder name -> class index (folder names are the class names)."""


def dfew_label_to_index(label: int) -> int:
    """DFEW CSV label (1..7) -> class index (0..6); raises ValueError outside 1..7."""
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= NUM_CLASSES:
        raise ValueError(f"DFEW label must be an integer in 1..{NUM_CLASSES}, got {label!r}")
    return label - 1
