"""Determinism: two runs of the tiny demo pipeline (synth -> ingest -> folds -> shards ->
train@1 -> evaluate@1) with the same seed, in two temp directories, give identical metrics
and identical files on CPU."""

from __future__ import annotations

import json

import pytest

from .conftest import OUTPUT_FOLDERS, build_tiny_run
from .tiny import file_hashes

pytestmark = pytest.mark.slow


def test_same_seed_same_metrics_and_files(tiny_run, tmp_path):
    again = build_tiny_run(tmp_path / "repo", tiny_run.env)
    first = json.loads((tiny_run.repo / "reports/dfew/fold1/evaluation.json").read_text())
    second = json.loads((again.repo / "reports/dfew/fold1/evaluation.json").read_text())
    assert first["clips"] > 0 and "war" in first and "sf_uar" in first
    assert second == first
    for name in ("summary.json", "live/metrics.json"):
        assert (again.repo / "models/dfew/fold1" / name).read_text() == (
            tiny_run.repo / "models/dfew/fold1" / name
        ).read_text()
    # every output byte for byte: demo data, manifest, shards, weights, predictions, plots
    assert file_hashes(again.repo, OUTPUT_FOLDERS) == file_hashes(tiny_run.repo, OUTPUT_FOLDERS)
