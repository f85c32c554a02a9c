"""The shard format: what a sample holds and how it is named (``docs/data.md``, "Shards").

A sample is three tar members, ``<clip id>.json`` (metadata, with the byte length of every
frame), ``<clip id>.cls`` (the label) and ``<clip id>.mjpeg``: every (or at most ``max_frames``
evenly spaced) frame as a JPEG whose short side leaves room for the random crop, the JPEGs
concatenated in frame order (a Motion-JPEG stream: ``ffplay -f mjpeg 00001.mjpeg`` plays it,
:func:`frame_jpegs` splits it).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from nrdfer.errors import UserError

INDEX = "index.json"
FORMAT = 2  # 1: one member per frame (before 2026-12); 2: one .mjpeg member per clip
PROGRESS_DIR = ".progress"


class CorruptShardError(UserError):
    """A shard is missing, truncated or not a valid tar; the message names the shard."""


@dataclass(frozen=True)
class ShardSpec:
    """How frames are stored (the ``shards`` section of params.yaml).

    Attributes:
        short_side: frames are resized so their short side is this many pixels.
        quality: JPEG quality.
        maxcount: clips per tar.
        max_frames: keep at most this many frames per clip, evenly spaced; 0 keeps all.
    """

    short_side: int
    quality: int
    maxcount: int
    max_frames: int


def spec_dict(spec: ShardSpec) -> dict[str, int]:
    return {
        "short_side": spec.short_side,
        "quality": spec.quality,
        "maxcount": spec.maxcount,
        "max_frames": spec.max_frames,
    }


def keep_frames(n: int, max_frames: int) -> np.ndarray:
    """Indices of the frames stored for a clip of n frames (all, or max_frames evenly spaced)."""
    if max_frames <= 0 or n <= max_frames:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_frames)).astype(np.int64))


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """Shrink so the short side is at most ``short_side`` (area filter); never enlarge."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def encode_clip_sample(
    clip_id: str, label: int, frames: Sequence[np.ndarray], meta: dict[str, Any], spec: ShardSpec
) -> dict[str, Any]:
    """One WebDataset sample: JSON metadata, the label and the stored frames as JPEG bytes."""
    if "." in clip_id or "/" in clip_id:
        raise ValueError(f"clip id {clip_id!r} must not contain '.' or '/' (WebDataset keys)")
    keep = keep_frames(len(frames), spec.max_frames)
    params = [cv2.IMWRITE_JPEG_QUALITY, spec.quality]
    jpegs = []
    for i in keep:
        ok, buf = cv2.imencode(".jpg", resize_short_side(frames[i], spec.short_side), params)
        if not ok:
            raise ValueError(f"{clip_id}: JPEG encoding failed for frame {i}")
        jpegs.append(buf.tobytes())
    info = dict(
        meta,
        clip_id=clip_id,
        label=label,
        frames=len(keep),
        source_frames=len(frames),
        frame_bytes=[len(j) for j in jpegs],
    )
    return {
        "__key__": clip_id,
        "json": json.dumps(info, sort_keys=True).encode(),
        "cls": str(label).encode(),
        "mjpeg": b"".join(jpegs),
    }


def some_ids(ids: Sequence[str], limit: int = 5) -> str:
    """``'a', 'b', ... (12 in all)``: a few ids for a message."""
    shown = ", ".join(repr(i) for i in sorted(ids)[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def frame_jpegs(sample: dict[str, Any]) -> list[memoryview]:
    """The JPEG bytes of every stored frame of a raw sample, in frame order.

    Raises:
        CorruptShardError: the JSON does not describe the ``.mjpeg`` member (names the shard).
    """
    key, url = sample["__key__"], sample.get("__url__", "?")
    try:
        lengths = [int(n) for n in json.loads(sample["json"])["frame_bytes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptShardError(
            f"shard {url}: {key}.json has no valid frame_bytes ({exc}); re-run the shards stage"
        ) from None
    blob = memoryview(sample["mjpeg"])
    if not lengths or min(lengths) <= 0 or sum(lengths) != len(blob):
        raise CorruptShardError(
            f"shard {url}: {key}.mjpeg holds {len(blob)} bytes, its JSON lists "
            f"{len(lengths)} frames of {sum(lengths)}; re-run the shards stage"
        )
    ends = list(itertools.accumulate(lengths))
    return [blob[e - n : e] for e, n in zip(ends, lengths, strict=True)]
