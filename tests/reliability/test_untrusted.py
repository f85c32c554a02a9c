"""Untrusted files: checkpoints are read with ``weights_only=True`` and a pickle payload is
refused by every loader; YAML is read with ``safe_load``; no subprocess goes through a shell;
tar members with absolute or ``..`` paths are never written anywhere."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
import torch

from nrdfer.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from nrdfer.data import shards as S
from nrdfer.errors import UserError
from nrdfer.model_file import load_model_file
from nrdfer.predict.loading import load_model_for_inference
from nrdfer.preprocess.enhance import load_enlightengan, load_zerodce
from nrdfer.preprocess.retinaface_r50 import load_resnet50
from nrdfer.preprocess.weights import load_weights
from tests.conftest import ROOT


class Payload:
    """Unpickling this object calls ``Path(marker).touch()``: arbitrary code at load time."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    """A torch file whose pickle runs code on load, shaped like our checkpoints."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save(
        {"format": CHECKPOINT_FORMAT, "kind": "model", "model_state": {"w": Payload(marker)}},
        path,
    )
    assert not marker.exists()
    return path, marker


LOADERS = {
    "engine checkpoint": load_checkpoint,
    "model file": load_model_file,
    "nrdfer predict model": load_model_for_inference,
    "preprocess weights": lambda p: load_weights(p, "test"),
    "RetinaFace-ResNet-50": load_resnet50,
    "EnlightenGAN": load_enlightengan,
    "Zero-DCE++": load_zerodce,
}


@pytest.mark.parametrize("loader", LOADERS.values(), ids=list(LOADERS))
def test_pickle_payload_refused_by_every_loader(evil, loader):
    path, marker = evil
    with pytest.raises(UserError, match=re.escape(str(path))) as info:
        loader(path)
    assert "refused" in str(info.value) and "could run code" in str(info.value)
    assert "weights_only" not in str(info.value)  # no advice to load it unsafely
    assert not marker.exists(), "the payload ran"


def _sources() -> list[Path]:
    return sorted([*(ROOT / "nrdfer").rglob("*.py"), *(ROOT / "stages").rglob("*.py")])


UNSAFE = {
    r"\byaml\.load\(": "yaml.load (use yaml.safe_load)",
    r"\byaml\.(unsafe_load|full_load|UnsafeLoader|FullLoader)\b": "unsafe YAML loader",
    r"shell\s*=\s*True": "subprocess through a shell",
    r"\bos\.(system|popen)\(": "os.system/os.popen (a shell)",
    r"\bpickle\.loads?\(": "pickle.load on a file",
    r"allow_pickle\s*=\s*True": "numpy pickle loading",
    r"\.extractall\(|\.extract\(": "tar extraction",
}


@pytest.mark.parametrize("pattern", list(UNSAFE), ids=list(UNSAFE.values()))
def test_no_unsafe_call_in_library_or_stages(pattern):
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _sources()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not hits, f"{UNSAFE[pattern]}:\n" + "\n".join(hits)


def test_every_torch_load_is_weights_only():
    calls = [
        (p, m.group(0))
        for p in _sources()
        for m in re.finditer(r"torch\.load\([^)]*\)", p.read_text(encoding="utf-8"))
    ]
    assert calls, "expected torch.load calls to check"
    for path, call in calls:
        assert "weights_only=True" in call, f"{path.relative_to(ROOT)}: {call}"


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_tar_members_with_absolute_or_dotdot_paths_are_never_written(tmp_path):
    shard_dir = tmp_path / "shards" / "inner"
    shard_dir.mkdir(parents=True)
    shard = shard_dir / "set_1-000000.tar"
    outside = tmp_path / "escaped"
    names = [
        str(outside / "abs.json"),  # absolute paths
        str(outside / "abs.cls"),
        str(outside / "abs.mjpeg"),
        "../../escaped/up.cls",  # climbs out of the shard folder
        "../../escaped/up.json",
        "../../escaped/up.mjpeg",
    ]
    meta = b'{"frames": 1, "frame_bytes": [2]}'
    payloads = [meta, b"1", b"\xff\xd8", b"3", meta, b"\xff\xd8"]
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in zip(names, payloads, strict=True):
            _member(tar, name, data)
    before = {p for p in tmp_path.rglob("*")}
    with open(shard, "rb") as fh:
        members = list(S.tar_members(fh, shard))
    assert [name for name, _ in members] == names  # read as names, nothing more
    samples = list(S.iter_shard(shard))
    assert {s["__key__"] for s in samples} == {"abs", "up"}  # keys are the last path part
    assert {p for p in tmp_path.rglob("*")} == before, "a tar member was written to disk"
    assert not outside.exists()
