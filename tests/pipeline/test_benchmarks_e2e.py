"""FERV39k and MAFW through the pipeline's own stages on a tiny generated set of each (DVC:
synth -> ingest -> folds -> shards -> train -> evaluate -> aggregate), the class set of each
followed from the shard index to the metrics, model files and report tables."""

from __future__ import annotations

import json

import pytest
import torch

from nrdfer.labels import FERV39K, MAFW
from nrdfer.report import tables
from tests.pipeline.tiny import TINY, make_project, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, module_dvc_env):
    root = make_project(tmp_path_factory.mktemp("bench") / "proj", [*TINY, "folds.mafw=[1, 2]"])
    out = run(["dvc", "repro", "evaluate_ferv39k", "aggregate_mafw"], root, timeout=1500).stdout
    yield root, out


def read(root, path):
    return json.loads((root / path).read_text())


def test_ferv39k_and_mafw_end_to_end(project):
    root, out = project
    # ingest reports the generated quirks and leaves those clips out, never silently
    assert "path_label_conflict" in out and "bad_label" in out
    assert "Running stage 'train@1'" not in out  # DFEW is not needed for either
    index = {d: read(root, f"data/shards/{d}/index.json") for d in ("ferv39k", "mafw")}
    assert list(index["ferv39k"]["folds"]) == ["1"]
    assert sorted(index["mafw"]["folds"]) == ["1", "2", "3", "4", "5"]

    for name, classes, model in (
        ("ferv39k", FERV39K, "models/ferv39k/model.pt"),
        ("mafw", MAFW, "models/mafw/fold2/model.pt"),
    ):
        state = torch.load(root / model, map_location="cpu", weights_only=True)
        assert state["classes"] == list(classes.classes) and state["info"]["dataset"] == name
        assert state["model_params"]["num_classes"] == classes.num_classes
        assert state["model_params"]["neutral_index"] == classes.neutral

    ferv = read(root, "metrics/ferv39k.json")
    assert list(ferv) == ["uar", "war", "sf_uar", "sf_war"]
    details = read(root, "reports/ferv39k/evaluation.json")
    assert {f"sf_acc_{c}" for c in FERV39K.classes} <= set(details)
    summary = read(root, "reports/summary/mafw.json")
    assert summary["folds"] == 2 and summary["fold_list"] == "1,2"
    assert {f"sf_acc_{c}" for c in MAFW.classes} & set(summary)
    assert not any(k.endswith("_Happy") for k in summary)
    folds = [read(root, f"metrics/mafw/fold{k}.json") for k in (1, 2)]
    assert summary["sf_uar"] == pytest.approx(sum(f["sf_uar"] for f in folds) / 2, abs=1e-9)
    assert read(root, "metrics/mafw.json") == {
        k: summary[k] for key in ("uar", "war", "sf_uar", "sf_war") for k in (key, f"{key}_std")
    }

    shown = json.loads(run(["dvc", "metrics", "show", "--json"], root).stdout)
    files = {path for rev in shown.values() for path in rev["data"]}
    assert {"metrics/ferv39k.json", "metrics/mafw.json"} <= files

    for table, ours, published in (
        (tables.ferv39k_table(details), details, "33.99"),
        (tables.mafw_table(summary), summary, "31.16"),
    ):
        text = table.markdown()
        assert published in text and "best-on-test UAR (optimistic)" in table.columns
        row = table.rows[-1]
        assert row[:2] == ["NR-DFERNet", "ours (DS)"]
        assert row[table.columns.index("UAR")] == pytest.approx(100 * ours["sf_uar"])
        assert table.columns[2 : 2 + len(table.rows[0]) - 7] == list(
            (FERV39K if table.name == "ferv39k" else MAFW).classes
        )
