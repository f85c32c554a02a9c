"""Hostile data, shards and params files: damaged labels and payloads, resumed shards with fixed
labels, oversized or odd-sized frames, hostile YAML, bad stage inputs, full or read-only disks.

Each case checks what happens (the result, or one ``error:`` line naming the input and what to
do); docs/reliability.md, "Hostile data, shards and params files", lists them.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from nrdfer.cli import main as cli_main
from nrdfer.data import shards as S
from nrdfer.data.folds import make_folds
from nrdfer.data.frames import (
    MAX_IMAGE_PIXELS,
    ImageError,
    decode_image_bytes,
    header_size,
    iter_video,
    read_clip,
)
from nrdfer.data.manifest import ingest
from nrdfer.data.shards import writing as W
from nrdfer.errors import UserError
from nrdfer.params import MAX_YAML_BYTES, load_params, load_section
from nrdfer.preprocess.video import read_frames, read_image
from tests.conftest import ROOT, load_stage_module
from tests.data.trees import SIDE, frame_image, make_dfew
from tests.preprocess.conftest import write_shown_as

SPEC = S.ShardSpec(short_side=SIDE, quality=95, maxcount=2, max_frames=0)


def data_params(**kw):
    base = load_section(ROOT / "params.yaml", "data")
    values = dict(U=2, V=2, size=SIDE, batch_size=4, num_workers=0, shuffle_buffer=4)
    return dataclasses.replace(base, **(values | kw))


def keys_and_labels(loader):
    return {k: int(y) for _, labels, keys in loader for k, y in zip(keys, labels, strict=True)}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """10 DFEW clips (labels 1..7 cycling, 3-6 frames) in 5 test sets, manifest and folds."""
    root = tmp_path_factory.mktemp("dfew")
    clips = {v: (1 + v % 7, 3 + v % 4) for v in range(1, 11)}
    make_dfew(root, clips, {v: 1 + v % 5 for v in clips})
    table = ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=True)
    folds = make_folds(table, "official", 5, 0.0, seed=0)
    return root, table, folds


@pytest.fixture(scope="module")
def shards(tree, tmp_path_factory):
    root, table, folds = tree
    out = tmp_path_factory.mktemp("shards") / "s"
    S.write_shards(table, folds, root, out, SPEC, progress=False)
    return out


def _copy(shards, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(shards, copy)
    return copy, json.loads((copy / S.INDEX).read_text())


def _patch_member(tar_path, suffix, edit):
    """Change one member's bytes in place (same length: the tar's header checksums stay valid,
    as after a flipped bit on disk); returns the clip id."""
    with tarfile.open(tar_path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(suffix))
        payload = tar.extractfile(member).read()
    new = edit(payload)
    assert len(new) == len(payload) and new != payload
    with open(tar_path, "r+b") as fh:
        fh.seek(member.offset_data)
        fh.write(new)
    return member.name.split(".")[0]


def _next_label(match):
    return b'"label": %d' % ((int(match.group(1)) + 1) % 7)


def _fold_of(index, clip):
    return next(f for f, fold in index["folds"].items() if clip in fold["test"])


# ---- labels and payload verified when a clip is read ----


@pytest.mark.parametrize(
    ("suffix", "edit", "says"),
    [
        (".cls", lambda b: b"9", "label '9' in its .cls"),  # not a class at all
        (".cls", lambda b: str((int(b) + 1) % 7).encode(), "in its .cls, index.json gives"),
        (".json", lambda b: re.sub(rb'"label": (\d)', _next_label, b), "in its .json"),
        (".mjpeg", lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], "CRC-32"),  # one flipped bit
        (".mjpeg", lambda b: b[:-3] + bytes([b[-3] ^ 0x10]) + b[-2:], "CRC-32"),
    ],
)
def test_a_damaged_label_or_payload_is_named_with_shard_and_clip(
    shards, tmp_path, suffix, edit, says
):
    copy, index = _copy(shards, tmp_path)
    tar = copy / "set_2-000000.tar"
    clip = _patch_member(tar, suffix, edit)
    fold = _fold_of(index, clip)
    for workers in (0, 1) if suffix == ".cls" else (0,):  # also from a loader worker process
        loader = S.eval_loader(copy, fold, data_params(num_workers=workers))
        with pytest.raises(S.CorruptShardError) as err:
            keys_and_labels(loader)
        if workers:  # end the worker now (not at garbage collection, a 10 s join)
            loader._iterator._shutdown_workers()
        text = str(err.value)
        assert "\n" not in text and str(tar) in text and repr(clip) in text, text
        assert says in text and text.endswith("re-run the shards stage"), text


def test_valid_shards_give_the_index_labels_and_checksums_cost_no_change(shards, tree):
    _, table, _ = tree
    index = json.loads((shards / S.INDEX).read_text())
    truth = {r.clip_id: int(r.label) for r in table.itertuples()}
    got = {}
    for fold in index["folds"]:
        got |= keys_and_labels(S.eval_loader(shards, fold, data_params()))
    assert got == truth
    sample = next(S.iter_shard(shards / "set_1-000000.tar"))
    meta = json.loads(sample["json"])
    assert meta["frame_crc32"] == [zlib.crc32(j) for j in S.frame_jpegs(sample)]


@pytest.mark.parametrize(
    ("index_edit", "says"),
    [
        (lambda d: list(d["clips"]), "holds a JSON list, not a shard index"),
        (lambda d: {k: v for k, v in d.items() if k != "clips"}, "has no 'clips' object"),
        (lambda d: d | {"clips": {c: e | {"label": "x"} for c, e in d["clips"].items()}}, "'x'"),
        (lambda d: d | {"clips": {c: e | {"label": 9} for c, e in d["clips"].items()}}, "9"),
        (lambda d: d | {"format": 2}, "index format 2"),  # written before checksums
    ],
)
def test_a_malformed_index_is_one_line_naming_it(shards, tmp_path, index_edit, says):
    copy, index = _copy(shards, tmp_path)
    (copy / S.INDEX).write_text(json.dumps(index_edit(index)))
    with pytest.raises(S.CorruptShardError) as err:
        S.eval_loader(copy, 1, data_params())
    text = str(err.value)
    assert "\n" not in text and str(copy / S.INDEX) in text and says in text, text
    assert text.endswith("re-run the shards stage")


def test_a_clip_without_checksums_is_refused(shards, tmp_path):
    copy, index = _copy(shards, tmp_path)
    tar = copy / "set_3-000000.tar"
    clip = _patch_member(tar, ".json", lambda b: b.replace(b'"frame_crc32"', b'"frame_crc99"'))
    with pytest.raises(S.CorruptShardError, match="no valid frame_crc32") as err:
        keys_and_labels(S.eval_loader(copy, _fold_of(index, clip), data_params()))
    assert str(tar) in str(err.value) and f"{clip}.json" in str(err.value)


# ---- resume compares labels ----


def test_a_resumed_shards_run_takes_a_fixed_label(tree, tmp_path, monkeypatch):
    root, table, folds = tree
    out = tmp_path / "s"

    def crash(*args, **kwargs):
        raise RuntimeError("killed after the tars were written")

    with monkeypatch.context() as m:
        m.setattr(W, "_build_index", crash)
        with pytest.raises(RuntimeError):
            S.write_shards(table, folds, root, out, SPEC, progress=False)
    fixed = table.copy()
    clip = fixed["clip_id"].iloc[0]
    old = int(fixed.loc[fixed["clip_id"] == clip, "label"].iloc[0])
    fixed.loc[fixed["clip_id"] == clip, "label"] = (old + 1) % 7
    written = []
    real = W._write_one_shard
    monkeypatch.setattr(W, "_write_one_shard", lambda job: written.append(job["name"]) or real(job))
    index = S.write_shards(fixed, folds, root, out, SPEC, progress=False)
    assert written == [index["clips"][clip]["shard"]], "only the tar of the fixed clip"
    assert index["clips"][clip]["label"] == (old + 1) % 7
    got = keys_and_labels(S.eval_loader(out, _fold_of(index, clip), data_params()))
    assert got[clip] == (old + 1) % 7


# ---- oversized and unreadable image headers ----


def _huge_jpeg(width=60000, height=60000) -> bytes:
    """A valid small JPEG whose frame header (SOF0) claims width x height."""
    data = bytearray(cv2.imencode(".jpg", frame_image(1))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _png_claiming(width, height) -> bytes:
    """A small PNG whose IHDR (CRC fixed up) claims width x height: a decompression bomb's
    header, without the gigabytes."""
    data = bytearray(cv2.imencode(".png", frame_image(1))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_the_image_decoder_refuses_oversized_and_damaged_headers():
    assert _huge_jpeg()[:2] == b"\xff\xd8"
    with pytest.raises(cv2.error):  # what every reader met before
        cv2.imdecode(np.frombuffer(_huge_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    for data, says in [
        (_huge_jpeg(), "60000 x 60000 pixels, over the limit"),
        (_png_claiming(side, side), f"{side} x {side} pixels"),
        (_huge_jpeg(8, 8)[:30], "not a readable image"),  # header cut short
        (b"\xff\xd8\xff\xe0garbage", "not a readable image"),
        (b"", "empty file"),
    ]:
        with pytest.raises(ImageError, match=says):
            decode_image_bytes(np.frombuffer(data, np.uint8))
    for ext in (
        ".jpg",
        ".png",
        ".bmp",
        ".webp",
    ):  # a valid image: the size as stated, decoded as before
        image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
        data = cv2.imencode(ext, image)[1]
        assert header_size(data) == (53, 37)
        expected = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert np.array_equal(decode_image_bytes(data), expected)


def test_a_frame_with_a_huge_header_is_skipped_and_reported(tmp_path):
    """ingest, shards and enhance (read_frames) skip the frame; the clip stays."""
    root = tmp_path / "DFEW"
    make_dfew(root, {v: (1 + v % 7, 4) for v in range(1, 6)}, {v: 1 + v % 5 for v in range(1, 6)})
    clip_dir = root / "Clip/clip_224x224/00002"
    victim = sorted(clip_dir.iterdir())[1]
    victim.write_bytes(_huge_jpeg())
    table = ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=True)
    row = table.set_index("clip_id").loc["00002"]
    assert row["status"] == "ok" and victim.name in row["detail"], row["detail"]
    folds = make_folds(table, "official", 5, 0.0, seed=0)
    out = tmp_path / "s"
    index = S.write_shards(table, folds, root, out, SPEC, progress=False)
    assert index["clips"]["00002"]["frames"] == 3
    assert not list(out.glob(".*tmp*")), "no temp file left"
    sample = next(s for s in S.iter_shard(out / index["clips"]["00002"]["shard"])
                  if s["__key__"] == "00002")  # fmt: skip
    assert json.loads(sample["json"])["bad_frames"] == 1
    frames, names, skipped = read_frames(clip_dir)
    assert skipped == [victim.name] and len(frames) == 3


def test_a_still_image_bomb_is_refused_with_one_line(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(UserError) as err:
        read_image(bomb)
    assert str(bomb) in str(err.value) and "30000 x 30000 pixels" in str(err.value)
    assert "\n" not in str(err.value)
    assert cli_main(["faces", str(bomb), "--params", str(ROOT / "params.yaml")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "over the limit" in lines[0], lines


# ---- frames of one clip in different sizes ----


def test_frames_of_two_sizes_are_stored_at_one_size_and_listed(tmp_path):
    root = tmp_path / "DFEW"
    make_dfew(root, {v: (1 + v % 7, 6) for v in range(1, 6)}, {v: 1 + v % 5 for v in range(1, 6)})
    clip_dir = root / "Clip/clip_224x224/00003"
    for n, f in enumerate(sorted(clip_dir.iterdir())):
        if n % 2:  # every other frame 80 x 56
            cv2.imwrite(str(f), cv2.resize(cv2.imread(str(f)), (80, 56)))
    table = ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=True)
    folds = make_folds(table, "official", 5, 0.0, seed=0)
    out = tmp_path / "s"
    index = S.write_shards(table, folds, root, out, SPEC, progress=False)
    assert index["resized"] == {"00003": f"3 of 6 frames resized from 80x56 to {SIDE}x{SIDE}"}
    assert [c for c in index["clips"] if c in index["resized"]] == ["00003"]
    data = data_params(U=3, V=2)
    assert "00003" in keys_and_labels(S.eval_loader(out, _fold_of(index, "00003"), data))
    train_fold = next(f for f, fold in index["folds"].items() if "00003" in fold["train"])
    for augment_on in ("loader", "device"):  # training meets one size per clip
        loader = S.train_loader(out, train_fold, data_params(augment_on=augment_on), seed=0)
        assert "00003" in keys_and_labels(loader)
    same = [frame_image(i) for i in range(3)]
    frames, resized = S.one_size(same)  # frames of one size are kept as they are
    assert resized == "" and all(a is b for a, b in zip(frames, same, strict=True))


# ---- phone videos: display rotation ----


def test_rotated_clip_videos_are_read_and_sharded_as_shown(tmp_path):
    """AFEW clips stored as portrait phone videos (display rotation 90, 180, 270 degrees, one
    mirrored): the clip reader gives the frames as shown and the shards stage stores the same
    bytes as for the upright copy."""
    shown = np.random.default_rng(0).integers(0, 256, (3, 40, 24, 3), dtype=np.uint8)
    root = tmp_path / "AFEW"
    turns = {"up": (0, False), "r90": (90, False), "r180": (180, False), "r270m": (270, True)}
    for clip, (degrees, hflip) in turns.items():
        split = "Train_AFEW" if clip in ("up", "r90") else "Val_AFEW"
        write_shown_as(root / split / "Happy" / f"{clip}.mkv", shown, degrees, hflip)
    want = shown[..., ::-1]  # BGR, as the clip reader gives
    for path in root.rglob("*.mkv"):
        frames, bad = read_clip(path)
        assert bad == 0 and np.array_equal(np.stack(frames), want), path.name
        assert np.array_equal(np.stack(list(iter_video(path))), want), path.name
    table = ingest("afew", root, dfew_frames="x", min_frames=1, verify=True)
    assert set(table["status"]) == {"ok"} and len(table) == 4
    folds = make_folds(table, "official", 5, 0.0, seed=0)
    S.write_shards(table, folds, root, tmp_path / "s", SPEC, progress=False)
    payloads = {}
    for tar_path in (tmp_path / "s").rglob("*.tar"):
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".mjpeg"):
                    payloads[member.name.split(".")[0]] = tar.extractfile(member).read()
    assert len(payloads) == 4 and len(set(payloads.values())) == 1, sorted(payloads)


# ---- hostile params files and values ----


def _laughs(levels: int = 9) -> str:
    """'Billion laughs': 9 levels of 9 aliases each, 9**9 strings once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("model.M=&a [*a]", "aliases (*name) are not allowed"),
        ("model.M={[1]: 2}", "keys are plain names"),
        ("base.seed=" + "9" * 5000, "an integer of over 4300 digits"),
        ("model.M=" + "[" * 3000 + "]" * 3000, "nested deeper than 50 levels"),
        ("model.M=" + _laughs().replace("\n", ", ").join("{}"), "aliases (*name)"),
        ("model.M=" + "1" * (MAX_YAML_BYTES + 1), "over the limit"),
    ],
)
def test_hostile_overrides_exit_2_with_one_short_line(override, says, capsys):
    assert cli_main(["params", "-S", override]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, lines
    assert lines[0].startswith("nrdfer params: error: -S ") and says in lines[0], lines[0]
    assert len(lines[0]) < 500, "the value is cut short in the message"


def test_hostile_params_files_and_presets_are_refused_before_reading(tmp_path, capsys):
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text(_laughs())
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:  # 50 MB, sparse: refused from its size, never read
        fh.truncate(50 * 10**6)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("model.M: 3  # café\n".encode("latin-1"))
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_text("model.M: 3\n", encoding="utf-16")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it to read would block until a writer comes
    cases = {
        laughs: "aliases (*name) are not allowed",
        big: "50,000,000 bytes, over the limit of 1,000,000",
        latin1: "not a UTF-8 text file",
        utf16: "not a UTF-8 text file",
        fifo: "not a regular file",
        Path("/dev/zero"): "not a regular file",
    }
    for path, says in cases.items():
        for argv in (["preset", str(path)], ["params", "--params", str(path)]):
            start = time.perf_counter()
            assert cli_main(argv) == 2, argv
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and str(path) in lines[0] and says in lines[0], (argv, lines)
            assert time.perf_counter() - start < 2, argv


# ---- synth ----


def test_synth_clips_respect_the_range_of_the_params(tmp_path, capsys):
    for clips in (10**12, 2_000_000):
        argv = ["synth", "--out", str(tmp_path / "d"), "--seed", "0", "--clips", str(clips)]
        assert cli_main([*argv, "--params", str(ROOT / "params.yaml")]) == 2
        line = capsys.readouterr().err.strip()
        assert f"{clips:,} clips: must be" in line and "[5, 1000000]" in line, line
    assert list(tmp_path.iterdir()) == []


def test_synth_on_a_full_or_read_only_disk_names_the_folder(tmp_path, monkeypatch):
    import nrdfer.data.synth as synth

    params = load_section(ROOT / "params.yaml", "synth")
    for code, says in (
        (errno.ENOSPC, "the disk is full"),
        (errno.EROFS, "the file system is read-only"),
    ):

        def fail(job, code=code):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(synth, "render_job", fail)
        with pytest.raises(UserError) as err:
            synth.generate(tmp_path / "demo", params, seed=0, clips=5, workers=1, progress=False)
        text = str(err.value)
        assert text.startswith(f"{tmp_path}: cannot write ({says}") and "re-run" in text, text
        assert list(tmp_path.iterdir()) == [], "no temp folder left"


def test_synth_stopped_by_sigterm_leaves_no_temp_folder(tmp_path):
    out = tmp_path / "demo"
    argv = [sys.executable, "-m", "nrdfer.cli", "synth", "--out", str(out), "--seed", "0"]
    argv += ["--clips", "300", "--workers", "2", "--params", str(ROOT / "params.yaml")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".demo.tmp-*/DFEW")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(tmp_path.glob(".demo.tmp-*")), "synth started writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    assert list(tmp_path.iterdir()) == [], "the temp folder is removed"


def test_a_synth_temp_folder_of_a_killed_run_is_removed_by_the_next(tmp_path, monkeypatch):
    import nrdfer.data.synth as synth

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    leftover = tmp_path / f".demo.tmp-{dead}"
    (leftover / "DFEW").mkdir(parents=True)

    def full(job):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synth, "render_job", full)
    with pytest.raises(UserError):
        synth.generate(tmp_path / "demo", load_section(ROOT / "params.yaml", "synth"), seed=0,
                       clips=5, workers=1, progress=False)  # fmt: skip
    assert not leftover.exists()


