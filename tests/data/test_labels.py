"""Class sets: DFEW/AFEW unchanged, FERV39k in DFEW's order, MAFW's eleven classes."""

from __future__ import annotations

import pytest

from nrdfer import labels
from nrdfer.labels import AFEW, DFEW, FERV39K, MAFW, ClassSet, class_set


def test_dfew_api_unchanged():
    assert labels.CLASSES == ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
    assert labels.NUM_CLASSES == 7 and labels.NEUTRAL == 2
    assert {n: i for i, n in enumerate(labels.CLASSES)} == labels.AFEW_FOLDERS
    assert [labels.dfew_label_to_index(v) for v in range(1, 8)] == list(range(7))
    assert DFEW.classes == AFEW.classes == labels.CLASSES and AFEW.neutral == 2


def test_ferv39k_words_map_onto_the_dfew_order():
    # the order MAE-DFER's preprocess/ferv39k.py uses: Happy 0 ... Fear 6
    words = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
    assert [FERV39K.index_of(w) for w in words] == list(range(7))
    assert FERV39K.index_of(" angry ") == 3 and FERV39K.neutral == 2
    with pytest.raises(ValueError, match="unknown ferv39k label 'Contempt'"):
        FERV39K.index_of("Contempt")


def test_mafw_eleven_classes():
    assert MAFW.num_classes == 11 and MAFW.neutral == 4
    assert MAFW.classes[7:] == ("contempt", "anxiety", "helplessness", "disappointment")
    assert MAFW.index_of("Happiness") == 3
    with pytest.raises(ValueError, match="known: anger, disgust"):
        MAFW.index_of("anger_disgust")  # a compound label is not a class


def test_class_set_lookup_and_validation():
    assert class_set("mafw") is MAFW and class_set("ferv39k") is FERV39K
    with pytest.raises(ValueError, match="unknown data set 'caer'"):
        class_set("caer")
    with pytest.raises(ValueError, match="neutral class"):
        ClassSet("x", ("a", "b"), "c")
    with pytest.raises(ValueError, match="distinct"):
        ClassSet("x", ("a", "a"), "a")
