"""Fixtures of the reliability suite: one tiny pipeline run, shared by sharing and determinism.

The run is built once per session (about 35 s on two busy cores) in a temp git repository; its
environment carries the same DVC isolation as the ``dvc_env`` fixture of tests/conftest.py
(``DVC_NO_ANALYTICS=1``, a temp ``DVC_SITE_CACHE_DIR``), built here at session scope because
``dvc_env`` is per test. Nothing touches the checkout's ``.dvc``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from .tiny import copy_pipeline, dvc, git, pipeline_env

TARGET = "evaluate@1"
"""The stage the tiny pipeline is reproduced up to: synth, ingest, folds, shards, train, evaluate."""

OUTPUT_FOLDERS = ("data", "models", "metrics", "plots", "reports")
"""Where the pipeline writes (dvc.yaml outs, metrics and plots)."""


@dataclass(frozen=True)
class TinyRun:
    """A finished tiny pipeline run: its repository and the environment that made it."""

    repo: Path
    env: dict
    log: str


@pytest.fixture(scope="session")
def session_dvc_env(tmp_path_factory) -> dict:
    """The ``dvc_env`` variables at session scope, plus the pipeline subprocess settings."""
    base = tmp_path_factory.mktemp("dvc-env")
    site = base / "dvc-site-cache"
    site.mkdir()
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(site))
    return pipeline_env(env, base / "home")


def build_tiny_run(repo: Path, env: dict) -> TinyRun:
    """git init + dvc init + commit, then ``dvc repro`` of :data:`TARGET`, then commit."""
    copy_pipeline(repo)
    git("init", "-q", cwd=repo, env=env)
    dvc("init", "-q", cwd=repo, env=env)
    git("add", "-A", cwd=repo, env=env)
    git("commit", "-q", "-m", "pipeline", cwd=repo, env=env)
    log = dvc("repro", TARGET, cwd=repo, env=env).stdout
    git("add", "-A", cwd=repo, env=env)
    git("commit", "-q", "-m", "results", cwd=repo, env=env)
    return TinyRun(repo, env, log)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, session_dvc_env) -> TinyRun:
    return build_tiny_run(tmp_path_factory.mktemp("tiny") / "repo", session_dvc_env)