# ---- stage inputs checked before the work ----


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "fold file not found; re-run the folds stage first"),
        ("{not json", "cannot read the fold file"),
        ("[1, 2]", "holds a JSON list, not a fold file"),
        ('{"dataset": "dfew", "scheme": "official", "partitions": {}}', "no 'folds' object"),
    ],
)
def test_shards_stage_checks_the_fold_file_first(tree, tmp_path, content, says, monkeypatch):
    root, table, _ = tree
    manifest = tmp_path / "manifest.parquet"
    table.to_parquet(manifest)
    folds = tmp_path / "folds.json"
    if content is not None:
        folds.write_text(content)
    stage = load_stage_module("stages/shards.py")
    monkeypatch.setattr(stage, "write_shards", lambda *a, **k: pytest.fail("work started"))
    argv = ["--params", str(ROOT / "params.yaml"), "--manifest", str(manifest)]
    argv += ["--folds", str(folds), "--root", str(root), "--out", str(tmp_path / "s")]
    with pytest.raises(UserError) as err:
        stage.main(argv)
    assert str(err.value).startswith(f"{folds}: ") and says in str(err.value), str(err.value)


def test_shards_on_a_full_or_read_only_disk_name_the_path(tree, tmp_path, monkeypatch):
    root, table, folds = tree
    for code, says in (
        (errno.ENOSPC, "the disk is full"),
        (errno.EROFS, "the file system is read-only"),
    ):
        out = tmp_path / f"s{code}"

        def fail(self, sample, code=code):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(W.wds.TarWriter, "write", fail)
        with pytest.raises(UserError) as err:
            S.write_shards(table, folds, root, out, SPEC, progress=False)
        assert str(err.value).startswith(f"{out}: cannot write ({says}"), str(err.value)
        assert "re-run the shards stage" in str(err.value)
        assert not list(out.glob(".*.tmp")), "no partial tar left"


