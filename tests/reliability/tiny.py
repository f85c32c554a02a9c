"""A tiny copy of the project: params.yaml overrides that make every stage run in seconds.

Used by the reliability tests (interruption, sharing, determinism). The overrides go through
``nrdfer.params.apply_overrides`` (the ``dvc exp run -S`` syntax), so a key that disappears
from params.yaml fails here loudly instead of silently testing something else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from nrdfer.params import apply_overrides, read_yaml
from tests.conftest import ROOT

TINY = (
    "base.device=cpu",
    "synth.dfew_clips=20",
    "synth.dfew_frames=[5,8]",
    "synth.dfew_scene_size=[80,60]",
    "synth.dfew_frame_size=32",
    "synth.dfew_original_size=[48,32]",
    "synth.afew_clips=6",
    "synth.afew_frames=[4,6]",
    "synth.afew_size=[96,72]",
    "synth.afew_face_size=[0.3,0.35]",
    "synth.ferv39k_clips=0",  # the reliability tests run DFEW/AFEW stages only
    "synth.mafw_clips=0",
    "synth.sheet_clips_per_class=1",
    "synth.sheet_frames=2",
    "synth.workers=1",
    "detect_align.workers=1",
    "detect_align.output_size=32",
    "detect_align.batch_size=4",
    "enhance.workers=1",
    "shards.short_side=32",
    "shards.maxcount=2",
    "shards.workers=1",
    "model.frames=4",
    "model.image_size=32",
    "model.widths=[4,8,8]",
    "model.dynamic_blocks=1",
    "model.M=1",
    "model.N=1",
    "model.spatial_heads=1",
    "model.spatial_head_dim=8",
    "model.spatial_mlp_dim=8",
    "model.temporal_heads=1",
    "model.temporal_head_dim=8",
    "model.temporal_mlp_dim=16",
    "model.snippet_len=2",
    "model.snippet_stride=1",
    "data.U=2",
    "data.V=2",
    "data.size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.shuffle_buffer=8",
    "train.epochs=2",
    "train.optimizer=adamw",
    "train.lr=0.01",
    "train.eval_every_epoch=false",
    "evaluate.save_features=true",
)
"""``section.key=value`` overrides of the project's params.yaml for a seconds-long pipeline."""

PIPELINE_FILES = ("dvc.yaml", ".dvcignore")
"""Files of the checkout a temp project copy needs besides params.yaml and stages/."""


def tiny_params(extra: tuple[str, ...] = ()) -> dict:
    """The project's params.yaml with :data:`TINY` (and ``extra``) applied."""
    return apply_overrides(read_yaml(ROOT / "params.yaml"), TINY + tuple(extra))


def write_tiny_params(path: Path, extra: tuple[str, ...] = ()) -> Path:
    path.write_text(yaml.safe_dump(tiny_params(extra), sort_keys=False), encoding="utf-8")
    return path


def copy_pipeline(dst: Path, extra: tuple[str, ...] = ()) -> Path:
    """dvc.yaml, .dvcignore, stages/, nrdfer/ and a tiny params.yaml in ``dst`` (created)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        shutil.copy(ROOT / name, dst / name)
    for folder in ("stages", "nrdfer"):  # nrdfer/: the stages' code deps (imported from the venv)
        shutil.copytree(ROOT / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__"))
    write_tiny_params(dst / "params.yaml", extra)
    return dst


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (never through a shell), capturing its output for the failure message;
    under umask 022, the common default (test_guardrails.py checks the outputs' modes)."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, umask=0o022)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    return proc


def dvc(*args: str, cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, check=check)


def git(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return run(["git", *args], cwd=cwd, env=env)


def pipeline_env(base: dict, home: Path) -> dict:
    """``base`` (the ``dvc_env`` variables) plus what a pipeline subprocess needs.

    The venv's ``python`` first on PATH (dvc.yaml runs ``python stages/...``), a throw-away
    HOME (no user git/ssh/dvc config leaks in), a fixed git identity and hash seed.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = dict(base)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        HOME=str(home),
        PYTHONHASHSEED="0",
        GIT_AUTHOR_NAME="nrdfer-test",
        GIT_AUTHOR_EMAIL="test@nrdfer.invalid",
        GIT_COMMITTER_NAME="nrdfer-test",
        GIT_COMMITTER_EMAIL="test@nrdfer.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def file_hashes(root: Path, folders: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of every file under ``root/<folder>`` for each folder, keyed by relative path."""
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                out[path.relative_to(root).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return out


def modes(root: Path) -> dict[str, str]:
    """Permission bits of everything under ``root`` that is not 0644 (files) / 0755 (dirs)."""
    out = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != (0o755 if path.is_dir() else 0o644):
            out[str(path.relative_to(root))] = oct(mode)
    return out
