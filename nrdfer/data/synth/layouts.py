"""Writing generated clips in the exact on-disk layouts of DFEW, AFEW, FERV39k and MAFW.

See docs/data.md (the real layouts) and docs/demo-data.md:

- DFEW: ``Clip/clip_224x224/<5-digit id>/<frames>.jpg`` (face-centred crops),
  ``Clip/original/<id>.mp4`` and ``EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv``
  (``video_name,label`` with unpadded ids and labels 1..7) with five disjoint test sets.
- AFEW: ``{Train_AFEW,Val_AFEW}/<Emotion>/<9-digit id>.avi``: whole scenes with a smaller
  moving face; a share of the clips is dark.
- FERV39k: ``2_ClipsforFaceCrop/<Scene>/<Emotion>/<4-digit clip>/<4-digit frame>.jpg`` face
  crops and ``4_setups/All_scenes/{train,test}_All.csv`` (``Scene/Emotion/clip Emotion``).
- MAFW: ``data/clips/<5-digit clip>.mp4`` and ``data/frames/<clip>/<5-digit frame>.jpg``
  (whole scenes) and ``Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt``.

Every clip is rendered from its own seed ``(seed, layout, index)``, so the output does not
depend on how many worker processes render it. With ``synth.test_noise`` every clip's noise
(which clips and frames get N1/N2 and what they show) comes from a second seed
``(seed, layout, index, 1)``, so the people, expressions, motion and lighting of a clip do not
depend on its noise settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nrdfer.data.synth.expressions import EXPRESSIONS
from nrdfer.data.synth.noise import plan_n1, plan_n2
from nrdfer.data.synth.scene import ClipSpec, render_clip
from nrdfer.errors import UserError
from nrdfer.labels import CLASSES, class_set

DFEW_FOLDS = 5  # DFEW ships five official folds (set_1 .. set_5); so does MAFW
LAYOUT_CODES = {"dfew": 0, "afew": 1, "ferv39k": 2, "mafw": 3}  # part of each clip's seed
FERV39K_SCENES = ("Action", "Daily", "Interview", "Talkshow")  # Action as in the split example
MAFW_SPLIT_DIR = "Train & Test Set/single/no_caption"
AFEW_SPLITS = ("Train_AFEW", "Val_AFEW")
_CROP_SCALE = 1.35  # DFEW crop side / face box height (face plus a margin of hair and chin)
_CROP_LIFT = 0.08  # crop centre above the face-box centre, as a share of the box height
_AFEW_ID_RANGE = (10_000_000, 999_999_999)  # AFEW ids look like 000046280 (nine digits)


def allocate(
    counts: Mapping[str, int], total: int, what: str, classes: Sequence[str] = CLASSES
) -> list[int]:
    """Class indices for ``total`` clips in proportion to ``counts`` (largest remainder).

    Args:
        counts: class name -> relative frequency, exactly the names of ``classes``.
        total: clips to allocate.
        what: the params key, for the error message.
        classes: the class names in index order (default DFEW's).
    """
    if set(counts) != set(classes) or any(v < 0 for v in counts.values()):
        raise UserError(
            f"params.yaml: synth.{what} must give a non-negative count for each of "
            f"{', '.join(classes)} (got {', '.join(counts)})"
        )
    weights = np.array([counts[c] for c in classes], dtype=np.float64)
    if weights.sum() <= 0:
        raise UserError(f"params.yaml: synth.{what}: counts must not all be zero")
    exact = weights / weights.sum() * total
    n = np.floor(exact).astype(int)
    order = np.argsort(-(exact - n), kind="stable")
    n[order[: total - n.sum()]] += 1
    return [c for c, k in enumerate(n) for _ in range(k)]


def stratified_folds(
    labels: Sequence[int], k: int, rng: np.random.Generator, num_classes: int = len(CLASSES)
) -> np.ndarray:
    """A test fold (0..k-1) per clip: class-stratified, fold sizes differ by at most one."""
    labels = np.asarray(labels)
    fold = np.empty(len(labels), dtype=int)
    offset = 0
    for c in range(num_classes):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (offset + np.arange(len(idx))) % k
        offset += len(idx)
    return fold


def afew_ids(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct nine-digit AFEW-style clip ids."""
    ids: set[int] = set()
    while len(ids) < n:
        ids.update(int(v) for v in rng.integers(*_AFEW_ID_RANGE, n - len(ids)))
    return [f"{v:09d}" for v in sorted(ids)[:n]]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to render and write one clip (picklable, plain values)."""

    layout: str  # "dfew", "afew", "ferv39k" or "mafw"
    index: int  # clip index within the layout (part of the seed)
    seed: int  # master seed
    root: str  # layout root directory (…/DFEW or …/AFEW)
    name: (
        str  # DFEW: 5-digit id; AFEW: "<split>/<Emotion>/<id>"; FERV39k: "<Scene>/<Emotion>/<clip>"
    )
    label: int  # class index in the layout's class set (nrdfer.labels)
    frames: tuple[int, int]  # frame-count range
    size: tuple[int, int]  # scene size (w, h)
    face_size: tuple[float, float]  # face half-height share range
    intensity: tuple[float, float]
    head_motion: float
    n1_rate: float
    n1_share: tuple[float, float]
    n2_rate: float
    n2_share: tuple[float, float]
    dark_share: float  # AFEW only (0 for DFEW)
    dark_gain: tuple[float, float]
    fps: int
    crop_size: int  # DFEW crop side
    original_size: tuple[int, int]  # DFEW mp4 size
    frame_name: str  # DFEW frame name pattern
    jpeg_quality: int
    thumbs: int  # frames to return for the contact sheet (0 = none)
    noise_stream: bool = False  # draw the noise from its own seed (synth.test_noise)
    expressions: tuple[int, ...] = tuple(range(len(CLASSES)))  # class index -> expression


def _clip_rng(job: Job) -> np.random.Generator:
    return np.random.default_rng([job.seed, LAYOUT_CODES[job.layout], job.index])


def _noise_rng(job: Job) -> np.random.Generator:
    return np.random.default_rng([job.seed, LAYOUT_CODES[job.layout], job.index, 1])


def _spec(job: Job, rng: np.random.Generator, noise: np.random.Generator) -> ClipSpec:
    n = int(rng.integers(job.frames[0], job.frames[1] + 1))
    expression = job.expressions[job.label]
    n1_kind, n1_frames = plan_n1(n, noise, job.n1_rate, job.n1_share)
    n2 = plan_n2(n, expression, noise, job.n2_rate, job.n2_share)
    dark = float(rng.uniform(*job.dark_gain)) if rng.random() < job.dark_share else None
    return ClipSpec(
        label=expression,
        n_frames=n,
        size=job.size,
        face_size=job.face_size,
        position_spread=0.08 if job.layout == "dfew" else 0.22,
        head_motion=job.head_motion,
        intensity=job.intensity,
        n1_kind=n1_kind,
        n1_frames=n1_frames,
        n2_window=n2,
        dark_gain=dark,
        expressions=job.expressions,
    )


def _write_jpegs(folder: Path, frames: np.ndarray, names: Sequence[str], quality: int) -> None:
    """Write RGB frames (T, H, W, 3) as JPEGs ``folder/names[t]``."""
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    for name, frame in zip(names, frames, strict=True):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise OSError(f"could not encode {folder / name}")
        (folder / name).write_bytes(buf.tobytes())


def crop_faces(frames: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """Face-centred square crops (T, side, side, 3) following the face boxes (T, 4)."""
    out = np.empty((len(frames), side, side, 3), np.uint8)
    for f, (frame, (x0, y0, x1, y1)) in enumerate(zip(frames, boxes, strict=True)):
        bh = y1 - y0
        src = _CROP_SCALE * bh
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - _CROP_LIFT * bh
        k = side / src
        m = np.array([[k, 0, side / 2 - k * cx], [0, k, side / 2 - k * cy]])
        out[f] = cv2.warpAffine(
            frame, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    return out


def write_video(path: Path, frames: np.ndarray, fps: int, size: tuple[int, int]) -> None:
    """Encode RGB frames (T, H, W, 3) with PyAV as MPEG-4 Part 2 (tagged XVID in .avi).

    The DFEW originals are H.264 in the real set; libx264's output was not byte-reproducible
    between runs of one seed (tests/reliability/test_determinism.py), so the demo writes the
    same MPEG-4 Part 2 video stream AFEW uses, in an .mp4 container; readers decode both alike.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.thread_count = 1  # single-threaded encoding is bit-for-bit reproducible
        stream.bit_rate = 1_200_000
        if path.suffix == ".avi":
            stream.codec_tag = "XVID"
        for frame in frames:
            if frame.shape[1::-1] != (w, h):
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _thumbs(frames: np.ndarray, k: int) -> np.ndarray:
    idx = np.linspace(0, len(frames) - 1, k).round().astype(int)
    return frames[idx]


def render_job(job: Job) -> dict[str, Any]:
    """Render and write one clip; return its metadata (and thumbnails for the contact sheet)."""
    cv2.setNumThreads(1)
    rng = _clip_rng(job)
    noise = _noise_rng(job) if job.noise_stream else rng
    spec = _spec(job, rng, noise)
    clip = render_clip(spec, rng, noise_rng=noise if job.noise_stream else None)
    root = Path(job.root)
    meta: dict[str, Any] = {
        "label": job.label,
        "class": class_set(job.layout).classes[job.label],
        "frames": spec.n_frames,
        "n1_kind": spec.n1_kind,
        "n1_frames": list(spec.n1_frames),
        "n2_window": list(spec.n2_window) if spec.n2_window else None,
        "dark_gain": spec.dark_gain,
    }
    if job.layout == "mafw":  # MAFW's class names differ from the expressions' names
        meta["expression"] = EXPRESSIONS[job.expressions[job.label]]
    if job.layout == "dfew":
        crops = crop_faces(clip.frames, clip.boxes, job.crop_size)
        names = [job.frame_name.format(clip=int(job.name), frame=f + 1) for f in range(len(crops))]
        _write_jpegs(root / "Clip" / "clip_224x224" / job.name, crops, names, job.jpeg_quality)
        write_video(
            root / "Clip" / "original" / f"{job.name}.mp4",
            clip.frames,
            job.fps,
            job.original_size,
        )
        meta["video_name"] = int(job.name)
        shown = crops
    elif job.layout == "ferv39k":  # face crops, zero-padded frame names
        crops = crop_faces(clip.frames, clip.boxes, job.crop_size)
        names = [f"{f + 1:04d}.jpg" for f in range(len(crops))]
        _write_jpegs(root / "2_ClipsforFaceCrop" / job.name, crops, names, job.jpeg_quality)
        meta["path"] = job.name
        shown = crops
    elif job.layout == "mafw":  # whole scenes: the clip and its extracted frames
        w, h = job.original_size
        scenes = np.stack(
            [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in clip.frames]
        )
        names = [f"{f + 1:05d}.jpg" for f in range(len(scenes))]
        _write_jpegs(root / "data" / "frames" / job.name, scenes, names, job.jpeg_quality)
        write_video(root / "data" / "clips" / f"{job.name}.mp4", scenes, job.fps, (w, h))
        meta["clip"] = job.name
        meta["boxes"] = np.round(clip.boxes * (w / clip.frames.shape[2]), 1).tolist()
        shown = scenes
    else:
        write_video(root / f"{job.name}.avi", clip.frames, job.fps, job.size)
        split, _, vid = job.name.split("/")
        meta.update(split=split, id=vid, path=f"{job.name}.avi")
        meta["boxes"] = np.round(clip.boxes, 1).tolist()
        meta["face_visible"] = clip.visible.tolist()
        meta["mean_luma"] = round(float(clip.frames.mean()), 2)
        shown = clip.frames
    return {
        "layout": job.layout,
        "meta": meta,
        "thumbs": _thumbs(shown, job.thumbs) if job.thumbs else None,
    }


def write_ferv39k_splits(root: Path, rows: Sequence[tuple[str, str]], test: Sequence[bool]) -> None:
    """Write ``4_setups/All_scenes/{train,test}_All.csv``: ``<path> <label word>`` per line,
    space-delimited, no header (FERV39k's format), sorted by path."""
    base = root / "4_setups" / "All_scenes"
    base.mkdir(parents=True, exist_ok=True)
    for part, member in (("train", False), ("test", True)):
        lines = sorted(f"{p} {w}\n" for (p, w), t in zip(rows, test, strict=True) if t == member)
        (base / f"{part}_All.csv").write_text("".join(lines), encoding="utf-8")


def write_mafw_splits(root: Path, rows: Sequence[tuple[str, str]], folds: np.ndarray) -> None:
    """Write ``Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt``:
    ``<clip>.mp4 <label>`` per line; test set k holds the clips of fold k, train k the rest."""
    base = root / MAFW_SPLIT_DIR
    for k in range(DFEW_FOLDS):
        folder = base / f"set_{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        for part, member in (("train", folds != k), ("test", folds == k)):
            lines = sorted(f"{c}.mp4 {w}\n" for (c, w), m in zip(rows, member, strict=True) if m)
            (folder / f"{part}.txt").write_text("".join(lines), encoding="utf-8")


def write_dfew_splits(
    root: Path, ids: Sequence[int], labels: Sequence[int], folds: np.ndarray, spelling: str
) -> None:
    """Write ``EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv``.

    Test set k holds the clips of fold k; train set k all the others (DFEW's protocol).
    """
    sep = "-" if spelling == "hyphen" else "_"
    base = root / "EmoLabel_DataSplit"
    order = np.argsort(ids)
    for k in range(DFEW_FOLDS):
        for part, member in (("train", folds != k), ("test", folds == k)):
            rows = [f"{ids[i]},{labels[i] + 1}" for i in order if member[i]]
            path = base / f"{part}(single{sep}labeled)" / f"set_{k + 1}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("video_name,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
