"""Interruption: a stage SIGKILLed mid-run and run again ends with exactly the files of an
uninterrupted run, and no partial file ever sits under an output name.

Each stage runs in a subprocess (``slow_stage.py`` sleeps before each clip so the kill lands
mid-run, between finished outputs) on tiny generated data, is killed once its first output
exists, then re-run. Training kill/resume is tested in tests/engine/test_resume_kill.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nrdfer.data import shards as S
from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest, write_manifest
from nrdfer.data.synth import generate
from nrdfer.io import write_json
from nrdfer.params import SynthParams, from_dict
from tests.conftest import ROOT, load_stage_module

from .tiny import tiny_params, write_tiny_params

pytestmark = pytest.mark.slow

SLOW = str(Path(__file__).with_name("slow_stage.py"))


def all_files(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, hidden ones included (DVC hashes them too)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def visible(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if not any(s.startswith(".") for s in k.split("/"))}


def kill_when(cmd: list[str], ready, settle: float, timeout: float = 120.0) -> int:
    """Start ``cmd`` in its own process group; SIGKILL the group ``settle`` s after ``ready()``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(
                f"finished before the kill ({proc.returncode}): {proc.stderr.read()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no output appeared before the timeout")
        time.sleep(0.02)
    time.sleep(settle)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The tiny generated demo set, a tiny params.yaml, the DFEW manifest and folds."""
    root = tmp_path_factory.mktemp("interrupt")
    extra = ("synth.afew_clips=5", "synth.afew_size=[160,120]", "synth.afew_frames=[4,5]")
    params = tiny_params(extra)
    generate(root / "demo", from_dict(SynthParams, params["synth"]), seed=params["base"]["seed"])
    write_tiny_params(root / "params.yaml", extra)
    table = ingest(
        "dfew", root / "demo/DFEW", dfew_frames="clip_224x224", min_frames=1, verify=True
    )
    write_manifest(table, root / "dfew.parquet")
    write_json(root / "folds.json", make_folds(table, "official", 5, 0.0, seed=0))
    return root


def test_detect_align_killed_mid_run_resumes_to_identical_outputs(demo, tmp_path, capsys):
    stage = load_stage_module("stages/detect_align.py")

    def argv(out: Path) -> list[str]:
        return ["--params", str(demo / "params.yaml"), "--videos", str(demo / "demo/AFEW"),
                "--out", str(out / "faces"), "--report", str(out / "report.csv")]  # fmt: skip

    stage.main(argv(tmp_path / "ref"))
    ref = all_files(tmp_path / "ref/faces")
    ref_report = (tmp_path / "ref/report.csv").read_text()
    assert sum(k.endswith("00001.jpg") for k in ref) >= 2, "the demo clips need faces"

    out = tmp_path / "run"
    states = out / "faces/.state"
    rc = kill_when(
        [sys.executable, SLOW, "nrdfer.preprocess.pipeline:faces_in_stream", "1.0",
         "stages/detect_align.py", *argv(out)],
        ready=lambda: states.is_dir() and any(states.rglob("*.json")),
        settle=0.4,
    )  # fmt: skip
    assert rc == -signal.SIGKILL
    killed = all_files(out / "faces")
    done = {k for k in visible(killed)}
    assert done and done < set(visible(ref)), "killed mid-run: some clips done, not all"
    for name in done:  # no partial file under an output name: what exists is complete
        assert killed[name] == ref[name], name
    assert not (out / "report.csv").exists()
    # a clip folder being written at the kill (hidden temp folder) is cleaned up by the re-run
    leftover = out / "faces/Train_AFEW/.x.tmp-99999"
    leftover.mkdir(parents=True, exist_ok=True)
    (leftover / "00001.jpg").write_bytes(b"\xff\xd8 half a frame")

    stage.main(argv(out))
    assert "already done" in capsys.readouterr().out
    assert all_files(out / "faces") == ref  # hidden .state rows included
    assert (out / "report.csv").read_text() == ref_report


def test_shards_killed_mid_run_resumes_to_identical_outputs(demo, tmp_path):
    stage = load_stage_module("stages/shards.py")

    def argv(out: Path) -> list[str]:
        return ["--params", str(demo / "params.yaml"), "--manifest", str(demo / "dfew.parquet"),
                "--folds", str(demo / "folds.json"), "--root", str(demo / "demo/DFEW"),
                "--out", str(out)]  # fmt: skip

    stage.main(argv(tmp_path / "ref"))
    ref = all_files(tmp_path / "ref")
    assert len([k for k in ref if k.endswith(".tar")]) >= 5

    out = tmp_path / "run"
    rc = kill_when(
        [sys.executable, SLOW, "nrdfer.data.shards.writing:read_clip", "0.4", "stages/shards.py",
         *argv(out)],
        ready=lambda: out.is_dir() and any(out.glob("*.tar")),
        settle=0.6,  # inside the next tar: its hidden temp file is half written
    )  # fmt: skip
    assert rc == -signal.SIGKILL
    killed = all_files(out)
    tars = {k for k in visible(killed) if k.endswith(".tar")}
    assert tars and tars < {k for k in ref if k.endswith(".tar")}
    for name in tars:  # every tar under its final name is complete and byte-identical
        assert killed[name] == ref[name], name
    assert S.INDEX not in killed, "the index is written last"
    mtimes = {name: (out / name).stat().st_mtime_ns for name in tars}

    stage.main(argv(out))
    assert all_files(out) == ref  # no .progress, no temp file left
    for name, mtime in mtimes.items():  # finished tars were not written again
        assert (out / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
