"""Training-loader speed: our WebDataset reader vs the DFER reference's folder-of-JPEGs loader.

Measures clips/s of the training loader (decode + U x V sampling + augmentation, 16 frames of
112 x 112 per clip) with 1 and 2 workers, side by side in the same run with:

- ``reference_pil``: a folder-of-JPEGs loader that opens each sampled frame with PIL and
  augments with PIL group transforms, the way the DFER reference code (Former-DFER /
  NR-DFERNet ``VideoDataset``) does (DataLoader worker processes);
- ``bare_decode``: ``cv2.imdecode`` of the same 16 stored frames per clip and nothing else,
  in 1 process and in 2 processes at once (the ceiling for any loader reading these JPEGs).

Ours is measured with worker processes in two configurations: the augmentation's warp in the loader or deferred to the training device
(``data.augment_on``). For the deferred warp the loader's clips/s is timed where the batch
leaves it (decoded frames + each clip's drawn crop/flip/rotation/brightness), and the warp's
own throughput is timed separately on the CPU (OpenCV) and, when there is one, on CUDA.

Frames: a generated DFEW-like tree (224 x 224 JPEG face-like frames, q95) unless ``--dfew``
points at a real or demo DFEW tree. Writes ``benchmarks/results/loader_speed.json`` and a bar
chart next to it (``loader_speed.png``).

``--checksums`` instead times our loader (both warp settings, ``--workers`` process workers)
with the CRC-32 check of every decoded frame on and off (``ClipStream(verify=...)``), rounds
alternating, and writes ``benchmarks/results/loader_checksum.json``.

    python benchmarks/loader_speed.py [--dfew data/raw/demo/DFEW] [--clips 1000] [--frames 32]
    python benchmarks/loader_speed.py --checksums [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.utils.data import DataLoader, Dataset

from nrdfer.commands.preset import preset_overrides
from nrdfer.data.folds import make_folds
from nrdfer.data.frames import list_frames
from nrdfer.data.manifest import ingest
from nrdfer.data.sampling import sample_indices
from nrdfer.data.shards import (
    ClipLoader,
    ClipStream,
    ShardIndex,
    ShardSpec,
    frame_jpegs,
    iter_shard,
    write_shards,
)
from nrdfer.data.transforms import warp_batch
from nrdfer.io import write_json
from nrdfer.params import load_section

ROOT = Path(__file__).resolve().parents[1]


def synth_frames(root: Path, clips: int, frames: int, seed: int = 0) -> Path:
    """A DFEW-like tree of smooth, face-like 224 x 224 JPEG frames (fast to make)."""
    rng = np.random.default_rng(seed)
    noise_bank = rng.normal(0, 6, (64, 224, 224, 3)).astype(np.float32)  # sensor-like noise
    clip_dir = root / "Clip" / "clip_224x224"
    for v in range(1, clips + 1):
        folder = clip_dir / f"{v:05d}"
        folder.mkdir(parents=True)
        base = cv2.GaussianBlur(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8), (0, 0), 12)
        skin = tuple(int(c) for c in rng.integers(90, 230, 3))
        for i in range(frames):
            img = base.copy()
            cx, cy = 112 + int(6 * np.sin(i / 5)), 112 + int(4 * np.cos(i / 7))
            cv2.ellipse(img, (cx, cy), (62, 82), 0, 0, 360, skin, -1)
            for dx in (-25, 25):
                cv2.circle(img, (cx + dx, cy - 20), 8, (40, 40, 40), -1)
            cv2.ellipse(img, (cx, cy + 35), (22, 4 + i % 9), 0, 0, 180, (60, 30, 120), 3)
            noise = noise_bank[int(rng.integers(len(noise_bank)))]
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i + 1}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    splits = root / "EmoLabel_DataSplit"
    for split in ("train", "test"):
        (splits / f"{split}(single-labeled)").mkdir(parents=True)
        for k in range(1, 6):
            rows = [
                f"{v},{1 + v % 7}\n"
                for v in range(1, clips + 1)
                if (1 + v % 5 == k) == (split == "test")
            ]
            (splits / f"{split}(single-labeled)" / f"set_{k}.csv").write_text(
                "video_name,label\n" + "".join(rows)
            )
    return root


# ---- the reference: PIL per frame, PIL group transforms (Former-DFER video_transform.py) ----


class ReferenceFolderDataset(Dataset):
    """Folder-of-JPEGs clips, PIL decode of each sampled frame, PIL group augmentation."""

    def __init__(self, folders: list[Path], labels: list[int], data, seed: int) -> None:
        self.folders, self.labels, self.data, self.seed = folders, labels, data, seed

    def __len__(self) -> int:
        return len(self.folders)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        files = list_frames(self.folders[i])
        idx = sample_indices(len(files), self.data.U, self.data.V, train=True, rng=rng)
        images = [Image.open(files[j]).convert("RGB") for j in idx]  # as the reference does
        w, h = images[0].size
        area = w * h * rng.uniform(*self.data.crop_area)
        ratio = np.exp(rng.uniform(*np.log(self.data.crop_aspect)))
        cw, ch = (
            min(w, int(round(np.sqrt(area * ratio)))),
            min(h, int(round(np.sqrt(area / ratio)))),
        )
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        size = self.data.size
        images = [
            im.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR)
            for im in images
        ]
        if rng.random() < self.data.flip_p:
            images = [im.transpose(Image.FLIP_LEFT_RIGHT) for im in images]
        factor = rng.uniform(1 - self.data.brightness, 1 + self.data.brightness)
        images = [ImageEnhance.Brightness(im).enhance(factor) for im in images]
        angle = rng.uniform(-self.data.rotation, self.data.rotation)
        images = [im.rotate(angle, resample=Image.BILINEAR) for im in images]
        clip = torch.from_numpy(np.stack([np.asarray(im) for im in images]))  # (T, H, W, 3)
        return clip.permute(0, 3, 1, 2).contiguous(), self.labels[i]  # (T, 3, H, W)


def _seed_worker(_: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def rate(make_iter, min_clips: int) -> float:
    """clips/s over at least ``min_clips`` clips, after one warm-up batch per pass."""
    clips, elapsed = 0, 0.0
    while clips < min_clips:
        it = iter(make_iter())
        next(it)  # warm-up: worker start and the first batch are not counted
        start = time.perf_counter()
        n = 0
        for batch in it:
            n += batch[0].shape[0]
        elapsed += time.perf_counter() - start
        clips += n
    return clips / elapsed


# ---- bare decode: cv2.imdecode of the sampled frames, nothing else ----

_SAMPLES: list = []


def _bare_pass(args: tuple[int, int, int]) -> tuple[int, float]:
    """Decode the T sampled frames of every clip once; returns (clips, seconds)."""
    seed, U, V = args
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for sample in _SAMPLES:
        jpegs = frame_jpegs(sample)
        for j in np.unique(sample_indices(len(jpegs), U, V, train=True, rng=rng)):
            cv2.imdecode(np.frombuffer(jpegs[j], np.uint8), cv2.IMREAD_COLOR_RGB)
    return len(_SAMPLES), time.perf_counter() - start


def bare_rate(processes: int, U: int, V: int, passes: int = 3) -> float:
    """Clips/s of ``processes`` processes decoding at once (forked: they share the samples)."""
    if processes == 1:
        return max(n / t for n, t in (_bare_pass((k, U, V)) for k in range(passes)))
    with ProcessPoolExecutor(processes) as pool:
        best = 0.0
        for k in range(passes):
            start = time.perf_counter()
            done = list(pool.map(_bare_pass, [(k * processes + i, U, V) for i in range(processes)]))
            best = max(best, sum(n for n, _ in done) / (time.perf_counter() - start))
    return best


def warp_rate(device: str, data, batch: int = 8, side: int = 128, repeats: int = 20) -> float:
    """Clips/s of the deferred warp (warp_batch) of uint8 batches on ``device``."""
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(
        rng.integers(0, 255, (batch, data.U * data.V, side, side, 3), dtype=np.uint8)
    ).to(device)
    angle = np.deg2rad(3.0)
    m = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), -4.0]])
    maps = torch.tensor(np.stack([m * (data.size / side)] * batch))
    factors = torch.full((batch,), 1.2, dtype=torch.float64)
    warp_batch(frames, maps, factors, data.size)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        warp_batch(frames, maps, factors, data.size)
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = report["clips_per_s"]
    rows = [("bare cv2.imdecode", rates["bare_decode"])]
    rows += [("DFER reference (PIL)", rates["reference_pil"])]
    rows += [(f"ours: {name}", r) for name, r in rates["ours"].items()]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    for k, (workers, shade) in enumerate((("1", "#4c72b0"), ("2", "#dd8452"))):
        values = [r[workers] for _, r in rows]
        ax.barh(y + 0.2 - 0.4 * k, values, height=0.38, color=shade, label=f"{workers} worker(s)")
    ax.set_yticks(y, [name for name, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("clips / s (16 x 112^2 per clip)")
    ax.set_title("Training loader throughput", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


CONFIGS = {  # name -> warp deferred to the device
    "process workers, warp in loader": False,
    "process workers, warp deferred": True,
}


def checksum_report(args, index, ids, data, spec, frames_per_clip: float) -> None:
    """Clips/s of our loader with the per-frame CRC-32 check on and off, best of the rounds."""
    rates: dict[str, dict[str, float]] = {}
    epoch = iter(range(10**6))
    for _ in range(args.rounds):
        for config, deferred in CONFIGS.items():
            for verify in (True, False):
                stream = ClipStream(
                    index, ids, data, train=True, seed=0, warp_later=deferred, verify=verify
                )
                loader = ClipLoader(stream, args.workers, None)

                def make(loader=loader):
                    loader.set_epoch(next(epoch))
                    return loader

                row = rates.setdefault(config, {})
                key = "crc32 checked" if verify else "not checked"
                row[key] = max(row.get(key, 0.0), rate(make, args.min_clips))
                del loader, make
    crc_us = []  # the check alone: CRC-32 of the 16 sampled frames of each clip
    rng = np.random.default_rng(0)
    for sample in _SAMPLES:
        jpegs = frame_jpegs(sample)
        picked = [
            jpegs[j]
            for j in np.unique(sample_indices(len(jpegs), data.U, data.V, train=True, rng=rng))
        ]
        start = time.perf_counter()
        for jpeg in picked:
            zlib.crc32(jpeg)
        crc_us.append((time.perf_counter() - start) * 1e6)
    report = {
        "what": "our training loader clips/s with the per-frame CRC-32 check on and off",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "opencv": cv2.__version__,
        },
        "data": {
            "source": str(args.dfew) if args.dfew else "generated 224x224 q95 face-like frames",
            "train_clips": len(ids),
            "stored_frames_per_clip": frames_per_clip,
            "stored_short_side": spec.short_side,
            "batch_size": data.batch_size,
            "workers": args.workers,
        },
        "clips_per_s": rates,
        "cost_of_the_check": {
            c: 1 - r["crc32 checked"] / r["not checked"] for c, r in rates.items()
        },
        "crc32_of_the_sampled_frames_us_per_clip": float(np.median(crc_us)),
        "rounds": args.rounds,
        "load_average_at_end": os.getloadavg()[0],
    }
    write_json(args.out, report)
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dfew", type=Path, help="a DFEW tree to read (default: generated)")
    parser.add_argument("--clips", type=int, default=1000, help="generated clips")
    parser.add_argument("--frames", type=int, default=32, help="frames per generated clip")
    parser.add_argument("--min-clips", type=int, default=800, help="clips timed per setting")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (best)")
    parser.add_argument("--out", type=Path, help="results file (default: benchmarks/results/...)")
    parser.add_argument(
        "--checksums", action="store_true", help="only our loader, frame CRC-32 check on vs off"
    )
    parser.add_argument("--workers", type=int, default=1, help="workers (with --checksums)")
    args = parser.parse_args()
    name = "loader_checksum.json" if args.checksums else "loader_speed.json"
    args.out = args.out or ROOT / "benchmarks/results" / name
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    # the paper's sizes (112 px input, frames stored at 128 px) whatever the demo params say
    paper = ROOT / "presets/paper.yaml"
    data = load_section(ROOT / "params.yaml", "data", preset_overrides(paper, "data"))
    data = dataclasses.replace(data, batch_size=8, balanced=False, resampled=False)
    shards = load_section(ROOT / "params.yaml", "shards", preset_overrides(paper, "shards"))
    spec = ShardSpec(shards.short_side, shards.quality, 16, shards.max_frames)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = args.dfew or synth_frames(tmp / "DFEW", args.clips, args.frames)
        table = ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=False)
        folds = make_folds(table, "official", 5, 0.0, seed=0)
        write_shards(table, folds, root, tmp / "shards", spec, workers=2, progress=False)
        index = ShardIndex(tmp / "shards")
        ids = index.ids(1, "train")
        rows = table.set_index("clip_id")
        folders = [root / rows.loc[c, "source"] for c in ids]
        labels = [int(rows.loc[c, "label"]) for c in ids]
        wanted = set(ids)
        _SAMPLES[:] = [
            s for path, n in index.shards_for(ids) for s in iter_shard(path, n)
            if s["__key__"] in wanted
        ]  # fmt: skip
        frames_per_clip = float(np.mean([len(frame_jpegs(s)) for s in _SAMPLES]))
        if args.checksums:
            return checksum_report(args, index, ids, data, spec, frames_per_clip)

        # rounds alternate the settings; the best round of each counts (the machine is shared)
        ours: dict[str, dict[str, float]] = {name: {} for name in CONFIGS}
        reference_pil: dict[str, float] = {}
        bare: dict[str, float] = {}
        for _ in range(args.rounds):
            for w in (1, 2):
                key = str(w)
                bare[key] = max(bare.get(key, 0.0), bare_rate(w, data.U, data.V))
                epoch = iter(range(10**6))

                def reference(w=w):
                    ds = ReferenceFolderDataset(folders, labels, data, seed=random.randrange(10**6))
                    return DataLoader(
                        ds, batch_size=8, shuffle=True, num_workers=w, worker_init_fn=_seed_worker
                    )

                got = rate(reference, args.min_clips)
                reference_pil[key] = max(reference_pil.get(key, 0.0), got)
                for name, deferred in CONFIGS.items():
                    # one loader per setting, a new epoch per pass, as in training (its
                    # worker processes persist across epochs)
                    stream = ClipStream(index, ids, data, train=True, seed=0, warp_later=deferred)
                    loader = ClipLoader(stream, w, None)  # deferred: timed pre-warp

                    def make(loader=loader, e=epoch):
                        loader.set_epoch(next(e))
                        return loader

                    ours[name][key] = max(ours[name].get(key, 0.0), rate(make, args.min_clips))
                    del loader, make  # its workers end here
        warp = {"cpu_opencv_1thread": warp_rate("cpu", data)}
        if torch.cuda.is_available():
            warp["cuda_torch"] = warp_rate("cuda", data)

    default = "process workers, warp in loader"
    best = {w: max(ours[n][w] for n in ours) for w in ("1", "2")}
    report = {
        "what": "training loader clips/s: decode + U x V sampling + augmentation, 16 x 112^2",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "opencv": cv2.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "data": {
            "source": str(args.dfew) if args.dfew else "generated 224x224 q95 face-like frames",
            "train_clips": len(ids),
            "stored_frames_per_clip": frames_per_clip,
            "stored_short_side": spec.short_side,
            "stored_quality": spec.quality,
            "batch_size": data.batch_size,
        },
        "clips_per_s": {
            "bare_decode": bare,
            "reference_pil": reference_pil,
            "ours": ours,
            "deferred_warp_alone": warp,
        },
        "speedup_vs_reference": {
            name: {w: r[w] / reference_pil[w] for w in r} for name, r in ours.items()
        },
        "vs_bare_decode_same_workers": {
            name: {w: r[w] / bare[w] for w in r} for name, r in ours.items()
        },
        "summary": {
            "default_config": default,
            "default_speedup_vs_reference": {
                w: ours[default][w] / reference_pil[w] for w in ("1", "2")
            },
            "best_vs_bare_decode": {w: best[w] / bare[w] for w in ("1", "2")},
        },
        "rounds": args.rounds,
        "load_average_at_end": os.getloadavg()[0],
    }
    write_json(args.out, report)
    plot(report, args.out.with_suffix(".png"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
