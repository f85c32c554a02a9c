"""The whole pipeline (every stage of dvc.yaml) on a tiny generated data set, through DVC:
`dvc repro`, `dvc metrics show` / `dvc plots show` / `dvc exp show` / `dvc plots diff`, a no-op
second repro, exactly which stages a param change makes stale, and `dvc push` / `dvc pull` into
a fresh clone without re-running anything."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.conftest import ROOT
from tests.pipeline.tiny import EXP_SHOW_FLAGS, make_project, run, venv_env

pytestmark = pytest.mark.slow

TABLES = [f"{t}.{ext}" for t in (*(f"table{i}" for i in range(1, 6)), "ferv39k", "mafw")
          for ext in ("md", "csv")]  # fmt: skip
FIGURES = ["fig4_sf_gain.png", "fig5_attention.png", "fig6_tsne.png", "confusion_dfew.png"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, module_dvc_env):
    root = make_project(tmp_path_factory.mktemp("e2e") / "proj")
    run(["dvc", "repro"], root, timeout=1500)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "pipeline outputs"], root)
    yield root


def test_every_table_and_figure(pipeline):
    for name in TABLES:
        text = (pipeline / "reports/tables" / name).read_text()
        # the paper's numbers stand beside ours; on FERV39k and MAFW, later papers' published ones
        assert ("published" if name.startswith(("ferv39k", "mafw")) else "paper") in text, name
    for name in FIGURES:
        data = (pipeline / "reports/figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    t1 = (pipeline / "reports/tables/table1.csv").read_text().splitlines()
    assert len(t1) == 9 and all(row.split(",")[4] != "" for row in t1[1:])  # all 8 ours filled
    claims = json.loads((pipeline / "reports/tables/claims.json").read_text())
    lines = [c for section in claims.values() for c in section]
    assert len(lines) == 6  # five Table 1 comparisons and the filter
    assert all(
        c["verdict"] in {"better", "worse", "within noise", "not established"} for c in lines
    )
    for c in lines:
        if c["low"] is None:  # one ablation fold: one training per setting, no interval
            assert c["verdict"] == "not established"
        else:
            assert (c["verdict"] == "within noise") == (c["low"] <= 0 <= c["high"])
    assert "## Table 1" in (pipeline / "reports/tables/claims.md").read_text()


def test_fig5_frames_come_with_the_evaluation(pipeline):
    """The report reads result files only: the components run keeps the test-protocol input
    frames of its first `evaluate.fig5_clips` clips beside their attention."""
    import numpy as np

    from nrdfer.data.shards import eval_loader
    from nrdfer.params import load_params

    params = load_params(pipeline / "params.yaml", ["data", "evaluate"])
    run_dir = pipeline / "models/ablation/components/dsftrue-dcttrue/fold1"
    with np.load(run_dir / "features.npz", allow_pickle=False) as z:
        keys, frames, attention = list(z["keys"]), z["frames"], z["attention"]
    n = params["evaluate"].fig5_clips
    assert frames.dtype == np.uint8 and frames.shape[0] == n == 2 and len(attention) == len(keys)
    clips, _, batch_keys = next(iter(eval_loader(pipeline / "data/shards/dfew", "1", params["data"],
                                                 split="test", num_workers=0)))  # fmt: skip
    assert list(batch_keys[:n]) == keys[:n]
    assert np.array_equal(frames, clips[:n].permute(0, 1, 3, 4, 2).numpy())


def test_summary_and_metrics_show(pipeline):
    summary = json.loads((pipeline / "reports/summary/dfew.json").read_text())
    assert summary["folds"] == 5 and summary["fold_list"] == "1,2,3,4,5"
    folds = [json.loads((pipeline / f"metrics/dfew/fold{k}.json").read_text()) for k in range(1, 6)]
    assert all(list(f) == ["uar", "war", "sf_uar", "sf_war"] for f in folds)
    assert summary["sf_uar"] == pytest.approx(sum(f["sf_uar"] for f in folds) / 5, abs=1e-6)
    assert "optimistic" in summary["best_on_test_note"] and "acc_Happy" in summary
    headline = json.loads((pipeline / "metrics/dfew.json").read_text())
    assert headline == {k: summary[k] for k in headline} and len(headline) == 8
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], pipeline).stdout)
    files = {path: m["data"] for rev in shown.values() for path, m in rev["data"].items()}
    assert "metrics/dfew.json" in files and "metrics/afew.json" in files
    columns = {k for f in files.values() for k in f}
    assert len(columns) + 1 <= 12, sorted(columns)  # + the Path column
    table = run(["dvc", "metrics", "show"], pipeline).stdout
    assert max(len(line) for line in table.splitlines()) <= 160, table


def test_plots_show_renders_curves_confusion_and_per_class(pipeline, tmp_path):
    out = tmp_path / "plots"
    run(["dvc", "plots", "show", "-o", str(out)], pipeline)
    html = (out / "index.html").read_text()
    for name in ("live/plots/metrics/test/sf_uar.tsv", "confusion/with_sf.json",
                 "per_class/without_sf.json", "reports/figures"):  # fmt: skip
        assert name in html, name


def test_param_key_no_stage_reads_is_an_error(pipeline):
    proc = subprocess.run(
        ["dvc", "exp", "run", "-S", "model.MM=3"], cwd=pipeline, capture_output=True, text=True,
        env=venv_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0 and "model.MM" in proc.stdout + proc.stderr


def test_experiment_views_and_plots_diff(pipeline, tmp_path):
    """`dvc exp run -S model.M=2`: `dvc exp show` with the README's flags shows the changed param
    and the 5-fold headline in a 160-column terminal (nothing collapsed into "…"), and
    `dvc plots diff` compares the two revisions."""
    run(["dvc", "exp", "run", "--temp", "-S", "model.M=2", "-n", "m2"], pipeline, timeout=900)
    readme = (ROOT / "README.md").read_text()
    assert f"dvc exp show {EXP_SHOW_FLAGS[0]} {EXP_SHOW_FLAGS[1]} '{EXP_SHOW_FLAGS[2]}'" in readme
    env = dict(venv_env(), COLUMNS="160")
    table = subprocess.run(
        ["dvc", "exp", "show", *EXP_SHOW_FLAGS, "--no-pager"], cwd=pipeline, env=env,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "m2" in table and "model.M" in table and "…" not in table, table
    for key in ("uar", "war", "sf_uar", "sf_war"):
        assert f"metrics/dfew.json:{key}" in table, table
    assert max(len(line) for line in table.splitlines()) <= 160, table
    out = tmp_path / "diff"
    run(["dvc", "plots", "diff", "HEAD", "m2", "-o", str(out)], pipeline)
    html = (out / "index.html").read_text()
    assert "m2" in html and "per_class/with_sf.json" in html


FOLDS = [f"@{k}" for k in range(1, 6)]
GRIDS = [f"components@{d}-{c}-1" for d in ("True", "False") for c in ("True", "False")]
NEW_TRAIN = ["train_ferv39k", "train_mafw@1"]  # FERV39k, MAFW: the DFEW recipe (train section)
STALE = {
    # NR-DFERNet's layers: its trainings and Tables 1/5 runs, not the (M, N) grid nor baselines
    "model.M": {
        *(f"train{f}" for f in FOLDS),
        "train_afew",
        *GRIDS,
        "oversample@1",
        "report",
        *NEW_TRAIN,
    },  # fmt: skip
    "data.size": {
        *(f"{s}{f}" for s in ("train", "evaluate") for f in FOLDS),
        "train_afew",
        "evaluate_afew",
        *NEW_TRAIN,
        "evaluate_ferv39k",
        "evaluate_mafw@1",
        *GRIDS,
        "snippets@1",
        "layers@1-1-1",
        "oversample@1",
        "compare@resnet18_lstm-1",
        "compare_afew@resnet18_lstm",
    },  # fmt: skip  (the report reads no data params: Fig. 5's frames come with the features)
    # AFEW fine-tuning sets its own lr (train_afew overlays train)
    "train.lr": {
        *(f"train{f}" for f in FOLDS),
        *NEW_TRAIN,
        *GRIDS,
        "layers@1-1-1",
        "oversample@1",
        "compare@resnet18_lstm-1",
    },  # fmt: skip
    "shards.quality": {f"shards@{d}" for d in ("dfew", "afew", "ferv39k", "mafw")},
    "report.fig4_fold": {"report"},
}
"""Param -> the exact stages `dvc status` says are stale after changing it (the ones downstream
re-run too, when their inputs change)."""


@pytest.mark.parametrize("key", sorted(STALE))
def test_param_change_makes_exactly_its_readers_stale(pipeline, key):
    params = pipeline / "params.yaml"
    original = params.read_text()
    try:
        raw = yaml.safe_load(original)
        section, name = key.split(".")
        value = raw[section][name]
        raw[section][name] = value + 1 if isinstance(value, int) else value * 2
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        status = json.loads(run(["dvc", "status", "--json"], pipeline).stdout)
        assert set(status) == STALE[key]
    finally:
        params.write_text(original)


def test_push_then_pull_into_fresh_clone(pipeline, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "store", str(remote)], pipeline)
    run(["git", "commit", "-qam", "remote"], pipeline)
    run(["dvc", "push"], pipeline)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pipeline), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    for rel in ["data/shards/dfew/index.json", "models/dfew/fold3/model.pt",
                "reports/figures/fig6_tsne.png", "metrics/dfew.json"]:  # fmt: skip
        assert (clone / rel).read_bytes() == (pipeline / rel).read_bytes(), rel
    out = run(["dvc", "repro"], clone).stdout
    assert "Running stage" not in out
