"""Shared fixtures: a temp DVC environment, the repository root, tiny helpers."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES_DIR = ROOT / "stages"
PAPER_PRESET = ROOT / "presets" / "paper.yaml"
NOISE_PROJECT = ("noise/dvc.yaml", "noise/.dvc/config", "noise/.dvc/.gitignore", "noise/.dvcignore")
"""The noise benchmark's DVC project (a project of its own inside this one: docs/noise.md)."""


def load_stage_module(script: str):
    """A stage script (``stages/<name>.py``, relative to the root) loaded as a module, with
    ``stages/`` importable as it is when DVC runs the script."""
    path = ROOT / script
    sys.path.insert(0, str(STAGES_DIR))
    try:
        spec = importlib.util.spec_from_file_location(f"_stage_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(STAGES_DIR))
    return module


def paper_overrides(section: str | None = None) -> list[str]:
    """The paper's settings (presets/paper.yaml) as ``-S`` overrides of params.yaml, which holds
    the demo's small sizes; ``section`` keeps only that section's keys."""
    from nrdfer.commands.preset import preset_overrides

    return preset_overrides(PAPER_PRESET, section)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture
def dvc_env(tmp_path, monkeypatch):
    """Environment for DVC in tests: no analytics, a temp site cache, never the checkout's .dvc."""
    site = tmp_path / "dvc-site-cache"
    site.mkdir()
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(site))
    env = dict(os.environ)
    return env


@pytest.fixture
def project_copy(tmp_path, dvc_env):
    """A copy of the project's pipeline files in a temp dir with `dvc init --no-scm`."""
    dst = tmp_path / "proj"
    dst.mkdir()
    for name in ("dvc.yaml", "params.yaml", "noise/dvc.yaml"):
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "stages", dst / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=dst, check=True, env=dvc_env
    )
    (dst / "noise" / ".dvc").mkdir()  # what `dvc init --subdir` writes, without git
    (dst / "noise" / ".dvc" / "config").write_text("[core]\n    no_scm = True\n")
    return dst
