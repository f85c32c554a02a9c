"""U x V frame sampling (paper §3.2, authors' code) and clip augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from nrdfer.data.sampling import centred_starts, random_starts, sample_indices
from nrdfer.data.transforms import (
    ClipAugment,
    augment_clip,
    clip_affine,
    draw_clip_params,
    random_crop_box,
    resize_clip,
    warp_batch,
)

U, V = 8, 2


def test_test_sampling_matches_the_authors_formula():
    # n = 70: tick = 69 / 8 = 8.625, starts int(4.3125 + 8.625 k)
    assert centred_starts(70, U, V).tolist() == [4, 12, 21, 30, 38, 47, 56, 64]
    idx = sample_indices(70, U, V, train=False)
    assert idx.tolist()[:4] == [4, 5, 12, 13] and len(idx) == U * V


@pytest.mark.parametrize("n", [1, 3, 8, 9, 12, 16, 17, 70, 847])
def test_indices_valid_and_short_clips_padded_with_last_frame(n):
    rng = np.random.default_rng(0)
    for train in (True, False):
        idx = sample_indices(n, U, V, train=train, rng=rng)
        assert idx.shape == (U * V,) and idx.min() >= 0 and idx.max() <= n - 1
        assert np.all(np.diff(idx) >= 0), "frames stay in temporal order"
        pairs = idx.reshape(U, V)
        assert np.all(pairs[:, 1] == np.minimum(pairs[:, 0] + 1, n - 1)), "V consecutive frames"
    if n < U * V:
        assert sample_indices(n, U, V, train=False)[-1] == n - 1  # padded with the last frame
    if n <= U:
        assert sample_indices(n, U, V, train=False).tolist() == sorted(
            [min(i, n - 1) for s in list(range(n)) + [n - 1] * (U - n) for i in (s, s + 1)]
        )


def test_train_sampling_one_random_start_per_segment_and_seeded():
    n = 70
    avg = (n - V + 1) // U
    seen = set()
    for seed in range(30):
        starts = random_starts(n, U, V, np.random.default_rng(seed))
        k = np.arange(U)
        assert np.all(starts >= k * avg) and np.all(starts < (k + 1) * avg)
        seen.add(tuple(starts))
    assert len(seen) > 20, "training starts are random"
    a = sample_indices(n, U, V, train=True, rng=np.random.default_rng(7))
    b = sample_indices(n, U, V, train=True, rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        sample_indices(n, U, V, train=True)


AUG = ClipAugment(
    size=16,
    crop_area=(0.9, 1.0),
    crop_aspect=(5 / 7, 7 / 5),
    flip_p=0.5,
    brightness=0.6,
    rotation=4,
)


def test_crop_box_within_area_and_aspect():
    rng = np.random.default_rng(1)
    for _ in range(200):
        x0, y0, w, h = random_crop_box(40, 60, (0.9, 1.0), (5 / 7, 7 / 5), rng)
        assert x0 >= 0 and x0 + w <= 60 and y0 >= 0 and y0 + h <= 40
        assert 0.85 <= w * h / 2400 <= 1.0 + 1e-9
        assert 5 / 7 - 0.05 <= w / h <= 7 / 5 + 0.05


def test_augmentation_same_parameters_for_every_frame():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, size=(20, 20, 3), dtype=np.uint8)
    for seed in range(10):
        clip = augment_clip([frame] * 4, AUG, np.random.default_rng(seed))
        assert clip.shape == (4, 3, 16, 16) and clip.dtype == np.uint8
        assert all(np.array_equal(clip[0], clip[i]) for i in range(4))
    a = augment_clip([frame] * 2, AUG, np.random.default_rng(3))
    b = augment_clip([frame] * 2, AUG, np.random.default_rng(3))
    c = augment_clip([frame] * 2, AUG, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_identity_augmentation_equals_resize_and_flip_mirrors():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)
    off = ClipAugment(16, (1.0, 1.0), (1.0, 1.0), flip_p=0.0, brightness=0.0, rotation=0.0)
    out = augment_clip([frame], off, np.random.default_rng(0))
    assert np.array_equal(out, resize_clip([frame], 16))
    assert np.array_equal(out[0], frame.transpose(2, 0, 1))
    flip = ClipAugment(16, (1.0, 1.0), (1.0, 1.0), flip_p=1.0, brightness=0.0, rotation=0.0)
    flipped = augment_clip([frame], flip, np.random.default_rng(0))
    assert np.array_equal(flipped[0], frame[:, ::-1].transpose(2, 0, 1))


def test_brightness_scales_and_rotation_moves_pixels():
    frame = np.full((16, 16, 3), 100, dtype=np.uint8)
    bright = ClipAugment(16, (1.0, 1.0), (1.0, 1.0), flip_p=0.0, brightness=0.6, rotation=0.0)
    means = {
        float(augment_clip([frame], bright, np.random.default_rng(s)).mean()) for s in range(20)
    }
    assert min(means) >= 100 * 0.4 - 1 and max(means) <= 100 * 1.6 + 1 and len(means) > 10
    rot = ClipAugment(16, (1.0, 1.0), (1.0, 1.0), flip_p=0.0, brightness=0.0, rotation=4.0)
    out = augment_clip([frame], rot, np.random.default_rng(0))
    assert out[0, :, 0, 0].max() < 100  # a rotated corner falls outside the frame (black)


def _draws(frames_hw, seeds, aug=AUG):
    """Each clip's maps and brightness as the loader draws them (one generator per clip)."""
    maps, factors = [], []
    for (h, w), seed in zip(frames_hw, seeds, strict=True):
        p = draw_clip_params(h, w, aug, np.random.default_rng(seed))
        maps.append(clip_affine(p, aug.size))
        factors.append(p.brightness)
    return torch.tensor(np.stack(maps)), torch.tensor(factors)


