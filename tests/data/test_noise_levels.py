"""Test sets at controlled noise levels (``synth.test_noise``, ``generate(test_only=True)``): the
noise benchmark renders its training set once and, per level, only the test clips."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from nrdfer.data.synth import META_NAME, generate
from nrdfer.io import read_json
from nrdfer.params import load_params
from nrdfer.report.noise import measured_noise
from tests.conftest import ROOT

CLIP_DIR = "Clip/clip_224x224"


def _tree(root: Path) -> dict[str, str]:
    return {
        str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("*"))
        if f.is_file()
    }


def _synth(**changes):
    p = load_params(ROOT / "params.yaml", ["synth", "noise"])
    settings = dict(
        dfew_frames=(8, 12),
        workers=1,
        test_noise=True,
        test_n1_rate=0.0,
        test_n2_rate=0.0,
        test_n1_share=p["noise"].n1_share,
        test_n2_share=p["noise"].n2_share,
    )
    return dataclasses.replace(p["synth"], **{**settings, **changes})


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The benchmark's training set (whole, clean test clips) and test-only sets at N1 25 / 50 %
    and N2 50 %, plus a whole set at N1 50 % to compare the test-only one with."""
    out = tmp_path_factory.mktemp("levels")
    kw = dict(seed=5, clips=40, layout="dfew", progress=False)
    generate(out / "train", _synth(), **kw)
    generate(out / "whole_n1_50", _synth(test_n1_rate=0.5), **kw)
    for name, rates in {"n1_25": (0.25, 0), "n1_50": (0.5, 0), "n2_50": (0, 0.5)}.items():
        generate(
            out / name,
            _synth(test_n1_rate=rates[0], test_n2_rate=rates[1]),
            test_only=True,
            **kw,
        )
    return out


def test_a_test_only_set_holds_the_test_clips_byte_for_byte(sets):
    whole, only = _tree(sets / "whole_n1_50" / "DFEW"), _tree(sets / "n1_50" / "DFEW")
    meta = read_json(sets / "whole_n1_50" / META_NAME)["dfew"]
    test_ids = {f"{m['video_name']:05d}" for m in meta if m["test_fold"] == 1}
    clips = {k.split("/")[2] for k in only if k.startswith(CLIP_DIR)}
    assert clips == test_ids and len(clips) == 8
    for key, digest in only.items():
        if key.startswith(CLIP_DIR):
            assert whole[key] == digest, key  # the same frames as in the whole set
    split = (sets / "n1_50" / "DFEW" / "EmoLabel_DataSplit").rglob("set_1.csv")
    test_csv = next(p for p in split if p.parent.name.startswith("test"))
    assert {line.split(",")[0].zfill(5) for line in test_csv.read_text().split()[1:]} == test_ids


def test_test_sets_differ_from_the_clean_test_clips_only_in_their_noise(sets):
    clean = read_json(sets / "train" / META_NAME)["dfew"]
    clean = {m["video_name"]: m for m in clean if m["test_fold"] == 1}
    trees = {n: _tree(sets / n / "DFEW") for n in ("train", "n1_25", "n1_50", "n2_50")}
    for name in ("n1_25", "n1_50", "n2_50"):
        meta = read_json(sets / name / META_NAME)["dfew"]
        assert {m["video_name"] for m in meta} == set(clean)
        for m in meta:
            c = clean[m["video_name"]]
            assert (m["label"], m["frames"]) == (c["label"], c["frames"])
            noisy = (m["n1_kind"], m["n2_window"]) != (c["n1_kind"], c["n2_window"])
            clip = f"{CLIP_DIR}/{m['video_name']:05d}/"
            same = all(
                trees[name][k] == trees["train"][k] for k in trees[name] if k.startswith(clip)
            )
            assert same != noisy, (name, m["video_name"])
    n1 = lambda name: {  # noqa: E731
        m["video_name"] for m in read_json(sets / name / META_NAME)["dfew"] if m["n1_kind"]
    }
    assert n1("n1_25") < n1("n1_50")  # the noisy clips of a level include the lower level's


def test_levels_are_what_was_asked(sets):
    measured = measured_noise(sets)  # every synth_meta.json under the folder
    clean = measured[("n1", 0)]
    assert clean == measured[("n2", 0)] and clean["test_clips"] == 8
    assert clean["n1_clips"] == clean["n2_clips"] == 0
    n1, n2 = measured[("n1", 25)], measured[("n2", 50)]
    assert n1["n1_clips"] == 2 and n1["n2_clips"] == 0
    assert 0.3 - 0.1 <= n1["n1_frame_share"] <= 0.5 + 0.01  # whole frames of 8-12
    assert measured[("n1", 50)]["n1_clips"] == 4
    assert n2["n1_clips"] == 0 and n2["n2_clips"] == round(0.5 * n2["expressive_clips"])


def test_test_rates_change_nothing_without_test_noise(tmp_path):
    synth = load_params(ROOT / "params.yaml", ["synth"])["synth"]
    assert synth.test_noise is False
    small = dataclasses.replace(synth, dfew_frames=(8, 10), workers=1)
    generate(tmp_path / "a", small, seed=2, clips=10, layout="dfew", progress=False)
    other = dataclasses.replace(small, test_n1_rate=1.0, test_n2_rate=1.0)
    generate(tmp_path / "b", other, seed=2, clips=10, layout="dfew", progress=False)
    assert _tree(tmp_path / "a" / "DFEW") == _tree(tmp_path / "b" / "DFEW")
