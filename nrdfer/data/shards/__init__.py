"""WebDataset shards: the writer (one tar set per partition) and the clip readers.

Layout of a shard directory (see ``docs/data.md``)::

    index.json                 parts -> shard files and clip counts, clips -> label/part/shard,
                               folds -> train/val/test clip ids and the parts they come from
    set_1-000000.tar ...       one partition per prefix (DFEW test sets, AFEW train/val,
                               stratified fold_k); each usable clip stored exactly once

A sample is three tar members, ``<clip id>.json`` (metadata, with the byte length of every
frame), ``<clip id>.cls`` (the label) and ``<clip id>.mjpeg``: every (or at most ``max_frames``
evenly spaced) frame as a JPEG whose short side leaves room for the random crop, the JPEGs
concatenated in frame order (a Motion-JPEG stream: ``ffplay -f mjpeg 00001.mjpeg`` plays it,
:func:`frame_jpegs` splits it). Three members per clip whatever its length keep the cost of
reading a tar independent of the frame count. Fold k reads the parts that hold its clips and
keeps only the ids of the split asked for, before any JPEG is decoded; only the T sampled
frames of a clip are decoded, straight into a batch buffer in shared memory.

Readers yield ``(clips uint8 (B, T, 3, H, W), labels int64 (B,), keys list[str])``. With
``data.augment_on: device`` the training reader hands the decoded frames and each clip's
augmentation draws over, and the warp runs after batching on the training device.

Modules: ``format`` (sample layout, spec), ``writing`` (the writer), ``index`` (``index.json``),
``reading`` (one tar), ``ring`` (shared-memory batch buffers), ``stream`` (decoding, sampling,
augmentation), ``loader`` (the DataLoader and the train/eval loaders).
"""

from nrdfer.data.shards.format import (
    FORMAT,
    INDEX,
    CorruptShardError,
    ShardSpec,
    encode_clip_sample,
    frame_jpegs,
    keep_frames,
    one_size,
    resize_short_side,
)
from nrdfer.data.shards.index import ShardIndex
from nrdfer.data.shards.loader import ClipLoader, augment_device, eval_loader, train_loader
from nrdfer.data.shards.reading import iter_shard, tar_members
from nrdfer.data.shards.ring import RING_SLOTS, BatchRing
from nrdfer.data.shards.stream import ClipStream, repeat_factors
from nrdfer.data.shards.writing import write_shards

__all__ = [
    "FORMAT",
    "INDEX",
    "RING_SLOTS",
    "BatchRing",
    "ClipLoader",
    "ClipStream",
    "CorruptShardError",
    "ShardIndex",
    "ShardSpec",
    "augment_device",
    "encode_clip_sample",
    "eval_loader",
    "frame_jpegs",
    "iter_shard",
    "keep_frames",
    "one_size",
    "repeat_factors",
    "resize_short_side",
    "tar_members",
    "train_loader",
    "write_shards",
]
