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

    def fake_run(cmd, check):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    preset = write(tmp_path, "model.M: 3\n")
    assert main(["preset", preset, "--params", str(ROOT / "params.yaml"), "--run"]) == 0
    assert calls[0][1:] == ["exp", "run", "-S", "model.M=3"]
    assert calls[0][0].endswith("dvc")


def test_shipped_presets_are_valid(capsys):
    presets = sorted((ROOT / "presets").glob("*.yaml"))
    assert presets, "presets/ ships the paper's settings"
    for preset in presets:
        assert main(["preset", str(preset), "--params", str(ROOT / "params.yaml")]) == 0, preset
