"""Frame sampling of the paper (§3.2): U segments x V consecutive frames, T = U·V.

Follows the TSN-style ``VideoDataset`` of the authors' code (AI-DFERNet, the released
NR-DFERNet) for clips long enough, and differs for short clips:

- train: ``avg = (n - V + 1) // U``; when ``avg > 0`` the k-th segment starts at
  ``k·avg + randint(avg)``; when ``n > U`` the U starts are sorted random draws from
  ``[0, n - V]`` (both as in the authors' ``_get_train_indices``); otherwise (``n <= U``) the
  starts ``0..n-1`` padded with the last one, where the authors' code starts every segment at
  frame 0 (``np.zeros``), so such a clip becomes its first frames repeated;
- test: ``tick = (n - V + 1) / U``; the k-th segment starts at ``int(tick/2 + tick·k)``
  (centred) as in the authors' ``_get_test_indices`` for ``n > U + V - 1``; for shorter clips
  the authors' code again starts every segment at frame 0, while here ``n <= U`` pads the
  starts ``0..n-1`` with the last one and ``U < n <= U + V - 1`` keeps the centred formula
  (clamped to 0), so every frame of a short clip is seen;
- each start ``p`` expands to ``p, p+1, ..., p+V-1`` clamped to ``n - 1``, so a clip shorter
  than T frames is padded by repeating its last frame (never dropped).
"""

from __future__ import annotations

import numpy as np


def _check(n: int, U: int, V: int) -> None:
    if n < 1:
        raise ValueError(f"a clip needs at least one frame, got n={n}")
    if U < 1 or V < 1:
        raise ValueError(f"U and V must be positive, got U={U}, V={V}")


def _edge_pad_starts(n: int, U: int) -> np.ndarray:
    """Starts ``0..n-1`` padded to U entries by repeating the last one (clips with n <= U)."""
    return np.pad(np.arange(n), (0, U - n), mode="edge")


def random_starts(n: int, U: int, V: int, rng: np.random.Generator) -> np.ndarray:
    """Random segment starts for training (paper §3.2, authors' ``_get_train_indices``).

    Args:
        n: frames in the clip.
        U: number of segments.
        V: consecutive frames per segment.
        rng: the random generator (one per clip and epoch for reproducibility).

    Returns:
        int64 array (U,) of start frames.
    """
    _check(n, U, V)
    avg = (n - V + 1) // U
    if avg > 0:
        return np.arange(U) * avg + rng.integers(0, avg, size=U)
    if n > U:
        return np.sort(rng.integers(0, max(1, n - V + 1), size=U))
    return _edge_pad_starts(n, U)


def centred_starts(n: int, U: int, V: int) -> np.ndarray:
    """Centred segment starts for testing (paper §3.2, authors' ``_get_test_indices``).

    Returns:
        int64 array (U,) of start frames.
    """
    _check(n, U, V)
    if n <= U:
        return _edge_pad_starts(n, U)
    tick = (n - V + 1) / U
    starts = np.array([int(tick / 2.0 + tick * k) for k in range(U)], dtype=np.int64)
    return np.clip(starts, 0, n - 1)


def expand(starts: np.ndarray, n: int, V: int) -> np.ndarray:
    """V consecutive frames from every start, clamped to the last frame.

    Returns:
        int64 array (U·V,) of frame indices in ``[0, n)``, segment-major.
    """
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(V)[None, :]  # (U, V)
    return np.minimum(idx, n - 1).reshape(-1)  # (U·V,)


def sample_indices(
    n: int, U: int, V: int, *, train: bool, rng: np.random.Generator | None = None
) -> np.ndarray:
    """The T = U·V frame indices of a clip of ``n`` frames (random in training, centred at test).

    Args:
        n: frames in the clip.
        U: segments.
        V: consecutive frames per segment.
        train: random starts (needs ``rng``) instead of centred ones.
        rng: random generator for training.

    Returns:
        int64 array (U·V,) of indices into the clip's frames.
    """
    if train:
        if rng is None:
            raise ValueError("training sampling needs a numpy Generator")
        starts = random_starts(n, U, V, rng)
    else:
        starts = centred_starts(n, U, V)
    return expand(starts, n, V)
