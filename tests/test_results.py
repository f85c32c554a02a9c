"""nrdfer.results: the result files' writer and reader, and the layer it sits in (below the
engine and the report, which reads result files only)."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from nrdfer.engine.metrics import classification_metrics
from nrdfer.errors import UserError
from nrdfer.labels import CLASSES
from nrdfer.results import (
    HEADLINE,
    headline,
    read_features,
    read_flat,
    write_features,
    write_flat,
)
from tests.conftest import ROOT


def nrdfer_imports(path) -> set[str]:
    """The ``nrdfer`` modules a source file imports (at any depth)."""
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return {m for m in found if m.startswith("nrdfer")}


def test_flat_file_is_flat_and_deterministic(tmp_path):
    m = classification_metrics([0, 1, 2, 2], [0, 1, 2, 1], CLASSES)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_flat(a, m)
    write_flat(b, dict(m))
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(a.read_text())
    assert list(data) == list(m) and all(not isinstance(v, (dict, list)) for v in data.values())
    assert data["war"] == 0.75 and data["acc_Fear"] is None
    assert read_flat(a) == data
    with pytest.raises(ValueError, match="flat"):
        write_flat(tmp_path / "c.json", {"cm": [[1, 2], [3, 4]]})


def test_headline_keeps_its_keys_in_order():
    metrics = {"clips": 4, "sf_war": 0.4, "war": 0.3, "sf_uar": 0.2, "uar": 0.1}
    assert list(headline(metrics)) == list(HEADLINE)
    assert headline(metrics)["sf_war"] == 0.4


def test_unreadable_flat_files_are_one_error_naming_them(tmp_path):
    with pytest.raises(UserError, match=r"absent\.json: cannot read the training summary"):
        read_flat(tmp_path / "absent.json", "training summary")
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    with pytest.raises(UserError, match=r"list\.json: expected a flat JSON object.*; fix it$"):
        read_flat(listed, fix="fix it")


def test_features_file_round_trip(tmp_path):
    arrays = {
        "keys": np.asarray(["b", "a"]),
        "labels": np.array([1, 0]),
        "features": np.zeros((2, 0), dtype=np.float32),  # (N, 0): not kept
    }
    write_features(tmp_path / "f.npz", arrays, {"fold": "2", "model_dsf": True})
    back = read_features(tmp_path / "f.npz")
    assert back["meta"] == {"fold": "2", "model_dsf": True}
    assert back["path"] == tmp_path / "f.npz"
    assert list(back["keys"]) == ["b", "a"] and back["features"].shape == (2, 0)
    with pytest.raises(ValueError, match="logits"):
        write_features(tmp_path / "g.npz", {"logits": np.zeros(2)})
    assert not (tmp_path / "g.npz").exists()


def test_the_format_sits_below_engine_and_report():
    """The report reads result files through nrdfer.results, never through the engine or the
    data code; nrdfer.results itself knows neither."""
    for path in sorted((ROOT / "nrdfer" / "report").glob("*.py")):
        for module in nrdfer_imports(path):
            assert not module.startswith(("nrdfer.engine", "nrdfer.data")), (path, module)
    below = nrdfer_imports(ROOT / "nrdfer" / "results.py")
    assert below <= {"nrdfer.errors", "nrdfer.io"}, below
