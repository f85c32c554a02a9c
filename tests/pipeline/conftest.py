"""Shared by the pipeline tests' module-scoped projects."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def module_dvc_env(tmp_path_factory):
    """The `dvc_env` of tests/conftest.py for a whole module: no analytics, a temp site cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DVC_NO_ANALYTICS", "1")
    mp.setenv("DVC_SITE_CACHE_DIR", str(tmp_path_factory.mktemp("dvc-site")))
    yield
    mp.undo()
