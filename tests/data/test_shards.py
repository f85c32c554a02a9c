"""WebDataset shards: writer, train/eval readers, oversampling, DDP splits, corrupt shards, tar."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zlib
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from nrdfer.data import shards as S
from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest
from nrdfer.data.sampling import sample_indices
from nrdfer.data.shards import writing as W
from nrdfer.errors import UserError
from tests.conftest import ROOT
from tests.data.helpers import data_params, rewrite_tar
from tests.data.trees import SIDE, frame_value, make_dfew

SPEC = S.ShardSpec(short_side=SIDE, quality=95, maxcount=3, max_frames=0)
N_CLIPS = 30


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny DFEW tree (frames encode their index), its manifest, folds and shards."""
    root = tmp_path_factory.mktemp("dfew")
    # labels skewed for the oversampling test: class 0 has most clips
    clips = {v: (1 if v % 3 else 1 + v % 7, 3 + v % 11) for v in range(1, N_CLIPS + 1)}
    make_dfew(root, clips, {v: 1 + v % 5 for v in clips})
    table = ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=True)
    folds = make_folds(table, "official", 5, 0.2, seed=0)
    out = root / "shards"
    index = S.write_shards(table, folds, root, out, SPEC, workers=1, progress=False)
    return root, table, folds, out, index


def keys_of(loader):
    return [k for _, _, keys in loader for k in keys]


def test_index_layout_each_clip_once(built):
    _, table, folds, out, index = built
    assert sorted(index["clips"]) == sorted(table["clip_id"])
    names = sorted(p.name for p in out.glob("*.tar"))
    listed = sorted(s["name"] for p in index["parts"].values() for s in p["shards"])
    assert names == listed and "set_1-000000.tar" in names
    stored = Counter()
    for path in out.glob("*.tar"):
        with tarfile.open(path) as tar:  # plain tar, readable by Python's tarfile
            members = tar.getmembers()
            assert all(m.mode == 0o444 and not m.pax_headers for m in members)
            stored.update(m.name.split(".")[0] for m in members if m.name.endswith(".json"))
    assert set(stored.values()) == {1} and len(stored) == N_CLIPS
    fold = index["folds"]["1"]
    assert fold["test"] == folds["folds"]["1"]["test"] and fold["test_parts"] == ["set_1"]


