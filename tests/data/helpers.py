"""Helpers shared by the data tests (and the reliability tests that build shards): params of
tiny runs, the stage scripts in a row, tar rewriting, synth tree hashes, video decoding."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from nrdfer.params import load_section
from tests.conftest import ROOT, load_stage_module
from tests.data.trees import SIDE


def data_params(**kw):
    """The project's data params for tiny shards (``SIDE`` px, 4 + 2 frames), with ``kw``."""
    base = load_section(ROOT / "params.yaml", "data")
    values = dict(U=4, V=2, size=SIDE, batch_size=4, num_workers=0, shuffle_buffer=16)
    return dataclasses.replace(base, **(values | kw))


def rewrite_tar(path, edit):
    """Re-write a tar with edit(name, payload) -> (name, payload) or None (member dropped)."""
    with tarfile.open(path) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as dst:
        for member, payload in members:
            new = edit(member.name, payload)
            if new is not None:
                member.name, payload = new
                member.size = len(payload)
                dst.addfile(member, io.BytesIO(payload))


def small_params(**changes):
    """The project's synth params, shrunk so a test renders in about a second."""
    p = load_section(ROOT / "params.yaml", "synth")
    small = dict(
        dfew_frames=(12, 20),
        afew_frames=(10, 14),
        workers=1,
        sheet_frames=4,
        sheet_clips_per_class=1,
        n1_rate=0.4,
        n2_rate=0.4,
        afew_dark_share=0.4,
        ferv39k_clips=0,  # DFEW and AFEW only, unless a test asks for the others
        mafw_clips=0,
    )
    small.update(changes)
    return replace(p, **small)


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every CSV, JPEG and JSON file under root (videos and PNG excluded)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.suffix in (".csv", ".jpg", ".json")
    }


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def tiny_params(tmp_path, **sections):
    """A params file in ``tmp_path``: the project's, with small shards and ``sections``
    updated."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["shards"].update(maxcount=4, workers=1, short_side=24)
    for name, values in sections.items():
        raw[name].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def run_stages(tmp_path, kind, root, params):
    """The ingest, folds and shards stage scripts on the tree ``root``; the shard folder."""
    out = tmp_path / "out"
    argv = ["--params", params]
    load_stage_module("stages/ingest.py").main(
        [*argv, "--kind", kind, "--root", str(root), "--out", str(out / "m.parquet")]
    )
    load_stage_module("stages/folds.py").main(
        [*argv, "--manifest", str(out / "m.parquet"), "--out", str(out / "f.json")]
    )
    load_stage_module("stages/shards.py").main(
        [*argv, "--manifest", str(out / "m.parquet"), "--folds", str(out / "f.json")]
        + ["--root", str(root), "--out", str(out / "shards")]
    )
    return out / "shards"