def test_evaluate_checks_training_summary_and_snippet_settings_first(tree, tmp_path, monkeypatch):
    from nrdfer.engine import pipeline
    from tests.predict.conftest import write_model_file

    model = write_model_file(tmp_path / "model.pt")  # T = 8 frames
    monkeypatch.setattr(pipeline, "eval_loader", lambda *a, **k: pytest.fail("work started"))
    sections = load_params(ROOT / "params.yaml", ["base", "data", "evaluate"])
    data = dataclasses.replace(sections["data"], U=4, V=2, size=32)
    outputs = pipeline.EvalOutputs(details=tmp_path / "details.json")
    kw = dict(base=sections["base"], data=data, evaluate=sections["evaluate"], outputs=outputs)
    missing = tmp_path / "summary.json"
    with pytest.raises(UserError, match="cannot read the training summary") as err:
        pipeline.evaluate_fold(tmp_path, "1", model, training=missing, **kw)
    assert str(err.value).startswith(str(missing))
    for decision, says in (
        ({"snippet_len": 0}, "model.snippet_len = 0: must be an integer in [1, 512]"),
        ({"snippet_stride": 0}, "model.snippet_stride = 0: must be an integer in [1, 512]"),
        ({"snippet_len": 100}, "do not fit 7 frame tokens"),
    ):
        with pytest.raises(UserError) as err:
            pipeline.evaluate_fold(tmp_path, "1", model, decision=decision, **kw)
        assert says in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not outputs.details.exists()
