"""Our tar reader vs webdataset's tar iterator, inside the loader's per-clip work.

The loader reads each tar once per epoch and, per clip, splits the ``.mjpeg`` member into JPEGs
and decodes the T = 16 sampled frames (the dominant cost). This script times that per-clip
work with the two readers over the same shards, in alternating rounds (best round of each):

- ``ours``: :func:`nrdfer.data.shards.reading.tar_members` (a pure-Python ustar/GNU/pax reader);
- ``webdataset``: ``webdataset.tariterators.tar_file_iterator`` over ``tarfile`` in stream mode
  (what ``wds.WebDataset`` uses), grouped into samples by the same code.

Both then run :func:`~nrdfer.data.shards.format.frame_jpegs` and ``cv2.imdecode`` of 16 evenly
chosen frames per clip (one OpenCV thread). Writes benchmarks/results/tar_reader.json.

    python benchmarks/tar_reader.py SHARD_DIR [--rounds 5] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import webdataset as wds

from nrdfer.data.shards.format import frame_jpegs
from nrdfer.data.shards.reading import _group_members, tar_members


def ours(path: Path):
    with open(path, "rb") as fh:
        yield from _group_members(tar_members(fh, path), path)


def webdataset_iterator(path: Path):
    with open(path, "rb") as fh:  # tar_file_iterator opens tarfile in stream mode itself
        files = ((f["fname"], f["data"]) for f in wds.tariterators.tar_file_iterator(fh))
        yield from _group_members(files, path)


def one_pass(reader, tars: list[Path], decode: bool) -> tuple[int, float]:
    clips, t0 = 0, time.perf_counter()
    for path in tars:
        for sample in reader(path):
            jpegs = frame_jpegs(sample)
            if decode:
                for i in np.linspace(0, len(jpegs) - 1, 16).round().astype(int):
                    cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR_RGB)
            clips += 1
    return clips, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", help="a shard directory (e.g. data/shards/dfew)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/tar_reader.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    tars = sorted(Path(args.shards).glob("*.tar"))
    best: dict[str, float] = {}
    clips = 0
    for _ in range(args.rounds):
        for decode in (False, True):
            for name, reader in (("ours", ours), ("webdataset", webdataset_iterator)):
                clips, seconds = one_pass(reader, tars, decode)
                key = f"{name}, {'read + decode 16 frames' if decode else 'read only'}"
                best[key] = min(best.get(key, float("inf")), seconds / clips * 1e6)
    with_decode = (
        best["webdataset, read + decode 16 frames"] / best["ours, read + decode 16 frames"]
    )
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "shards": Path(args.shards).name,
        "clips": clips,
        "rounds": args.rounds,
        "us_per_clip_best": {k: round(v, 1) for k, v in best.items()},
        "webdataset_over_ours_with_decode": round(with_decode, 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
