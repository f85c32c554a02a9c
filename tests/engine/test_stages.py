"""train + evaluate stages end to end on tiny generated shards with a tiny NR-DFERNet."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from nrdfer.checkpoint import load_checkpoint
from nrdfer.data import shards as S
from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest
from nrdfer.labels import CLASSES
from nrdfer.model_file import load_model_file
from tests.conftest import ROOT, load_stage_module
from tests.data.trees import SIDE, make_dfew

TINY_MODEL = dict(
    frames=4, image_size=SIDE, widths=[4, 8, 8], dynamic_blocks=1, M=1, N=1,
    spatial_heads=1, spatial_head_dim=8, spatial_mlp_dim=8, temporal_heads=1,
    temporal_head_dim=8, temporal_mlp_dim=16, snippet_len=2, snippet_stride=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Tiny DFEW shards and a params.yaml shrunk to match."""
    root = tmp_path_factory.mktemp("e2e")
    clips = {v: (1 + v % 7, 4 + v % 5) for v in range(1, 31)}
    make_dfew(root / "DFEW", clips, {v: 1 + v % 2 for v in clips})
    table = ingest("dfew", root / "DFEW", dfew_frames="clip_224x224", min_frames=1, verify=True)
    folds = make_folds(table, "official", 5, 0.2, seed=0)
    spec = S.ShardSpec(short_side=SIDE, quality=95, maxcount=8, max_frames=0)
    S.write_shards(table, folds, root / "DFEW", root / "shards", spec, workers=1, progress=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base"]["device"] = "cpu"
    params["model"].update(TINY_MODEL)
    params["data"].update(U=2, V=2, size=SIDE, batch_size=8, num_workers=0, shuffle_buffer=8)
    params["train"].update(epochs=2, lr=0.01, selection="val", eval_every_epoch=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.mark.slow
def test_train_then_evaluate_stage(project, capsys):
    out = project / "out"
    train = load_stage_module("stages/train.py")
    argv = [
        "--params", str(project / "params.yaml"), "--shards", str(project / "shards"),
        "--fold", "1", "--checkpoint", str(out / "fold1/last.pt"),
        "--model", str(out / "fold1/model.pt"),
        "--live-metrics", str(out / "fold1/live/metrics.json"),
        "--live-plots", str(out / "fold1/live/plots/metrics"),
        "--summary", str(out / "fold1/summary.json"),
    ]  # fmt: skip
    train.main(argv)
    assert "epoch 2/2 | loss" in capsys.readouterr().out  # one summary line per epoch
    summary = json.loads((out / "fold1/summary.json").read_text())
    assert summary["selection"] == "val" and 1 <= summary["selected_epoch"] <= 2
    assert "best_on_test_note" in summary and "best_on_test_sf_war" in summary
    model = load_model_file(out / "fold1/model.pt")
    assert model["classes"] == list(CLASSES) and model["model_params"]["frames"] == 4
    assert model["preprocess"]["frames"] == 4
    assert load_checkpoint(out / "fold1/last.pt")["epoch"] == 2
    assert (out / "fold1/live/plots/metrics/test/sf_gain_war.tsv").is_file()

    evaluate = load_stage_module("stages/evaluate.py")
    ev = out / "eval"

    def run_evaluate(details, metrics, plots):
        evaluate.main(
            [
                "--params", str(project / "params.yaml"), "--shards", str(project / "shards"),
                "--fold", "1", "--model", str(out / "fold1/model.pt"),
                "--training", str(out / "fold1/summary.json"), "--details", str(details),
                "--metrics", str(metrics), "--confusion", str(plots / "confusion"),
                "--per-class", str(plots / "per_class"),
                "--confusion-png", str(plots / "confusion.png"),
                "--predictions", str(plots / "predictions.csv"),
                "--features", str(plots / "features.npz"),
            ]
        )  # fmt: skip

    run_evaluate(ev / "evaluation.json", ev / "fold1.json", ev)
    metrics = json.loads((ev / "fold1.json").read_text())
    assert list(metrics) == ["uar", "war", "sf_uar", "sf_war"]  # the headline only
    details = json.loads((ev / "evaluation.json").read_text())
    n_test = 15
    assert details["clips"] == n_test and details["selection"] == "val"
    assert all(k in details for k in ("war", "uar", "sf_war", "sf_uar", "acc_Happy", "sf_acc_Fear"))
    assert details["best_on_test_note"] == summary["best_on_test_note"]  # carried from training
    assert {k: details[k] for k in metrics} == metrics
    rows = list(csv.DictReader((ev / "predictions.csv").open()))
    assert len(rows) == n_test and [r["key"] for r in rows] == sorted(r["key"] for r in rows)
    correct = sum(r["label"] == r["pred"] for r in rows)
    assert metrics["war"] == pytest.approx(correct / n_test, abs=1e-6)
    conf = json.loads((ev / "confusion/with_sf.json").read_text())
    assert len(conf) == n_test and set(conf[0]) == {"actual", "predicted"}
    per_class = json.loads((ev / "per_class/without_sf.json").read_text())
    assert {r["class"]: r["accuracy"] for r in per_class} == {
        c: details[f"acc_{c}"] for c in CLASSES if details[f"acc_{c}"] is not None
    }
    assert (ev / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    feats = np.load(ev / "features.npz")
    assert feats["features"].shape[0] == n_test and len(feats["keys"]) == n_test
    first = (ev / "evaluation.json").read_bytes()
    run_evaluate(ev / "evaluation.json", ev / "again.json", out / "eval2")
    assert (ev / "evaluation.json").read_bytes() == first  # deterministic details file


@pytest.mark.slow
def test_deferred_warp_trains_the_same_model(project, tmp_path):
    """augment_on: device (the CPU warp after batching) trains the bit-identical model of the
    default in-loader warp (in-process loading: worker processes read the shards in another
    order, which tests/data compares batch by batch)."""
    import torch

    train = load_stage_module("stages/train.py")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update(epochs=1, eval_every_epoch=False, selection="last")
    weights = []
    for name, extra in {
        "plain": {},
        "deferred": dict(augment_on="device"),
    }.items():
        run = dict(params, data=dict(params["data"], **extra))
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(run))
        out = tmp_path / name
        train.main(
            [
                "--params", str(tmp_path / f"{name}.yaml"), "--shards", str(project / "shards"),
                "--fold", "1", "--checkpoint", str(out / "last.pt"),
                "--model", str(out / "model.pt"), "--live-metrics", str(out / "live/metrics.json"),
                "--live-plots", str(out / "live/plots/metrics"), "--summary", str(out / "summary.json"),
            ]
        )  # fmt: skip
        weights.append(load_model_file(out / "model.pt")["model_state"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.slow
def test_grid_cell_with_the_main_settings_takes_the_main_weights(project, tmp_path, capsys):
    """ablate.py --same-as-*: the cell of params.yaml's own settings copies the main training's
    model (the same bytes a training of its own writes); other cells, or an unfinished main
    training, train."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update(epochs=2, eval_every_epoch=True, selection="last", log_every=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shards, main = project / "shards", tmp_path / "main"
    load_stage_module("stages/train.py").main(
        [
            "--params", str(tmp_path / "params.yaml"), "--shards", str(shards), "--fold", "1",
            "--checkpoint", str(main / "last.pt"), "--model", str(main / "model.pt"),
            "--live-metrics", str(main / "live/metrics.json"),
            "--live-plots", str(main / "live/plots/metrics"), "--summary", str(main / "summary.json"),
        ]
    )  # fmt: skip
    ablate = load_stage_module("stages/ablate.py")

    def cell(name, *extra, params_file=tmp_path / "params.yaml", same_as=True):
        run = tmp_path / name
        argv = ["--params", str(params_file), "--shards", str(shards), "--fold", "1"]
        argv += [*extra, "--run", str(run)]
        if same_as:
            argv += ["--same-as-checkpoint", str(main / "last.pt")]
            argv += ["--same-as-model", str(main / "model.pt")]
        capsys.readouterr()
        ablate.main(argv)
        return run, capsys.readouterr().out

    taken, out = cell("taken", "--set", "model.dsf=true", "--set", "train.log_every=1")
    assert f"the weights of {main / 'model.pt'}" in out
    assert (taken / "model.pt").read_bytes() == (main / "model.pt").read_bytes()
    assert not (taken / "last.pt").exists() and (taken / "evaluation.json").is_file()
    summary = json.loads((taken / "training.json").read_text())
    assert summary.pop("weights_from") == str(main / "model.pt")

    trained, _ = cell("trained", "--set", "model.dsf=true", same_as=False)
    assert (trained / "model.pt").read_bytes() == (main / "model.pt").read_bytes()
    assert json.loads((trained / "training.json").read_text()) == summary
    assert (trained / "evaluation.json").read_bytes() == (taken / "evaluation.json").read_bytes()

    other, out = cell("other", "--set", "model.dsf=false")
    assert "training (" in out and "other settings (model.dsf)" in out
    assert (other / "model.pt").read_bytes() != (main / "model.pt").read_bytes()

    params["train"]["epochs"] = 3
    (tmp_path / "longer.yaml").write_text(yaml.safe_dump(params))
    _, out = cell("longer", params_file=tmp_path / "longer.yaml")
    assert "other settings (train.epochs)" in out


def test_weight_differences_ignore_only_what_does_not_shape_the_weights():
    from nrdfer.engine.train import weight_differences

    a = {
        "train": {"lr": 0.1, "eval_every_epoch": True, "log_every": 5},
        "data": {"size": 48, "decode_cache_mb": 512},
        "fold": "1",
        "init": None,
    }
    same = {
        "train": {"lr": 0.1, "eval_every_epoch": False, "log_every": 1},
        "data": {"size": 48, "decode_cache_mb": 0},
        "fold": "1",
        "init": None,
    }
    assert weight_differences(a, same) == []
    assert weight_differences(a, {**a, "data": {"size": 32, "decode_cache_mb": 512}}) == [
        "data.size"
    ]
    other = {**a, "train": {"lr": 0.2, "eval_every_epoch": True}, "fold": "2"}
    assert weight_differences(a, other) == ["fold", "train.lr"]
    assert weight_differences(a, {**a, "shards": "abc"}) == ["shards"]


@pytest.mark.slow
def test_a_model_file_that_is_not_the_checkpoints_result_is_not_taken(project, tmp_path, capsys):
    """--same-as-model must hold the checkpoint's weights: a model file of another training
    with otherwise matching settings is refused, and the cell trains."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update(epochs=1, eval_every_epoch=False, selection="last")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    ablate = load_stage_module("stages/ablate.py")
    base = ["--params", str(tmp_path / "params.yaml"), "--shards", str(project / "shards")]
    ablate.main([*base, "--fold", "1", "--run", str(tmp_path / "a")])
    ablate.main([*base, "--fold", "2", "--run", str(tmp_path / "b")])
    capsys.readouterr()
    argv = [*base, "--fold", "1", "--run", str(tmp_path / "c")]
    argv += ["--same-as-checkpoint", str(tmp_path / "a/last.pt")]
    ablate.main([*argv, "--same-as-model", str(tmp_path / "b/model.pt")])
    assert f"{tmp_path / 'b/model.pt'} does not hold the weights of" in capsys.readouterr().out
    assert (tmp_path / "c/last.pt").is_file()  # it trained
    assert (tmp_path / "c/model.pt").read_bytes() == (tmp_path / "a/model.pt").read_bytes()


@pytest.mark.slow
def test_snippet_grid_writes_what_one_evaluation_per_setting_writes(project, tmp_path):
    """--snippet-grid: one details file per (L, S) of the ablation grid, each byte-identical to
    the single evaluation with --snippet-len L --snippet-stride S."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update(epochs=1, eval_every_epoch=False, selection="last")
    params["ablation"].update(snippet_len=[2, 3], snippet_stride=[1, 2])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    base = ["--params", str(tmp_path / "params.yaml"), "--shards", str(project / "shards")]
    load_stage_module("stages/ablate.py").main([*base, "--fold", "1", "--run", str(tmp_path / "r")])
    evaluate = load_stage_module("stages/evaluate.py")
    model = ["--fold", "1", "--model", str(tmp_path / "r/model.pt")]
    evaluate.main([*base, *model, "--snippet-grid", "--details", str(tmp_path / "grid")])
    names = sorted(p.name for p in (tmp_path / "grid").iterdir())
    assert names == ["L2-S1.json", "L2-S2.json", "L3-S1.json", "L3-S2.json"]
    for name in names:
        length, stride = name[1], name[4]
        single = tmp_path / f"single-{name}"
        evaluate.main([*base, *model, "--snippet-len", length, "--snippet-stride", stride,
                       "--details", str(single)])  # fmt: skip
        assert single.read_bytes() == (tmp_path / "grid" / name).read_bytes()
        assert json.loads(single.read_text())["model_snippet_len"] == int(length)
