"""Test sets at controlled noise levels (``synth.test_noise``, nrdfer.data.synth.levels)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from nrdfer.data.synth import META_NAME, generate
from nrdfer.data.synth.levels import generate_levels, level_sets, measured_noise
from nrdfer.errors import UserError
from nrdfer.io import read_json
from nrdfer.params import load_params
from tests.conftest import ROOT


def _tree(root: Path) -> dict[str, str]:
    return {
        str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("*"))
        if f.is_file()
    }


@pytest.fixture(scope="module")
def levels(tmp_path_factory):
    p = load_params(ROOT / "params.yaml", ["synth", "noise"])
    synth = dataclasses.replace(p["synth"], dfew_frames=(8, 12), workers=1)
    noise = dataclasses.replace(p["noise"], dfew_clips=40, levels=(0.0, 0.25, 0.5))
    out = tmp_path_factory.mktemp("levels")
    summary = generate_levels(out, synth, noise, seed=5, progress=False)
    return out, summary, noise


def test_level_names_and_errors():
    assert [lv.name for lv in level_sets([0.0, 0.25, 0.75])] == [
        "clean", "n1_25", "n1_75", "n2_25", "n2_75"
    ]  # fmt: skip
    with pytest.raises(UserError, match="twice"):
        level_sets([0.25, 0.251])


def test_levels_are_what_was_asked(levels):
    out, summary, noise = levels
    assert set(summary) == {"clean", "n1_25", "n1_50", "n2_25", "n2_50"}
    for name, measured in summary.items():  # measured again from each set's metadata
        assert measured == measured_noise(read_json(out / name / META_NAME))
    test = summary["clean"]["test_clips"]
    assert test == 8
    assert summary["clean"]["n1_clips"] == summary["clean"]["n2_clips"] == 0
    for pct in (25, 50):
        n1, n2 = summary[f"n1_{pct}"], summary[f"n2_{pct}"]
        assert n1["n1_clips"] == round(pct / 100 * test) and n1["n2_clips"] == 0
        lo, hi = noise.n1_share
        assert lo - 0.1 <= n1["n1_frame_share"] <= hi + 0.01  # whole frames of 8-12
        meta = read_json(out / f"n2_{pct}" / META_NAME)["dfew"]
        expressive = sum(m["test_fold"] == 1 and m["class"] != "Neutral" for m in meta)
        assert n2["n1_clips"] == 0 and n2["n2_clips"] == round(pct / 100 * expressive)


def test_levels_differ_only_in_noise(levels):
    out, _, _ = levels
    metas = {
        n: read_json(out / n / META_NAME)["dfew"] for n in ("clean", "n1_25", "n1_50", "n2_50")
    }
    trees = {n: _tree(out / n / "DFEW") for n in metas}
    for name, meta in metas.items():
        # same clip ids, labels, folds and frame counts; same split files
        assert [(m["video_name"], m["label"], m["test_fold"], m["frames"]) for m in meta] == [
            (m["video_name"], m["label"], m["test_fold"], m["frames"]) for m in metas["clean"]
        ]
        assert set(trees[name]) == set(trees["clean"])
        noisy = {
            f"{m['video_name']:05d}"
            for m, c in zip(meta, metas["clean"], strict=True)
            if (m["n1_kind"], m["n2_window"]) != (c["n1_kind"], c["n2_window"])
        }
        changed = {
            k.split("/")[2]
            for k, v in trees[name].items()
            if k.startswith("Clip/clip_224x224/") and v != trees["clean"][k]
        }
        assert changed == noisy  # every other clip, training clips included, is byte-identical
        assert all(m["test_fold"] == 1 for m in meta if f"{m['video_name']:05d}" in noisy)
    n1 = lambda name: {m["video_name"] for m in metas[name] if m["n1_kind"]}  # noqa: E731
    assert n1("n1_25") < n1("n1_50")  # the noisy clips of a level include the lower level's


def test_test_rates_change_nothing_without_test_noise(tmp_path):
    synth = load_params(ROOT / "params.yaml", ["synth"])["synth"]
    assert synth.test_noise is False
    small = dataclasses.replace(synth, dfew_frames=(8, 10), workers=1)
    generate(tmp_path / "a", small, seed=2, clips=10, layout="dfew", progress=False)
    other = dataclasses.replace(small, test_n1_rate=1.0, test_n2_rate=1.0)
    generate(tmp_path / "b", other, seed=2, clips=10, layout="dfew", progress=False)
    assert _tree(tmp_path / "a" / "DFEW") == _tree(tmp_path / "b" / "DFEW")
