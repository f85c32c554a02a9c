"""The noise benchmark (noise/, a DVC project of its own) end to end on a tiny setting with two
seeds, through DVC: the main pipeline's scripts, every model and seed evaluated at every level,
the table (mean ± std) with the findings, the figure and `dvc plots show`, a no-op second run,
`dvc push`, and a project root whose `dvc status` does not see any of it."""

from __future__ import annotations

import csv
import json

import pytest

from nrdfer.report.noise import measured_noise
from tests.conftest import NOISE_PROJECT
from tests.pipeline.tiny import TINY, make_project, run

pytestmark = pytest.mark.slow

NOISE = ["noise.dfew_clips=40", "noise.levels=[0.0, 0.5]", "noise.seeds=[1, 2]"]
MODELS = {"NR-DFERNet", "NR-DFERNet w/o SF", "NR-DFERNet w/o DSF", "NR-DFERNet w/o DCT",
          "ResNet18+LSTM"}  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory, module_dvc_env):
    root = make_project(tmp_path_factory.mktemp("noise") / "proj", TINY + NOISE, NOISE_PROJECT)
    run(["dvc", "repro"], root / "noise", timeout=1500)
    yield root


def test_runs_apart_from_the_demo_pipeline(project):
    assert not (project / "data").exists()  # the demo's stages did not run
    status = run(["dvc", "status"], project).stdout
    assert "noise" not in status and "synth_test" not in status and "train@" in status
    assert sorted(p.name for p in (project / "noise/data/raw/test").iterdir() if p.is_dir()) == [
        "n1_0.0", "n1_0.5", "n2_0.0", "n2_0.5"
    ]  # fmt: skip
    again = run(["dvc", "repro"], project / "noise")
    assert "Running stage" not in again.stdout


def test_training_clips_rendered_once_test_sets_hold_the_test_clips(project):
    raw = project / "noise/data/raw"
    assert len(list((raw / "train/DFEW/Clip/clip_224x224").iterdir())) == 40
    for test_set in (p for p in (raw / "test").iterdir() if p.is_dir()):
        assert len(list((test_set / "DFEW/Clip/clip_224x224").iterdir())) == 8
    measured = measured_noise(raw / "test")
    assert measured[("n1", 0)]["n1_clips"] == measured[("n2", 0)]["n2_clips"] == 0
    assert measured[("n1", 50)]["n1_clips"] == 4 and measured[("n1", 50)]["n2_clips"] == 0
    assert measured[("n2", 50)]["n1_clips"] == 0 and measured[("n2", 50)]["n2_clips"] > 0


def test_every_evaluation_records_its_level_model_and_seed(project):
    files = sorted((project / "noise/evaluations").rglob("*.json"))
    assert len(files) == 4 * 4 * 2  # test sets x trained models x seeds
    seen = set()
    for path in files:
        d = json.loads(path.read_text())
        seen.add(
            (d["noise"], d["level"], d["model_name"], d["model_dsf"], d["model_dct"], d["seed"])
        )
    assert len(seen) == len(files)
    assert {s[-1] for s in seen} == {1, 2} and {s[1] for s in seen} == {0.0, 0.5}


def test_table_findings_figure_and_plots(project):
    reports = project / "noise/reports"
    with open(reports / "table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == MODELS
    for kind in ("n1", "n2"):
        for model in MODELS:
            levels = sorted(
                int(r["level"]) for r in rows if (r["kind"], r["model"]) == (kind, model)
            )
            assert levels == [0, 50], (kind, model)
    for r in rows:
        assert r["seeds"] == "2" and 0 <= float(r["uar"]) <= 1 and float(r["uar_std"]) >= 0
        assert (r["sf_fired_fraction"] == "") == (
            r["model"] in ("NR-DFERNet w/o SF", "ResNet18+LSTM")
        )
    # without the filter: the full model's unfiltered predictions, averaged over its seeds
    full = [json.loads(p.read_text()) for p in (project / "noise/evaluations/n1_0.0").iterdir()]
    uars = [
        d["uar"]
        for d in full
        if d["model_name"] == "nrdfernet" and d["model_dsf"] and d["model_dct"]
    ]
    row = next(
        r for r in rows if (r["model"], r["kind"], r["level"]) == ("NR-DFERNet w/o SF", "n1", "0")
    )
    assert float(row["uar"]) == pytest.approx(sum(uars) / len(uars))
    findings = json.loads((reports / "claims.json").read_text())
    assert len(findings) == 2 * 4  # kinds x models compared with NR-DFERNet, at 50 %
    table = (reports / "table.md").read_text()
    assert " ± " in table and "4/8 clips" in table and "filter fired" in table
    for f in findings:
        assert f["verdict"] in ("better", "worse", "within noise") and f["statement"] in table
    png = (reports / "uar_vs_noise.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((project / "noise/plots/n1").glob("*.json"))) == len(MODELS)


def test_plots_show_renders_the_figure_and_series(project, tmp_path):
    out = tmp_path / "plots"
    run(["dvc", "plots", "show", "-o", str(out)], project / "noise")
    html = (out / "index.html").read_text()
    for name in ("plots/n1/NR-DFERNet.json", "plots/n2/ResNet18+LSTM.json", "uar_vs_noise.png"):
        assert name in html, name


def test_outputs_go_to_a_dvc_remote(project, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "-d", "store", str(remote)], project / "noise")
    run(["dvc", "push"], project / "noise")
    assert sum(1 for p in remote.rglob("*") if p.is_file()) > 10
