"""A tiny copy of the project's pipeline for end-to-end tests: same dvc.yaml, stages and
library, params.yaml with small sizes (same keys, validated by the same loader)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from nrdfer.params import apply_overrides, load_all
from tests.conftest import ROOT

TINY = [
    "synth.dfew_clips=45",
    "synth.afew_clips=8",
    "synth.ferv39k_clips=24",
    "synth.mafw_clips=22",
    "synth.dfew_frames=[10, 20]",
    "synth.afew_frames=[16, 20]",
    "synth.dfew_frame_size=40",
    "synth.workers=1",
    "detect_align.workers=1",
    "enhance.workers=1",
    "shards.short_side=36",
    "shards.workers=1",
    "folds.val_fraction=0.0",
    "model.widths=[4, 8, 16]",
    "model.image_size=32",
    "model.spatial_mlp_dim=16",
    "model.temporal_mlp_dim=32",
    "model.spatial_head_dim=8",
    "model.temporal_head_dim=8",
    "model.M=1",
    "model.N=1",
    "data.size=32",
    "data.batch_size=8",
    "data.num_workers=0",
    "data.shuffle_buffer=32",
    "train.epochs=2",
    "train_afew.epochs=1",
    "ablation.folds=[1]",
    "ablation.dsf=[true, false]",
    "ablation.dct=[true, false]",
    "ablation.snippet_len=[3]",
    "ablation.snippet_stride=[1, 2]",
    "ablation.M=[1]",
    "ablation.N=[1]",
    "compare.models=[resnet18_lstm]",
    "compare.folds=[1]",
    "evaluate.fig5_clips=2",
    "report.tsne_perplexity=5.0",
]


def make_project(dst: Path, overrides: list[str] = TINY, extra: tuple[str, ...] = ()) -> Path:
    """Copy the pipeline (dvc.yaml, stages, nrdfer, .dvcignore, and the ``extra`` files such as
    noise/dvc.yaml) to ``dst`` with tiny params, as a git repo with one commit and DVC
    initialised."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", *extra):
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, dst / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "stages", dst / "stages", ignore=ignore)
    shutil.copytree(ROOT / "nrdfer", dst / "nrdfer", ignore=ignore)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (dst / "params.yaml").write_text(
        yaml.safe_dump(apply_overrides(raw, overrides), sort_keys=False)
    )
    load_all(dst / "params.yaml")  # the tiny params pass the same strict loader
    run(["git", "init", "-q"], dst)
    run(["git", "config", "user.email", "ci@example.invalid"], dst)
    run(["git", "config", "user.name", "ci"], dst)
    run(["dvc", "init", "-q"], dst)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "tiny pipeline"], dst)
    return dst


def venv_env() -> dict[str, str]:
    """The environment with this interpreter's bin dir first on PATH: dvc.yaml's commands call
    `python` and the tests call `dvc`, both of this environment."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a command (no shell) in :func:`venv_env`, failing with its output on a non-zero exit."""
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=venv_env()
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


EXP_SHOW_FLAGS = [
    "--only-changed",
    "--drop",
    ".*/fold|.*_std$|metrics/(afew|ferv39k|mafw)|[^:]*/[^:]*$",
]
"""The README's `dvc exp show` call: the changed params and the headline metrics, without the
per-fold columns (tests/pipeline/test_e2e.py checks it fits 160 columns)."""
