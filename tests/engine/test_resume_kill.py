"""A run killed with SIGKILL and started again ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from nrdfer.checkpoint import load_checkpoint
from tests.conftest import ROOT

WORKER = ROOT / "tests" / "engine" / "fit_worker.py"


def run_worker(out, *extra):
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(out), *extra],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(killed), "--hang-after-epoch", "2", "--reference", str(reference)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = []
        while not lines or lines[-1] not in ("CHECKPOINTED 2", ""):
            lines.append(proc.stdout.readline().strip())
        assert lines[-1] == "CHECKPOINTED 2", "\n".join(lines) + proc.stderr.read()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(killed / "last.pt")["epoch"] == 2
    assert not list(killed.glob(".last.pt*"))  # no temporary file left behind
    assert "RESUMED_FROM 2" in run_worker(killed)
    assert (reference / "final.pt").is_file()

    a = torch.load(killed / "final.pt", weights_only=True)
    b = torch.load(reference / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert json.loads((killed / "history.json").read_text()) == json.loads(
        (reference / "history.json").read_text()
    )
    # the checkpoint DVC tracks (persist: true) hashes the same as an uninterrupted run's
    assert (killed / "last.pt").read_bytes() == (reference / "last.pt").read_bytes()
