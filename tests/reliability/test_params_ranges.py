"""Every params field refuses a value outside its range or set, before any work, in one line
naming the key, the value, what is allowed and where the value came from.

The table holds at least one bad value per field (as YAML text, the way ``-S`` takes it); a
test fails when a field of :data:`nrdfer.params.SECTIONS` has no row, so a new field cannot
arrive unchecked.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml

from nrdfer import params as P
from nrdfer.cli import main
from tests.conftest import ROOT

PARAMS = ROOT / "params.yaml"
AFEW_KEYS = set(yaml.safe_load(PARAMS.read_text())["train_afew"])
"""The keys train_afew overlays on train (the others are train's)."""

TRAIN = {
    "epochs": ["0", "-3", "2.5"],
    "optimizer": ["adam"],
    "lr": ["0", "-1e-3", ".nan", ".inf", "nan", "100"],
    "momentum": ["1.0", "-0.1"],
    "weight_decay": ["-0.01", "2"],
    "lr_final_factor": ["0", "1.5"],
    "grad_clip": ["-1"],
    "warmup_steps": ["-1", "1.5"],
    "schedule": ["linear", "true"],
    "ema_decay": ["-0.1", "1.0"],
    "ema_bn_batches": ["-1", "2.5"],
    "label_smoothing": ["-0.1", "1"],
    "precision": ["fp64"],
    "channels_last": ["1", "maybe"],
    "compile": ["0"],
    "eval_every_epoch": ["null"],
    "selection": ["best"],
    "log_every": ["0"],
}

BAD: dict[str, list[str]] = {
    "base.seed": ["-1", "4294967296", "twelve", "true", "1.5"],
    "base.device": ["gpu", "cuda:", "CPU", '""'],
    "model.name": ["nrdfernett", "null"],
    "model.num_classes": ["1", "1001"],
    "model.frames": ["1", "513"],
    "model.image_size": ["8", "4096"],
    "model.widths": ["[]", "[8, 16]", "[8, 0, 32]", "[8, 16, 1e9]", "[8, 16, 32, 64]", "8"],
    "model.dynamic_blocks": ["0", "17"],
    "model.M": ["-1", "33"],
    "model.N": ["0", "33"],
    "model.spatial_heads": ["0", "65"],
    "model.spatial_head_dim": ["0", "1025"],
    "model.spatial_mlp_dim": ["0", "1e9", "1000000000"],
    "model.temporal_heads": ["0", "65"],
    "model.temporal_head_dim": ["0", "1025"],
    "model.temporal_mlp_dim": ["0", "16385"],
    "model.dropout": ["-0.1", "1.0"],
    "model.embed_init_std": ["0", "2"],
    "model.dsf": ["1", "on_"],
    "model.dct": ["0"],
    "model.sf": ['"true"'],
    "model.snippet_len": ["0", "513"],
    "model.snippet_stride": ["0"],
    "model.mu1": ["1.5", "-0.1"],
    "model.mu2": ["-0.01", "2"],
    "model.neutral_index": ["-1", "1000"],
    "model.aux_loss_weight": ["-0.1", "1000"],
    "detect_align.backend": ["resnet18"],
    "detect_align.resnet50_weights": ['" weights.pth"', "[a]"],
    "detect_align.score_threshold": ["1.1", "-0.1"],
    "detect_align.nms_threshold": ["0", "1.5"],
    "detect_align.max_side": ["-1", "10", "20000"],
    "detect_align.min_face": ["-0.1", "0.6"],
    "detect_align.detect_every": ["0", "1001"],
    "detect_align.batch_size": ["0"],
    "detect_align.output_size": ["0", "8", "2048"],
    "detect_align.frame_stride": ["0"],
    "detect_align.max_frames": ["-1"],
    "detect_align.jpeg_quality": ["-1", "101"],
    "detect_align.workers": ["0", "-1"],
    "enhance.method": ["gan"],
    "enhance.enlightengan_weights": ['"w.pth "'],
    "enhance.zerodce_weights": ["3"],
    "enhance.dark_threshold": ["-1", "256"],
    "enhance.gamma": ["0", "-0.5"],
    "enhance.clahe_clip": ["0"],
    "enhance.clahe_grid": ["0", "65"],
    "enhance.batch_size": ["0"],
    "enhance.jpeg_quality": ["101"],
    "enhance.workers": ["0"],
    "synth.dfew_clips": ["3", "-1"],
    "synth.dfew_class_counts": [
        "{Happy: 1}",
        "{Happy: 0, Sad: 0, Neutral: 0, Angry: 0, Surprise: 0, Disgust: 0, Fear: 0}",
    ],  # fmt: skip
    "synth.dfew_frames": ["[1, 4]", "[9, 4]", "[4]"],
    "synth.dfew_scene_size": ["[0, 150]", "[200]"],
    "synth.dfew_face_size": ["[0.3, 0.2]", "[0, 0.2]", "[0.3, 0.7]"],
    "synth.dfew_frame_size": ["0"],
    "synth.dfew_original_size": ["[161, 120]", "[160, 0]"],
    "synth.dfew_frame_name": ["x.jpg", '"{frame}.png"', '"{nope}{frame}.jpg"'],
    "synth.dfew_split_spelling": ["dash"],
    "synth.afew_clips": ["1"],
    "synth.afew_val_share": ["1.5"],
    "synth.afew_class_counts": ["{Happy: -1}"],
    "synth.afew_frames": ["[48, 24]"],
    "synth.afew_size": ["[321, 240]"],
    "synth.afew_face_size": ["[0.18, 0.12]"],
    "synth.afew_dark_share": ["-0.3"],
    "synth.afew_dark_gain": ["[0.5, 0.3]", "[0, 0.5]"],
    "synth.ferv39k_clips": ["1", "-2"],
    "synth.ferv39k_test_share": ["0", "1", "1.5"],
    "synth.mafw_clips": ["4", "-1"],
    "synth.mafw_class_counts": ["{anger: 1}", "{Happy: 1}"],
    "synth.fps": ["0", "1000"],
    "synth.jpeg_quality": ["200"],
    "synth.intensity": ["[1.9, 1.5]", "[-1, 1]"],
    "synth.head_motion": ["-1", "100"],
    "synth.n1_rate": ["1.25"],
    "synth.n1_share": ["[0.25, 0.1]"],
    "synth.n2_rate": ["-0.25"],
    "synth.n2_share": ["[0.15, 3]"],
    "synth.test_noise": ["1", "yes please"],
    "synth.test_n1_rate": ["1.5"],
    "synth.test_n1_share": ["[0.3, 0.1]"],
    "synth.test_n2_rate": ["-0.5"],
    "synth.test_n2_share": ["[0.1, 2]"],
    "synth.sheet_clips_per_class": ["0"],
    "synth.sheet_frames": ["0"],
    "synth.workers": ["0"],
    **{f"train.{k}": v for k, v in TRAIN.items()},
    **{f"train_afew.{k}": v for k, v in TRAIN.items() if k in AFEW_KEYS},
    "evaluate.precision": ["fp16"],
    "evaluate.save_features": ["yes please"],
    "ingest.dfew_frames": ["clip_112"],
    "ingest.mafw_frames": ["faces", "1", "data/frames"],
    "ingest.min_frames": ["0"],
    "ingest.verify_frames": ["2"],
    "folds.scheme": ["random"],
    "folds.k": ["1", "0"],
    "folds.val_fraction": ["1", "-0.1"],
    "folds.main": ["[]", "[1, 1]", "[0]"],
    "folds.mafw": ["[]", "[2, 2]", "[101]"],
    "shards.short_side": ["0", "8"],
    "shards.quality": ["-5", "101"],
    "shards.maxcount": ["-1", "0"],
    "shards.max_frames": ["-1"],
    "shards.workers": ["0"],
    "data.U": ["0"],
    "data.V": ["0", "257"],
    "data.size": ["0", "15"],
    "data.crop_area": ["[0.9, 1.5]", "[0, 1]", "[1.0, 0.9]"],
    "data.crop_aspect": ["[1.4, 0.7]", "[0, 1]"],
    "data.flip_p": ["1.5"],
    "data.brightness": ["-0.2"],
    "data.rotation": ["-4", "360"],
    "data.augment_on": ["gpu"],
    "data.batch_size": ["0"],
    "data.num_workers": ["-1"],
    "data.decode_cache_mb": ["-1", "0.5"],
    "data.shuffle_buffer": ["0"],
    "data.balanced": ["1"],
    "data.balanced_epoch": ["grow", "true"],
    "data.resampled": ['"false"'],
    "source.dfew_root": ['""', '"data/DFEW "'],
    "source.afew_root": ["[a, b]"],
    "source.ferv39k_root": ['""'],
    "source.mafw_root": ['" data/MAFW"', "3"],
    "ablation.folds": ["[]", "[1, 1]", "[0]"],
    "ablation.dsf": ["[]", "[true, true]", "[1]"],
    "ablation.dct": ["[yes, yes]"],
    "ablation.snippet_len": ["[0]"],
    "ablation.snippet_stride": ["[3, 3]"],
    "ablation.M": ["[-1]"],
    "ablation.N": ["[0, 2]"],
    "compare.models": ["[nrdfernet]", "[c3d, c3d]", "[nope]"],
    "compare.folds": ["[]", "[101]"],
    "report.fig4_fold": ["0"],
    "evaluate.fig5_clips": ["-1", "100"],
    "report.tsne_perplexity": ["0.5"],
    "report.tsne_max_points": ["1"],
    "noise.levels": ["[0.25, 0.25]", "[1.5]", "[]"],
    "noise.n1_share": ["[0.3, 0.6]", "[0.5, 0.3]"],
    "noise.n2_share": ["[0.3, 0.1]"],
    "noise.dfew_clips": ["4"],
    "noise.seeds": ["[1]", "[1, 1]", "[-1, 2]", "[1.5, 2]"],
}
"""dotted key -> bad values (YAML text, as ``-S key=VALUE`` takes it)."""

EDGES = [
    "data.num_workers=0",
    "detect_align.max_side=0",
    "shards.max_frames=0",
    "compare.models=[]",
    "folds.val_fraction=0",
    "train.grad_clip=0",
    "model.M=0",
    "model.dropout=0.99",
    "train.lr=1e-3",
    "base.device=cuda:1",
    'synth.dfew_frame_name="{clip}_{frame:05d}.jpg"',
    "synth.afew_clips=0",
]
"""Values at the edge of their range that are allowed."""


def all_keys() -> set[str]:
    """Every field of every section; an overlay section's own keys only."""
    return {
        f"{s}.{f.name}"
        for s, cls in P.SECTIONS.items()
        for f in dataclasses.fields(cls)
        if s not in P.OVERLAYS or f.name in AFEW_KEYS
    }


def test_every_field_has_a_bad_value():
    assert set(BAD) == all_keys()


@pytest.fixture(scope="module")
def raw() -> dict:
    return P.read_yaml(PARAMS)


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_bad_value_is_refused_naming_key_value_range_and_origin(key, raw, monkeypatch):
    monkeypatch.setattr(P.loading, "read_yaml", lambda path: raw)  # parsed once (copied)
    section, name = key.split(".")
    allowed = P.allowed(P.SECTIONS[section], name)
    for text in BAD[key]:
        override = f"{key}={text}"
        with pytest.raises(P.ParamsError) as err:
            P.load_params(PARAMS, [section], [override])
        message = str(err.value)
        shown = json.dumps(P.parse_yaml(text, "test"), default=str)  # the value, as JSON
        assert message.startswith(f"-S {override}: {key} = {shown}: must be {allowed}"), message
        assert "\n" not in message and "params.yaml" not in message, message  # from -S


def test_values_at_the_edges_are_allowed():
    P.load_all(PARAMS, EDGES)


def test_a_bad_value_in_the_file_names_the_file(tmp_path):
    raw = yaml.safe_load(PARAMS.read_text())
    raw["shards"]["maxcount"] = -1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(P.ParamsError) as err:
        P.load_params(path, ["shards"])
    assert str(err.value) == (f"{path}: shards.maxcount = -1: must be an integer in [1, 1000000]")


def test_stage_set_names_set_and_not_params_yaml(tmp_path):
    """In process (the exit status 2 of a stage script: test_bad_inputs.py)."""
    from tests.conftest import load_stage_module

    stage = load_stage_module("stages/shards.py")
    argv = ["--params", str(PARAMS), "--set", "shards.short_side=0", "--manifest", "m",
            "--folds", "f", "--root", "r", "--out", str(tmp_path / "s")]  # fmt: skip
    with pytest.raises(P.ParamsError) as err:
        stage.main(argv)
    assert str(err.value) == (
        "--set shards.short_side=0: shards.short_side = 0: must be an integer in [16, 4096]"
    )
    assert not (tmp_path / "s").exists()


def test_nrdfer_params_refuses_before_printing(capsys):
    assert main(["params", "--params", str(PARAMS), "-S", "train.lr=nan"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        'nrdfer params: error: -S train.lr=nan: train.lr = "nan": must be a number in (0, 10]\n'
    )


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path, capsys):
    text = PARAMS.read_text().replace("  M: 1 ", "  M: 1\n  M: 3 ", 1)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  M: 1")) + 1
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(P.ParamsError) as err:
        P.load_params(path, ["base"])  # any section: the whole file is read
    assert str(err.value) == (
        f"{path}: key 'model.M' is written twice (lines {first} and {first + 1}); keep one"
    )
    override = "synth.dfew_class_counts={Happy: 1, Sad: 2, Happy: 3}"
    assert main(["params", "--params", str(PARAMS), "-S", override]) == 2
    err = capsys.readouterr().err
    assert f"-S {override}: key 'synth.dfew_class_counts.Happy' is written twice" in err
    assert "lines 1 and 1" in err


def test_values_read_from_a_model_file_are_checked(tmp_path):
    """A model file whose params would allocate 128 GB is refused before the model is built."""
    from nrdfer.checkpoint import save_checkpoint
    from nrdfer.model_file import model_file_state
    from nrdfer.params import to_dict
    from nrdfer.predict.loading import load_model_for_inference

    model = to_dict(P.load_section(PARAMS, "model")) | {"spatial_mlp_dim": 10**9}
    path = tmp_path / "model.pt"
    save_checkpoint(
        path,
        model_file_state({"w": torch.zeros(1)}, model_params=model, classes=["a"],
                         preprocess={}, info={}),
    )  # fmt: skip
    with pytest.raises(P.ParamsError) as err:
        load_model_for_inference(path)
    assert str(err.value).startswith(
        f"{path}: model.spatial_mlp_dim = 1000000000: must be an integer in [1, 16384]; "
    )
    assert "re-run training" in str(err.value)
