"""The package's default parameters: identical to the project's params.yaml, and what the
commands a user runs outside a project (``params``, ``flops``, ``synth``, ``faces``) read,
saying so once on stderr."""

from __future__ import annotations

import json

import cv2
import pytest
import skimage.data

from nrdfer.cli import main
from nrdfer.commands import PACKAGED_PARAMS
from tests.conftest import ROOT


def test_packaged_params_are_the_projects():
    assert PACKAGED_PARAMS.read_bytes() == (ROOT / "params.yaml").read_bytes(), (
        f"{PACKAGED_PARAMS.relative_to(ROOT)} differs from params.yaml: copy params.yaml over it"
    )


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """A working folder that is not a project (no params.yaml)."""
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "params.yaml").exists()
    return tmp_path


def said_packaged_once(err: str) -> bool:
    return [line for line in err.splitlines() if str(PACKAGED_PARAMS) in line] == [
        f"nrdfer: no params.yaml in this folder; using the package's defaults {PACKAGED_PARAMS}"
    ]


def test_params_and_flops_outside_a_project(outside, capsys):
    assert main(["params", "--section", "model", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["model"]["name"] == "nrdfernet"
    assert said_packaged_once(err)
    assert main(["flops", "--json", "-S", "model.M=1"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["params"] > 0 and said_packaged_once(err)


def test_synth_outside_a_project(outside, capsys):
    assert main(["synth", "--out", "demo", "--seed", "1", "--clips", "5", "--layout", "dfew",
                 "--workers", "1"]) == 0  # fmt: skip
    assert said_packaged_once(capsys.readouterr().err)
    assert len(list((outside / "demo" / "DFEW" / "Clip").rglob("*.jpg"))) > 0


def test_faces_outside_a_project(outside, capsys):
    cv2.imwrite("astronaut.png", cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    assert main(["faces", "astronaut.png", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["frames"][0]["faces"]) == 1 and said_packaged_once(err)


def test_a_project_params_file_is_used_silently(outside, capsys):
    (outside / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    assert main(["params", "--section", "base", "-S", "base.seed=77", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["base"]["seed"] == 77 and "package" not in err


def test_a_missing_params_file_is_named(outside, capsys):
    for command in (["params"], ["flops"], ["synth", "--out", "x", "--seed", "1"]):
        assert main([*command, "--params", "nowhere.yaml"]) == 2
        err = capsys.readouterr().err
        assert "nowhere.yaml: params file not found" in err and "package" not in err
