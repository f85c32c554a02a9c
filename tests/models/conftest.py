"""Fixtures for the model tests: the project's model params, and tiny variants of them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nrdfer.params import ModelParams, load_section
from tests.conftest import ROOT, paper_overrides


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is much faster than two on the shared 2-core CI box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def paper_params() -> ModelParams:
    """The ``model`` section of params.yaml with presets/paper.yaml applied (the paper's sizes)."""
    return load_section(ROOT / "params.yaml", "model", paper_overrides("model"))


@pytest.fixture
def tiny(paper_params):
    """``tiny(**changes)``: a demo-sized NR-DFERNet config (8 frames, 32 px, narrow widths)."""

    def make(**changes) -> ModelParams:
        base = dict(
            frames=8,
            image_size=32,
            widths=(8, 16, 32),
            dynamic_blocks=2,
            M=1,
            N=2,
            spatial_heads=2,
            spatial_head_dim=8,
            spatial_mlp_dim=16,
            temporal_heads=2,
            temporal_head_dim=8,
            temporal_mlp_dim=16,
        )
        base.update(changes)
        return dataclasses.replace(paper_params, **base)

    return make
