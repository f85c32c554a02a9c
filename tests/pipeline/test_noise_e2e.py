"""The noise benchmark's pipeline (noise/dvc.yaml) end to end on a tiny setting, through DVC:
apart from the demo's pipeline, every model evaluated at every level, the table with the
filter's firing rate, the figure and `dvc plots show`, and a no-op second run."""

from __future__ import annotations

import csv

import pytest

from nrdfer.io import read_json
from tests.pipeline.tiny import TINY, make_project, run

pytestmark = pytest.mark.slow

NOISE = ["noise.dfew_clips=40", "noise.levels=[0.0, 0.5]"]
MODELS = {"NR-DFERNet", "NR-DFERNet w/o SF", "NR-DFERNet w/o DSF", "NR-DFERNet w/o DCT",
          "ResNet18+LSTM"}  # fmt: skip


@pytest.fixture(scope="module")
def noise_project(tmp_path_factory):
    site = tmp_path_factory.mktemp("dvc-site")
    mp = pytest.MonkeyPatch()
    mp.setenv("DVC_NO_ANALYTICS", "1")
    mp.setenv("DVC_SITE_CACHE_DIR", str(site))
    root = make_project(
        tmp_path_factory.mktemp("noise") / "proj", TINY + NOISE, extra=("noise/dvc.yaml",)
    )
    run(["dvc", "repro", "noise/dvc.yaml"], root, timeout=1200)
    yield root
    mp.undo()


def test_runs_apart_from_the_demo_pipeline(noise_project):
    assert not (noise_project / "data" / "raw").exists()  # the demo's synth did not run
    assert sorted(p.name for p in (noise_project / "data/noise/raw").iterdir()) == [
        "clean", "n1_50", "n2_50"
    ]  # fmt: skip
    again = run(["dvc", "repro", "noise/dvc.yaml"], noise_project)
    assert "Running stage" not in again.stdout


def test_levels_are_what_was_asked(noise_project):
    measured = read_json(noise_project / "data/noise/measured.json")
    test = measured["clean"]["test_clips"]
    assert test == 8
    assert measured["clean"]["n1_clips"] == measured["clean"]["n2_clips"] == 0
    assert measured["n1_50"]["n1_clips"] == 4 and measured["n1_50"]["n2_clips"] == 0
    assert 0.3 <= measured["n1_50"]["n1_frame_share"] <= 0.5
    assert measured["n2_50"]["n1_clips"] == 0 and measured["n2_50"]["n2_clip_share"] > 0.3


def test_table_figure_and_plots(noise_project):
    with open(noise_project / "reports/noise/table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == MODELS
    for kind in ("n1", "n2"):
        for model in MODELS:
            levels = sorted(
                int(r["level"]) for r in rows if (r["kind"], r["model"]) == (kind, model)
            )
            assert levels == [0, 50], (kind, model)
    for r in rows:
        assert 0 <= float(r["uar"]) <= 1
        fired = r["sf_fired_fraction"]
        assert (fired == "") == (r["model"] in ("NR-DFERNet w/o SF", "ResNet18+LSTM"))
    # without the filter: the same model, so at level 0 its WAR/UAR come from one evaluation
    clean = read_json(noise_project / "models/noise/nrdfernet/clean/evaluation.json")
    row = next(r for r in rows if r["model"] == "NR-DFERNet w/o SF" and r["level"] == "0")
    assert float(row["uar"]) == pytest.approx(clean["uar"])
    table = (noise_project / "reports/noise/table.md").read_text()
    assert "filter fired, NR-DFERNet" in table and "4/8 clips" in table
    png = (noise_project / "reports/noise/uar_vs_noise.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((noise_project / "plots/noise/n1").glob("*.json"))) == len(MODELS)


def test_plots_show_renders_the_figure_and_series(noise_project, tmp_path):
    out = tmp_path / "plots"
    run(["dvc", "plots", "show", "-o", str(out)], noise_project)
    html = (out / "index.html").read_text()
    for name in ("plots/noise/n1/NR-DFERNet.json", "plots/noise/n2/ResNet18+LSTM.json",
                 "uar_vs_noise.png"):  # fmt: skip
        assert name in html, name
