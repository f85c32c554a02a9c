"""Low-light enhancement: EnlightenGAN generator (exact structure, official checkpoint format),
the Zero-DCE++ file format, the classical fallback, and the dark-frame selection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from nrdfer.errors import UserError
from nrdfer.params import load_section
from nrdfer.preprocess.enhance import (
    ClassicalEnhancer,
    EnlightenGANGenerator,
    ZeroDCENet,
    enhance_dark_frames,
    load_enlightengan,
    load_zerodce,
    mean_luma,
)
from nrdfer.preprocess.tools import build_enhancer
from tests.conftest import ROOT


def test_enlightengan_parameter_count_and_key_names():
    gen = EnlightenGANGenerator()
    assert sum(p.numel() for p in gen.parameters()) == 8_636_675
    keys = set(gen.state_dict())
    assert {"conv1_1.weight", "bn1_1.running_mean", "deconv5.weight", "conv9_2.bias"} <= keys
    assert "conv10.weight" in keys and "bn9_1.weight" in keys
    assert not any(k.startswith("bn9_2") for k in keys)


def test_enlightengan_loads_official_checkpoint_strictly(tmp_path, one_thread):
    torch.manual_seed(0)
    gen = EnlightenGANGenerator()
    for m in gen.modules():  # non-trivial BN statistics, as in a trained checkpoint
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    official = {
        f"module.{k}": v
        for k, v in gen.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    path = tmp_path / "200_net_G_A.pth"
    torch.save(official, path)
    loaded = load_enlightengan(path)
    assert not loaded.training
    for k, v in official.items():
        torch.testing.assert_close(loaded.state_dict()[k[len("module.") :]], v)
    x = torch.rand(1, 3, 37, 53) * 2 - 1  # odd sizes: padded to 48x64 inside, cropped back
    with torch.inference_mode():
        y = loaded(x)
        assert y.shape == x.shape
        assert torch.equal(y, gen.eval()(x))
    # a checkpoint of another network fails with the file name
    torch.save({"module.conv1_1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="bad.pth"):
        load_enlightengan(tmp_path / "bad.pth")


def test_enlightengan_attention_is_one_for_black():
    black = -torch.ones(1, 3, 4, 4)
    white = torch.ones(1, 3, 4, 4)
    torch.testing.assert_close(EnlightenGANGenerator.attention(black), torch.ones(1, 1, 4, 4))
    torch.testing.assert_close(EnlightenGANGenerator.attention(white), torch.zeros(1, 1, 4, 4))


def enhance_params(**changes):
    return dataclasses.replace(load_section(ROOT / "params.yaml", "enhance"), **changes)


def test_missing_weights_say_which_key(tmp_path):
    with pytest.raises(UserError, match="enhance.enlightengan_weights"):
        build_enhancer(enhance_params(method="enlightengan"))
    with pytest.raises(UserError, match="enhance.zerodce_weights"):
        load_zerodce(tmp_path / "missing.pth")


def test_zerodce_file_format_and_range(tmp_path, one_thread):
    net = ZeroDCENet()
    assert (
        sum(p.numel() for p in net.parameters()) == 79_416
    )  # the file shipped in neuro-low-light 0.1.0
    torch.save({"epoch": 1, "model_state_dict": net.state_dict()}, tmp_path / "best_model.pth")
    enhancer = build_enhancer(
        enhance_params(method="zerodce", zerodce_weights=str(tmp_path / "best_model.pth"))
    )
    frames = np.random.default_rng(0).integers(0, 60, (2, 9, 11, 3), dtype=np.uint8)
    out = enhancer.enhance(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8


def test_classical_fallback_brightens_dark_frame(astronaut):
    dark = (astronaut[::4, ::4].astype(np.float32) * 0.15).astype(np.uint8)
    out = ClassicalEnhancer(gamma=0.6, clahe_clip=2.0, clahe_grid=8).enhance(dark[None])
    assert out.shape == (1, *dark.shape) and out.dtype == np.uint8
    assert mean_luma(out)[0] > 2 * mean_luma(dark)[0]


def test_only_dark_frames_are_enhanced(astronaut):
    img = astronaut[::8, ::8]
    frames = np.stack([img, (img * 0.15).astype(np.uint8), img, (img * 0.2).astype(np.uint8)])
    enhancer = ClassicalEnhancer(gamma=0.6, clahe_clip=2.0, clahe_grid=8)
    out, dark, luma = enhance_dark_frames(frames, enhancer, dark_threshold=60.0)
    assert dark.tolist() == [False, True, False, True]
    assert np.array_equal(out[0], frames[0]) and np.array_equal(out[2], frames[2])
    assert (mean_luma(out[[1, 3]]) > luma[[1, 3]]).all()
    none, mask, _ = enhance_dark_frames(frames, enhancer, dark_threshold=0.0)
    assert not mask.any() and np.array_equal(none, frames)