def test_eval_loader_order_frames_and_every_clip_once(built):
    _, table, folds, out, _ = built
    data = data_params()
    loader = S.eval_loader(out, 2, data)
    batches = list(loader)
    clips, labels, keys = batches[0]
    assert clips.dtype == torch.uint8 and clips.shape[1:] == (8, 3, SIDE, SIDE)
    assert labels.dtype == torch.int64 and len(keys) == clips.shape[0]
    all_keys = keys_of(loader)
    assert sorted(all_keys) == sorted(folds["folds"]["2"]["test"]) == sorted(set(all_keys))
    assert all_keys == keys_of(S.eval_loader(out, 2, data)), "deterministic order"
    rows = table.set_index("clip_id")
    for clip, label, key in zip(clips, labels, keys, strict=True):
        assert label == rows.loc[key, "label"]
        n = rows.loc[key, "n_frames"]
        got = [frame_value(f.permute(1, 2, 0).numpy()) for f in clip]
        assert got == sample_indices(n, 4, 2, train=False).tolist(), "numeric order, centred"
    workers = keys_of(S.eval_loader(out, 2, data, num_workers=2))
    assert sorted(workers) == sorted(all_keys) and len(workers) == len(set(workers))
    ranks = [keys_of(S.eval_loader(out, 2, data, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and sorted(ranks[0] + ranks[1]) == sorted(all_keys)
    val = keys_of(S.eval_loader(out, 2, data, split="val"))
    assert sorted(val) == sorted(folds["folds"]["2"]["val"])


def test_train_loader_shuffled_augmented_deterministic(built):
    _, _, folds, out, _ = built
    data = data_params(size=16)
    loader = S.train_loader(out, 1, data, seed=5)
    first = list(loader)
    keys = [k for _, _, ks in first for k in ks]
    assert sorted(keys) == sorted(folds["folds"]["1"]["train"]), "each train clip once"
    assert not set(keys) & set(folds["folds"]["1"]["val"] + folds["folds"]["1"]["test"])
    assert first[0][0].shape[1:] == (8, 3, 16, 16)
    again = list(S.train_loader(out, 1, data, seed=5))
    assert [b[2] for b in again] == [b[2] for b in first]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    loader.set_epoch(1)
    other = [k for _, _, ks in loader for k in ks]
    assert other != keys and sorted(other) == sorted(keys)
    two = keys_of(S.train_loader(out, 1, data, seed=5, num_workers=2))
    assert sorted(two) == sorted(keys)
    r0, r1 = (keys_of(S.train_loader(out, 1, data, seed=5, rank=r, world_size=2)) for r in (0, 1))
    assert sorted(r0 + r1) == sorted(keys)


def test_balanced_oversampling_and_resampled(built):
    _, _, folds, out, index = built
    train = folds["folds"]["1"]["train"]
    counts = Counter(index["clips"][c]["label"] for c in train)
    data = data_params(balanced=True, balanced_epoch="largest_class", batch_size=8)
    loader = S.train_loader(out, 1, data, seed=0)
    labels = torch.cat([y for _, y, _ in loader]).tolist()
    got = Counter(labels)
    assert set(got) == set(counts)
    top = max(counts.values())
    assert loader.num_clips == pytest.approx(top * len(counts), abs=1)
    assert max(got.values()) - min(got.values()) <= 0.5 * top + 2, got
    assert got[0] == counts[0], "the largest class is not oversampled"
    # the epoch keeps the training set's size: the largest class drawn less, rare ones more
    same = data_params(balanced=True, balanced_epoch="dataset", batch_size=8)
    loader = S.train_loader(out, 1, same, seed=0)
    got = Counter(torch.cat([y for _, y, _ in loader]).tolist())
    assert loader.num_clips == pytest.approx(len(train), abs=1)
    assert sum(got.values()) == pytest.approx(len(train), abs=0.25 * len(train))
    assert got[0] < counts[0] and min(got.values()) >= 0.3 * len(train) / len(counts), got
    assert S.repeat_factors([0, 0, 0, 1], "dataset") == {0: 2 / 3, 1: 2.0}
    assert S.repeat_factors([0, 0, 0, 1], "largest_class") == {0: 1.0, 1: 3.0}
    plain = data_params(resampled=True, batch_size=4)
    per_rank = [
        [len(k) for _, _, k in S.train_loader(out, 1, plain, seed=0, rank=r, world_size=2)]
        for r in (0, 1)
    ]
    assert len(per_rank[0]) == len(per_rank[1]), "equal batches per rank (DDP)"
    assert sum(per_rank[0]) == -(-len(train) // 2)


def test_max_frames_cap(tmp_path, built):
    root, table, folds, _, _ = built
    spec = dataclasses.replace(SPEC, max_frames=4)
    index = S.write_shards(table, folds, root, tmp_path / "s", spec, progress=False)
    assert max(c["frames"] for c in index["clips"].values()) == 4
    assert S.keep_frames(10, 4).tolist() == [0, 3, 6, 9]


def test_corrupt_and_truncated_shards_name_the_shard(tmp_path, built):
    _, _, _, out, _ = built
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    data = data_params()
    victim = copy / "set_3-000000.tar"
    raw = victim.read_bytes()
    victim.write_bytes(raw[: len(raw) // 2 + 100])  # truncated mid-member
    with pytest.raises(S.CorruptShardError, match="set_3-000000.tar"):
        keys_of(S.eval_loader(copy, 3, data))
    victim.write_bytes(raw[:512] + b"\x00" * 4)
    with pytest.raises(S.CorruptShardError, match="set_3-000000.tar"):
        keys_of(S.eval_loader(copy, 3, data, num_workers=1))
    victim.write_bytes(b"garbage" * 100)
    with pytest.raises(S.CorruptShardError, match="set_3-000000.tar"):
        keys_of(S.eval_loader(copy, 3, data))
    victim.unlink()
    with pytest.raises(S.CorruptShardError, match="set_3-000000.tar"):
        keys_of(S.eval_loader(copy, 3, data))


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs the tar command")
def test_tar_written_by_tar_is_readable(tmp_path, built):
    _, _, folds, out, _ = built
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    expected = keys_of(S.eval_loader(copy, 4, data_params()))
    for path in copy.glob("set_4-*.tar"):
        unpacked = tmp_path / path.stem
        unpacked.mkdir()
        subprocess.run(["tar", "-xf", str(path), "-C", str(unpacked)], check=True)
        path.unlink()
        subprocess.run(["tar", "-cf", str(path), "-C", str(unpacked), "."], check=True)
    got = keys_of(S.eval_loader(copy, 4, data_params()))  # members in directory order
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    assert sorted(expected) == sorted(folds["folds"]["4"]["test"])


def test_pax_tar_written_by_tarfile_is_readable(tmp_path, built):
    _, _, folds, out, _ = built
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    for path in copy.glob("set_5-*.tar"):
        with tarfile.open(path) as src:
            members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as dst:
            for member, payload in members:
                member.pax_headers = {"comment": "re-packed"}
                member.name = "./" + member.name
                dst.addfile(member, io.BytesIO(payload))
    got = keys_of(S.eval_loader(copy, 5, data_params()))
    assert sorted(got) == sorted(folds["folds"]["5"]["test"])


def test_writer_resumes_and_skips_unreadable_clips(tmp_path, built, monkeypatch):
    root, table, folds, _, _ = built
    work = tmp_path / "data"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("shards"))
    out = tmp_path / "s"

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after the tars were written")

    with monkeypatch.context() as m:
        m.setattr(W, "_build_index", crash)
        with pytest.raises(RuntimeError):
            S.write_shards(table, folds, work, out, SPEC, progress=False)
    assert not (out / S.INDEX).exists()
    calls = []
    real = W._write_one_shard
    monkeypatch.setattr(W, "_write_one_shard", lambda job: calls.append(job) or real(job))
    clip = table["clip_id"].iloc[0]
    for f in (work / table["source"].iloc[0]).iterdir():
        f.write_bytes(b"broken")
    index = S.write_shards(table, folds, work, out, SPEC, progress=False)
    assert calls == [], "finished shards are not written again"
    assert not (out / ".progress").exists()
    assert clip in index["clips"]  # written before the frames broke
    fresh = S.write_shards(table, folds, work, tmp_path / "t", SPEC, progress=False)
    assert clip in fresh["skipped"] and clip not in fresh["clips"]
    assert clip not in fresh["folds"][next(iter(fresh["folds"]))]["train"]


def test_readers_need_an_index(tmp_path):
    with pytest.raises(UserError, match="index.json"):
        S.eval_loader(tmp_path, 1, data_params())


def test_shards_are_webdataset_compatible(built):
    import cv2
    import webdataset as wds

    _, table, _, out, index = built
    url = str(out / "set_1-000000.tar")
    samples = list(wds.WebDataset(url, shardshuffle=False).decode("rgb8"))
    assert len(samples) == index["parts"]["set_1"]["shards"][0]["clips"]
    rows = table.set_index("clip_id")
    for sample in samples:
        assert {"json", "cls", "mjpeg"} <= set(sample), sorted(sample)
        jpegs = S.frame_jpegs(sample | {"json": json.dumps(sample["json"]).encode()})
        assert len(jpegs) == sample["json"]["frames"] == rows.loc[sample["__key__"], "n_frames"]
        frames = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR_RGB) for j in jpegs]
        assert all(f.shape == (SIDE, SIDE, 3) for f in frames)
        assert [frame_value(f) for f in frames] == list(range(len(frames))), "frame order"


def test_one_mjpeg_member_per_clip_playable_as_a_stream(tmp_path, built):
    _, _, _, out, _ = built
    with tarfile.open(out / "set_2-000000.tar") as tar:
        names = tar.getnames()
        blob = tar.extractfile(next(n for n in names if n.endswith(".mjpeg"))).read()
    keys = {n.split(".")[0] for n in names}
    assert sorted(names) == sorted(f"{k}.{m}" for k in keys for m in ("cls", "json", "mjpeg"))
    starts = [i for i in range(len(blob) - 2) if blob[i : i + 3] == b"\xff\xd8\xff"]
    assert starts[0] == 0 and blob.endswith(b"\xff\xd9") and len(starts) >= 3  # SOI ... EOI


def _two_sizes(name, payload):
    """Every clip's frames replaced by 5 JPEGs, the last one wider than the others."""
    frames = [np.full((SIDE, SIDE + 8 * (i == 4), 3), 40 * i, np.uint8) for i in range(5)]
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
    if name.endswith(".json"):
        meta = json.loads(payload)
        meta["frame_bytes"] = [len(j) for j in jpegs]
        meta["frame_crc32"] = [zlib.crc32(j) for j in jpegs]
        return name, json.dumps(meta).encode()
    return name, b"".join(jpegs) if name.endswith(".mjpeg") else payload


def test_damaged_clip_members_name_the_shard_and_clip(tmp_path, built):
    _, _, folds, out, _ = built
    data = data_params()
    expected = sorted(folds["folds"]["3"]["test"])
    for case, edit in {
        "frames of two sizes": _two_sizes,
        "foreign file ignored": lambda n, b: (n, b) if not n.endswith(".cls") else (n, b),
        "mjpeg shortened": lambda n, b: (n, b[:-10] if n.endswith(".mjpeg") else b),
        "member missing": lambda n, b: None if n.endswith(".json") else (n, b),
        "frame_bytes gone": lambda n, b: (
            n,
            b.replace(b'"frame_bytes"', b'"frame_bytez"') if n.endswith(".json") else b,
        ),
    }.items():
        copy = tmp_path / case.replace(" ", "_")
        shutil.copytree(out, copy)
        victim = copy / "set_3-000000.tar"
        rewrite_tar(victim, edit)
        if case == "foreign file ignored":
            with tarfile.open(victim, "a") as tar:
                info = tarfile.TarInfo("README.txt")
                info.size = 5
                tar.addfile(info, io.BytesIO(b"hello"))
            assert sorted(keys_of(S.eval_loader(copy, 3, data))) == expected
            continue
        with pytest.raises(S.CorruptShardError, match="set_3-000000.tar") as err:
            keys_of(S.eval_loader(copy, 3, data))
        assert "re-run the shards stage" in str(err.value), case
        if case == "frames of two sizes":
            assert f"{SIDE + 8}x{SIDE}, its first frame {SIDE}x{SIDE}" in str(err.value)
            later = data_params(augment_on="device", size=16)
            for workers in (0, 1):  # also from a worker process, also before the warp
                with pytest.raises(S.CorruptShardError, match="frame 4 of"):
                    keys_of(S.train_loader(copy, 1, later, seed=0, num_workers=workers))


def test_augment_on_device_matches_the_loader(built):
    _, _, _, out, _ = built
    data = data_params(size=16, batch_size=5)
    assert S.augment_device("auto", "cpu") is None and S.augment_device("loader", "cuda") is None
    assert S.augment_device("auto", "cuda").type == "cuda"
    assert S.augment_device("device", None).type == "cpu"
    with pytest.raises(ValueError, match="augment_on"):
        S.augment_device("gpu", "cpu")
    plain = list(S.train_loader(out, 1, dataclasses.replace(data, augment_on="loader"), seed=3))
    later = dataclasses.replace(data, augment_on="device")
    for workers in (0, 1):
        warped = list(S.train_loader(out, 1, later, seed=3, num_workers=workers, device="cpu"))
        assert [b[2] for b in warped] == [b[2] for b in plain]
        for (a, ya, _), (b, yb, _) in zip(plain, warped, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
            assert torch.equal(ya, yb) and torch.equal(a, b), "OpenCV warp on CPU: identical"
    loader = S.train_loader(out, 1, later, seed=3, device="cpu")
    assert loader.warp_device == torch.device("cpu")
    assert S.train_loader(out, 1, data, seed=3, device="cpu").warp_device is None  # auto


def test_worker_processes_start_after_opencv_ran_its_thread_pool(built):
    """Forked workers once called cv2.setNumThreads and hung when this process had used
    OpenCV's pool; run in a subprocess so a regression fails on the timeout, not hangs."""
    _, _, _, out, _ = built
    script = f"""
import cv2, numpy as np, dataclasses
from nrdfer.data import shards as S
from nrdfer.errors import UserError
from tests.data.helpers import data_params
threads = cv2.getNumThreads()  # the default: one per core
big = np.zeros((900, 900, 3), np.uint8)
data = data_params(augment_on="device", size=16)
loader = S.train_loader({str(out)!r}, 1, data, seed=0, num_workers=2, device="cpu")
for epoch in range(4):
    loader.set_epoch(epoch)
    cv2.remap(big, *np.zeros((2, 100, 100), np.float32), cv2.INTER_LINEAR)  # OpenCV's pool
    cv2.resize(big, (300, 300))  # runs right before the workers fork
    n = sum(len(k) for _, _, k in loader)  # and the CPU warp uses it between the batches
print(n, cv2.getNumThreads() == threads)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    n, restored = done.stdout.split()
    assert int(n) > 0 and restored == "True", "the parent's OpenCV threads are restored"


def test_batch_ring_reuses_a_slot_only_once_nothing_holds_its_batch():
    # one process plays both sides: worker (take, pack) and main process (unpack)
    FREE, TAKEN, HELD = S.BatchRing.FREE, S.BatchRing.TAKEN, S.BatchRing.HELD
    ring = S.BatchRing(workers=2, slots=2)
    a, slot_a = ring.take(1, (2, 3))
    b, slot_b = ring.take(1, (4, 5))
    assert (slot_a, slot_b) == (0, 1) and ring.flags[1].tolist() == [TAKEN, TAKEN]
    c, slot_c = ring.take(1, (2, 3))
    assert slot_c == -1, "every slot busy: a fresh block, never a busy one"
    a.fill_(7)
    b.copy_(torch.arange(20).view(4, 5))
    tag_a, sent_a = ring.pack(1, slot_a, a)
    assert sent_a is a, "a block travels the first time its slot is used"
    main_a = ring.unpack(tag_a, sent_a)
    main_b = ring.unpack(*ring.pack(1, slot_b, b))
    fresh = ring.unpack(*ring.pack(1, slot_c, c))
    assert fresh is c and len(ring.pending) == 2, "a fresh block is not the ring's business"
    assert torch.equal(main_a, a) and torch.equal(main_b, b) and main_b.shape == (4, 5)
    view = main_b[1:].numpy()  # a view or a numpy array keeps the batch alive
    del main_a, main_b
    ring.release_expired()
    assert ring.flags[1].tolist() == [FREE, HELD] and ring.flags[0].tolist() == [FREE, FREE]
    block = ring.storages[0]
    d, slot_d = ring.take(1, (3, 2))
    assert slot_d == 0 and d.untyped_storage().data_ptr() == block.data_ptr(), "reused"
    d.fill_(3)
    tag_d, sent_d = ring.pack(1, slot_d, d)
    assert sent_d is None, "a known block: slot and shape only"
    main_d = ring.unpack(tag_d, sent_d)
    assert main_d.shape == (3, 2) and bool((main_d == 3).all())
    assert view.tolist() == torch.arange(5, 20).view(3, 5).tolist(), "held: untouched"
    del view
    ring.release_expired()
    assert ring.flags[1].tolist() == [HELD, FREE]
    e, slot_e = ring.take(1, (10, 10))  # larger than slot 1's block: slot 1 grows
    assert slot_e == 1 and ring.storages[1].nbytes() >= 100 and e.shape == (10, 10)
    assert ring.pack(1, slot_e, e)[1] is e, "a grown block travels again"
    # slot 1's batch never reaches the main process (an epoch broken off): the next epoch's
    # recover frees it and sends its block again; the held slot 0 stays held
    ring.recover(1)
    assert ring.flags[1].tolist() == [HELD, FREE] and 1 not in ring.announced


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_worker_process_batches_held_or_let_go_match_in_process_loading(built, augment_on):
    """The persistent worker reuses its shared-memory blocks across epochs: batches the
    consumer still holds are never overwritten, an epoch broken off loses nothing, and every
    batch equals the in-process one (1 worker: the same order)."""
    _, _, _, out, _ = built
    data = data_params(size=16, batch_size=1, augment_on=augment_on)
    inline = S.train_loader(out, 1, data, seed=4, num_workers=0, device="cpu")
    worker = S.train_loader(out, 1, data, seed=4, num_workers=1, device="cpu")
    held = []
    for epoch in (0, 1, 1, 2):
        inline.set_epoch(epoch)
        worker.set_epoch(epoch)
        expected = list(inline)
        assert len(expected) > 2 * (4 + 2), "more batches than are ever in flight"
        if epoch == 1 and not held[-1][2]:  # break an epoch off after three batches
            for i, got in enumerate(worker):
                held.append((got[0], expected[i][0], True))
                if i == 2:
                    break
            continue
        for i, (got, want) in enumerate(zip(worker, expected, strict=True)):
            assert got[2] == want[2] and torch.equal(got[0], want[0]), (epoch, i)
            if i % 3 == 0:
                held.append((got[0], want[0], False))  # kept without a copy
        flags = worker.ring.flags[0].tolist()
        assert S.BatchRing.TAKEN not in flags, f"epoch {epoch}: slots lost ({flags})"
    assert all(torch.equal(a, b) for a, b, _ in held), "a held batch was overwritten"


def test_decoded_frame_cache_keeps_the_bits_and_its_limit(built):
    """data.decode_cache_mb: epochs read from the cache give the batches of fresh decoding,
    for training (augmented) and evaluation; the cache stops at its limit; 0 turns it off."""
    _, _, _, out, _ = built
    off, on = data_params(size=16, decode_cache_mb=0), data_params(size=16, decode_cache_mb=1)
    plain, cached = (S.train_loader(out, 1, d, seed=5) for d in (off, on))
    plain_eval, cached_eval = (S.eval_loader(out, 1, d) for d in (off, on))
    assert plain.dataset.cache is None and plain_eval.dataset.cache is None
    for epoch in range(3):
        for a, b in ((plain, cached), (plain_eval, cached_eval)):
            a.set_epoch(epoch)
            b.set_epoch(epoch)
            got, want = list(b), list(a)
            assert [x[2] for x in got] == [x[2] for x in want]
            assert all(torch.equal(x[0], y[0]) for x, y in zip(got, want, strict=True)), epoch
    cache = cached.dataset.cache
    assert cache.frames and 0 < cache.bytes <= 1 << 20
    assert all(not f.flags.writeable for f in cache.frames.values())
    small = S.train_loader(out, 1, data_params(size=16, decode_cache_mb=1), seed=5)
    frame_bytes = next(iter(cache.frames.values())).nbytes
    small.dataset.cache.limit = 3 * frame_bytes  # room for three frames only
    first = list(small)
    assert len(small.dataset.cache.frames) == 3 and small.dataset.cache.bytes == 3 * frame_bytes
    small.set_epoch(0)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(list(small), first, strict=True))