def test_warp_batch_is_the_loader_augmentation_after_batching():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 255, size=(3, 4, 20, 22, 3), dtype=np.uint8)  # (B, T, H, W, 3)
    clips = cv2.GaussianBlur(clips.reshape(-1, 22, 3), (0, 0), 1.5).reshape(clips.shape)
    maps, factors = _draws([(20, 22)] * 3, [5, 6, 7])
    loader_side = np.stack(
        [
            augment_clip(list(c), AUG, np.random.default_rng(s))
            for c, s in zip(clips, [5, 6, 7], strict=True)
        ]
    )  # (B, T, 3, 16, 16): the draws of augment_clip are those of _draws
    frames = torch.from_numpy(clips)
    cv = warp_batch(frames, maps, factors, 16, backend="opencv")
    assert cv.dtype == torch.uint8 and cv.shape == (3, 4, 3, 16, 16)
    assert np.array_equal(cv.numpy(), loader_side), "OpenCV backend: bit-identical"
    th = warp_batch(frames, maps, factors, 16, backend="torch").numpy().astype(int)
    diff = np.abs(th - loader_side.astype(int))
    assert diff.mean() < 0.6 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())
    with pytest.raises(ValueError, match="backend"):
        warp_batch(frames, maps, factors, 16, backend="pil")


def test_warp_batch_zero_padding_is_outside_the_frame():
    rng = np.random.default_rng(1)
    small = cv2.GaussianBlur(rng.integers(0, 255, (18, 16, 3), dtype=np.uint8), (0, 0), 1.5)
    big = cv2.GaussianBlur(rng.integers(0, 255, (24, 26, 3), dtype=np.uint8), (0, 0), 1.5)
    canvas = np.zeros((2, 2, 24, 26, 3), np.uint8)  # what the loader builds for mixed sizes
    canvas[0, :, :18, :16] = small
    canvas[1] = big
    maps, factors = _draws([(18, 16), (24, 26)], [3, 4])
    for backend in ("opencv", "torch"):
        padded = warp_batch(torch.from_numpy(canvas), maps, factors, 16, backend=backend)
        alone = warp_batch(
            torch.from_numpy(np.stack([small] * 2)[None]), maps[:1], factors[:1], 16, backend
        )
        diff = np.abs(padded[0].numpy().astype(int) - alone[0].numpy().astype(int))
        assert diff.max() <= 1, (backend, diff.max())
