"""WAR/UAR/per-class recall/confusion against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from nrdfer.engine.metrics import (
    classification_metrics,
    confusion_matrix,
    uar,
    war,
)
from nrdfer.labels import CLASSES


@pytest.mark.parametrize("seed", range(5))
def test_war_uar_match_sklearn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y_true = rng.integers(0, 7, n)
    y_pred = np.where(rng.random(n) < 0.4, y_true, rng.integers(0, 7, n))
    cm = confusion_matrix(y_true, y_pred, 7)
    np.testing.assert_array_equal(cm, sk_confusion(y_true, y_pred, labels=range(7)))
    assert war(cm) == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert uar(cm) == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)
    m = classification_metrics(y_true, y_pred, CLASSES)
    per_class = recall_score(y_true, y_pred, labels=range(7), average=None, zero_division=0)
    for name, value in zip(CLASSES, per_class, strict=True):
        assert m[f"acc_{name}"] == pytest.approx(value, abs=1e-12)


def test_uar_skips_classes_absent_from_ground_truth():
    y_true = np.array([0, 0, 1, 1, 3])  # no Neutral, Surprise, Disgust, Fear clips
    y_pred = np.array([0, 2, 1, 1, 5])
    with pytest.warns(UserWarning):  # sklearn warns about predicted-only classes
        expected = balanced_accuracy_score(y_true, y_pred)
    m = classification_metrics(y_true, y_pred, CLASSES, prefix="sf_")
    assert m["sf_uar"] == pytest.approx(expected)
    assert m["sf_acc_Neutral"] is None and m["sf_acc_Happy"] == 0.5


def test_confusion_rejects_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 7], [0, 1], 7)
    with pytest.raises(ValueError, match="differ"):
        confusion_matrix([0, 1], [0], 7)
