"""The whole pipeline (every stage of dvc.yaml) on a tiny generated data set, through DVC:
`dvc repro`, metrics and plots, a no-op second repro, which stages a param change touches,
and `dvc push` / `dvc pull` into a fresh clone without re-running anything."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.pipeline.tiny import make_project, run

pytestmark = pytest.mark.slow

TABLES = [f"table{i}.{ext}" for i in range(1, 6) for ext in ("md", "csv")]
FIGURES = ["fig4_sf_gain.png", "fig5_attention.png", "fig6_tsne.png", "confusion_dfew.png"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    site = tmp_path_factory.mktemp("dvc-site")
    mp = pytest.MonkeyPatch()
    mp.setenv("DVC_NO_ANALYTICS", "1")
    mp.setenv("DVC_SITE_CACHE_DIR", str(site))
    root = make_project(tmp_path_factory.mktemp("e2e") / "proj")
    run(["dvc", "repro"], root, timeout=1500)
    yield root
    mp.undo()


def test_every_table_and_figure(pipeline):
    for name in TABLES:
        text = (pipeline / "reports/tables" / name).read_text()
        assert "paper" in text, name  # the paper's numbers stand beside ours
    for name in FIGURES:
        data = (pipeline / "reports/figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    t1 = (pipeline / "reports/tables/table1.csv").read_text().splitlines()
    assert len(t1) == 9 and all(row.split(",")[4] != "" for row in t1[1:])  # all 8 ours filled


def test_summary_and_metrics_show(pipeline):
    summary = json.loads((pipeline / "metrics/summary/dfew.json").read_text())
    assert summary["folds"] == 5 and summary["fold_list"] == "1,2,3,4,5"
    folds = [json.loads((pipeline / f"metrics/dfew/fold{k}.json").read_text()) for k in range(1, 6)]
    assert summary["sf_uar"] == pytest.approx(sum(f["sf_uar"] for f in folds) / 5, abs=1e-6)
    assert "optimistic" in summary["best_on_test_note"]
    shown = run(["dvc", "metrics", "show", "--json"], pipeline).stdout
    assert "sf_uar" in shown and "metrics/summary/dfew.json" in shown


def test_second_repro_does_nothing(pipeline):
    start = time.monotonic()
    out = run(["dvc", "repro"], pipeline).stdout
    assert "Running stage" not in out
    assert time.monotonic() - start < 60


def test_param_change_touches_only_dependants(pipeline):
    params = pipeline / "params.yaml"
    original = params.read_text()
    try:
        raw = yaml.safe_load(original)
        raw["model"]["M"] += 1
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        status = json.loads(run(["dvc", "status", "--json"], pipeline).stdout)
        changed = {name.split("@")[0] for name in status}
        assert {"train", "components", "layers", "report"} <= changed
        assert not changed & {"synth", "detect_align", "enhance", "ingest", "folds", "shards"}
    finally:
        params.write_text(original)


def test_push_then_pull_into_fresh_clone(pipeline, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "store", str(remote)], pipeline)
    run(["git", "add", "-A"], pipeline)
    run(["git", "commit", "-qm", "pipeline outputs"], pipeline)
    run(["dvc", "push"], pipeline)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pipeline), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    for rel in ["data/shards/dfew/index.json", "models/dfew/fold3/model.pt",
                "reports/figures/fig6_tsne.png", "metrics/summary/dfew.json"]:  # fmt: skip
        assert (clone / rel).read_bytes() == (pipeline / rel).read_bytes(), rel
    out = run(["dvc", "repro"], clone).stdout
    assert "Running stage" not in out
