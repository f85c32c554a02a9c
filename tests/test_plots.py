"""nrdfer.plots: the evaluation's confusion PNG, drawn outside the engine."""

from __future__ import annotations

import numpy as np

from nrdfer.plots import confusion_png
from tests.conftest import ROOT


def test_confusion_png_draws_a_panel_per_matrix(tmp_path):
    counts = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])  # class 2 has no clip: a zero row
    confusion_png(tmp_path / "a.png", {"without SF": counts, "with SF": counts.T}, "abc")
    confusion_png(tmp_path / "b.png", {"without SF": counts, "with SF": counts.T}, "abc")
    png = (tmp_path / "a.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == (tmp_path / "b.png").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp file


def test_the_engine_draws_nothing():
    """matplotlib stays out of nrdfer/engine: the engine hands counts to nrdfer.plots."""
    for path in sorted((ROOT / "nrdfer" / "engine").rglob("*.py")):
        assert "matplotlib" not in path.read_text(), path
