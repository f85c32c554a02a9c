"""Test sets at controlled noise levels for the noise benchmark (docs/noise.md).

One data set is written per level, all from the same seed and the same ``synth`` settings
(people, expressions, motion, lighting, folds), with ``synth.test_noise`` on: the training clips
(DFEW folds 2-5) carry the ``synth`` section's usual N1/N2 rates, and the test clips (fold 1)
carry the level's. Level 0 (``clean``) is shared by N1 and N2; an N1 level is the share of test
clips with target-irrelevant frames (each losing ``noise.n1_share`` of its frames), an N2 level
the share of non-neutral test clips whose expression shows only in a short window
(``noise.n2_share`` of the clip). Each clip's noise comes from its own seed, so the sets differ
only where the noise differs, and the noisy clips of a level include those of every lower level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrdfer.errors import UserError
from nrdfer.io import read_json
from nrdfer.labels import NEUTRAL
from nrdfer.params import NoiseParams, SynthParams

KINDS = ("n1", "n2")
CLEAN = "clean"
TEST_FOLD = 1
"""The DFEW fold whose test clips carry the level's noise (the benchmark trains on the rest)."""


@dataclass(frozen=True)
class Level:
    """One test set: its folder name, noise kind (None for clean) and level in [0, 1]."""

    name: str
    kind: str | None
    level: float


def level_sets(levels: Sequence[float]) -> list[Level]:
    """The clean set, then each non-zero level of N1, then of N2 (names like ``n1_25``)."""
    out = [Level(CLEAN, None, 0.0)]
    for kind in KINDS:
        out += [Level(f"{kind}_{round(100 * x)}", kind, float(x)) for x in levels if x > 0]
    names = [lv.name for lv in out]
    if len(set(names)) != len(names):
        raise UserError(f"noise.levels: {list(levels)} name the same percentage twice")
    return out


def table_files(tables: str | Path, level: Level) -> tuple[Path, Path]:
    """Where a level's manifest and fold file go under ``tables``."""
    return Path(tables) / f"{level.name}.parquet", Path(tables) / f"{level.name}.json"


def synth_params(synth: SynthParams, noise: NoiseParams, level: Level) -> SynthParams:
    """The ``synth`` settings that write ``level``'s data set (DFEW layout only)."""
    return dataclasses.replace(
        synth,
        dfew_clips=noise.dfew_clips,
        afew_clips=0,
        test_noise=True,
        test_n1_rate=level.level if level.kind == "n1" else 0.0,
        test_n1_share=noise.n1_share,
        test_n2_rate=level.level if level.kind == "n2" else 0.0,
        test_n2_share=noise.n2_share,
    )


def generate_levels(
    out_root: str | Path,
    synth: SynthParams,
    noise: NoiseParams,
    seed: int,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Write one DFEW-layout data set per level under ``out_root/<name>/``; returns the
    measured noise of each set's test clips (:func:`measured_noise`)."""
    from nrdfer.data.synth import META_NAME, generate

    out_root = Path(out_root)
    summary = {}
    for level in level_sets(noise.levels):
        generate(
            out_root / level.name,
            synth_params(synth, noise, level),
            seed,
            layout="dfew",
            progress=progress,
        )
        summary[level.name] = measured_noise(read_json(out_root / level.name / META_NAME))
    return summary


def measured_noise(meta: dict[str, Any]) -> dict[str, Any]:
    """The noise of a data set's test clips, from its ``synth_meta.json``: the share of clips
    with N1 frames and the mean share of their frames, and the share of non-neutral clips with
    an N2 window."""
    test = [m for m in meta["dfew"] if m["test_fold"] == TEST_FOLD]
    n1 = [m for m in test if m["n1_kind"] is not None]
    expressive = [m for m in test if m["label"] != NEUTRAL]
    n2 = [m for m in expressive if m["n2_window"] is not None]
    return {
        "test_clips": len(test),
        "n1_clips": len(n1),
        "n1_clip_share": len(n1) / len(test) if test else 0.0,
        "n1_frame_share": (
            sum(len(m["n1_frames"]) / m["frames"] for m in n1) / len(n1) if n1 else 0.0
        ),
        "expressive_clips": len(expressive),
        "n2_clips": len(n2),
        "n2_clip_share": len(n2) / len(expressive) if expressive else 0.0,
    }


__all__ = [
    "CLEAN",
    "KINDS",
    "TEST_FOLD",
    "Level",
    "generate_levels",
    "level_sets",
    "measured_noise",
    "synth_params",
    "table_files",
]
