"""`nrdfer preset`: a preset file -> checked `dvc exp run -S` arguments."""

from __future__ import annotations

import shlex
import subprocess

from nrdfer.cli import main
from tests.conftest import ROOT


def write(tmp_path, text):
    path = tmp_path / "preset.yaml"
    path.write_text(text)
    return str(path)


def test_prints_checked_overrides(tmp_path, capsys):
    preset = write(
        tmp_path, "model.widths: [64, 128, 256]\ntrain.optimizer: sgd\ntrain.lr: 1.0e-3\n"
    )
    assert main(["preset", preset, "--params", str(ROOT / "params.yaml"), "-S", "base.seed=3"]) == 0
    argv = shlex.split(capsys.readouterr().out)
    assert argv == [
        "-S", "model.widths=[64,128,256]", "-S", 'train.optimizer="sgd"', "-S", "train.lr=0.001",
        "-S", "base.seed=3",
    ]  # fmt: skip


def test_unknown_key_and_wrong_type_fail(tmp_path, capsys):
    params = str(ROOT / "params.yaml")
    assert main(["preset", write(tmp_path, "model.MM: 3\n"), "--params", params]) == 2
    assert "unknown key 'model.MM'" in capsys.readouterr().err
    assert main(["preset", write(tmp_path, "model.M: three\n"), "--params", params]) == 2
    assert "model.M" in capsys.readouterr().err
    assert main(["preset", write(tmp_path, "- a list\n"), "--params", params]) == 2
    assert "flat mapping" in capsys.readouterr().err
    assert main(["preset", str(tmp_path / "missing.yaml"), "--params", params]) == 2


def test_run_calls_dvc_exp_run_without_shell(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, check, cwd=None):
        calls.append((cmd, cwd))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    preset = write(tmp_path, "model.M: 3\n")
    assert main(["preset", preset, "--params", str(ROOT / "params.yaml"), "--run"]) == 0
    assert calls[0] == (calls[0][0][:1] + ["exp", "run", "-S", "model.M=3"], None)
    assert calls[0][0][0].endswith("dvc")


def test_run_in_the_noise_project_names_the_main_params_file(tmp_path, monkeypatch):
    """`make noise PRESET=...`: `dvc exp run` in the noise benchmark's own DVC project, each -S
    naming the project root's params.yaml from there."""
    calls = []

    def fake_run(cmd, check, cwd=None):
        calls.append((cmd, cwd))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.chdir(ROOT)
    preset = write(tmp_path, "model.M: 3\n")
    assert main(["preset", preset, "--target", "noise", "--run"]) == 0
    cmd, cwd = calls[0]
    assert cmd[1:] == ["exp", "run", "-S", "../params.yaml:model.M=3"] and cwd == "noise"


def test_shipped_presets_are_valid(capsys):
    presets = sorted((ROOT / "presets").glob("*.yaml"))
    assert presets, "presets/ ships the paper's settings"
    for preset in presets:
        assert main(["preset", str(preset), "--params", str(ROOT / "params.yaml")]) == 0, preset


def test_paper_preset_is_the_papers_protocol():
    """Every training clip trains (no held-out split), the last epoch is kept, and AFEW goes
    through RetinaFace-ResNet-50 and EnlightenGAN."""
    from nrdfer.commands.preset import preset_overrides
    from nrdfer.params import load_all

    p = load_all(ROOT / "params.yaml", preset_overrides(ROOT / "presets/paper.yaml"))
    assert p["folds"].val_fraction == 0.0 and p["train"].selection == "last"
    assert p["detect_align"].backend == "resnet50" and p["enhance"].method == "enlightengan"
    assert p["model"].frames == p["data"].U * p["data"].V == 16
    assert p["model"].image_size == p["data"].size == 112


def test_paper_run_stops_before_any_work_without_the_weights(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(cmd, check):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    paper, params = str(ROOT / "presets/paper.yaml"), str(ROOT / "params.yaml")
    weights = ["-S", f"detect_align.resnet50_weights={tmp_path}/r50.pth",
               "-S", f"enhance.enlightengan_weights={tmp_path}/egan.pth"]  # fmt: skip
    assert main(["preset", paper, "--params", params, *weights, "--run"]) == 2
    err = capsys.readouterr().err
    assert not calls and "nothing was run" in err
    for part in ("Resnet50_Final.pth", "detect_align.resnet50_weights", "biubug6",
                 "-S detect_align.backend=tiny", "200_net_G_A.pth", "enhance.enlightengan_weights",
                 "VITA-Group/EnlightenGAN", "-S enhance.method=classical", f"{tmp_path}/r50.pth"):  # fmt: skip
        assert part in err, part
    # the files present: it runs; the fallbacks selected instead: it runs too
    (tmp_path / "r50.pth").write_bytes(b"x")
    (tmp_path / "egan.pth").write_bytes(b"x")
    assert main(["preset", paper, "--params", params, *weights, "--run"]) == 0 and calls
    fallback = ["-S", "detect_align.backend=tiny", "-S", "enhance.method=classical"]
    calls.clear()
    assert main(["preset", paper, "--params", params, *fallback, "--run"]) == 0
    assert calls and calls[0][1:3] == ["exp", "run"]
