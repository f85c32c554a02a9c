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
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from nrdfer.errors import UserError

INDEX = "index.json"
# 1: one member per frame (before 2026-12); 2: one .mjpeg member per clip; 3: with a CRC-32
# of every stored frame (checked before the frame is decoded)
FORMAT = 3
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


def one_size(frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """A clip's frames brought to one size: the most common one (of several as common, the
    one that comes first). Returns the frames and, when some were resized, a note for the
    shard report (``"2 of 6 frames resized from 80x56 to 64x64"``; ``""`` otherwise)."""
    shapes = Counter(f.shape[:2] for f in frames)
    if len(shapes) <= 1:
        return list(frames), ""
    (h, w), _ = max(shapes.items(), key=lambda item: item[1])  # the first of the most common
    odd = sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames if f.shape[:2] != (h, w)})
    same = [
        f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
        for f in frames
    ]
    n = len(frames) - shapes[(h, w)]
    return same, f"{n} of {len(frames)} frames resized from {', '.join(odd)} to {w}x{h}"


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
        frame_crc32=[zlib.crc32(j) for j in jpegs],
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


def _clip_meta(sample: dict[str, Any]) -> dict[str, Any]:
    key, url = sample["__key__"], sample.get("__url__", "?")
    try:
        meta = json.loads(sample["json"])
    except (TypeError, ValueError) as exc:
        raise CorruptShardError(
            f"shard {url}: {key}.json is not valid JSON ({exc}); re-run the shards stage"
        ) from None
    if not isinstance(meta, dict):
        raise CorruptShardError(
            f"shard {url}: {key}.json is not a JSON object; re-run the shards stage"
        )
    return meta


def _split_frames(sample: dict[str, Any], meta: dict[str, Any]) -> list[memoryview]:
    key, url = sample["__key__"], sample.get("__url__", "?")
    try:
        lengths = [int(n) for n in meta["frame_bytes"]]
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


def frame_jpegs(sample: dict[str, Any]) -> list[memoryview]:
    """The JPEG bytes of every stored frame of a raw sample, in frame order.

    Raises:
        CorruptShardError: the JSON does not describe the ``.mjpeg`` member (names the shard).
    """
    return _split_frames(sample, _clip_meta(sample))


def _label(text: Any) -> int | None:
    """A stored label as an int (``b"3"``, ``3``), or None when it is not one."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace").strip()
        return int(text) if text.isascii() and text.isdigit() else None
    return text if isinstance(text, int) and not isinstance(text, bool) else None


def checked_clip(sample: dict[str, Any], label: int) -> tuple[list[memoryview], list[int]]:
    """The frames of a raw sample and their CRC-32s, after checking its labels.

    The clip's ``.cls`` and the label in its JSON must both be ``label`` (the one
    ``index.json`` gives the clip); every frame's CRC-32 is listed, to be checked before the
    frame is decoded (:func:`check_frame`).

    Raises:
        CorruptShardError: naming the shard and the clip, and "re-run the shards stage".
    """
    key, url = sample["__key__"], sample.get("__url__", "?")
    meta = _clip_meta(sample)
    stored = {".cls": _label(sample["cls"]), ".json": _label(meta.get("label"))}
    for member, value in stored.items():
        if value != label:
            shown = (
                bytes(sample["cls"][:20]).decode("utf-8", "replace")
                if member == ".cls"
                else meta.get("label")
            )
            raise CorruptShardError(
                f"shard {url}: clip {key!r} has label {shown!r} in its {member}, index.json "
                f"gives {label}; the shard or the index is damaged, re-run the shards stage"
            )
    jpegs = _split_frames(sample, meta)
    crcs = meta.get("frame_crc32")
    if (
        not isinstance(crcs, list)
        or len(crcs) != len(jpegs)
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in crcs)
    ):
        raise CorruptShardError(
            f"shard {url}: {key}.json has no valid frame_crc32 (a CRC-32 per frame; shards "
            "written before checksums lack it); re-run the shards stage"
        )
    return jpegs, crcs


def check_frame(url: str, key: str, i: int, jpeg: memoryview, crc: int) -> None:
    """Raise :class:`CorruptShardError` unless frame ``i`` of a clip has its stored CRC-32."""
    if zlib.crc32(jpeg) != crc:
        raise CorruptShardError(
            f"shard {url}: frame {i} of clip {key!r} is damaged (its CRC-32 does not "
            "match the one stored when the shards were written); re-run the shards stage"
        )
