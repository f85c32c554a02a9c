"""Tiny DFEW / AFEW trees written by the data tests (frames encode their index as brightness)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIDE = 24  # frame side in pixels: tiny, fast


def frame_image(i: int, label: int = 0, side: int = SIDE) -> np.ndarray:
    """A frame whose brightness encodes its index i (8·i + 16) and whose hue encodes the label."""
    image = np.full((side, side, 3), 16 + 8 * i, dtype=np.uint8)
    image[: side // 4, : side // 4] = (40 * label) % 256
    return image


def frame_value(image: np.ndarray) -> int:
    """Inverse of :func:`frame_image` on the frame's centre (robust to JPEG and resizing)."""
    h, w = image.shape[:2]
    return int(round((float(image[h // 2 :, w // 2 :].mean()) - 16) / 8))


def write_frames(folder: Path, n: int, label: int = 0, pattern: str = "{clip}_{frame:05d}") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = pattern.format(clip=folder.name, frame=i + 1) + ".jpg"
        cv2.imwrite(str(folder / name), frame_image(i, label))


def make_dfew(
    root: Path,
    clips: dict[int, tuple[int, int]],
    test_sets: dict[int, int],
    *,
    spelling: str = "-",
    frames: str = "clip_224x224",
    pattern: str = "{clip}_{frame:05d}",
    extra_rows: dict[str, list[tuple[str, str]]] | None = None,
) -> Path:
    """A DFEW tree: clips {video: (csv label 1..7, n frames)}, test_sets {video: set k}.

    Train CSV k lists every clip whose test set is not k. ``extra_rows`` appends raw
    (video_name, label) rows to a CSV named like ``test/set_1``.
    """
    for video, (label, n) in clips.items():
        if n > 0:
            write_frames(root / "Clip" / frames / f"{video:05d}", n, max(0, label - 1), pattern)
    (root / "Clip" / frames).mkdir(parents=True, exist_ok=True)
    sets = sorted(set(test_sets.values()))
    for split in ("train", "test"):
        folder = root / "EmoLabel_DataSplit" / f"{split}(single{spelling}labeled)"
        folder.mkdir(parents=True, exist_ok=True)
        for k in sets:
            rows = [
                (str(v), str(clips[v][0]))
                for v in sorted(clips)
                if (test_sets[v] == k) == (split == "test")
            ]
            rows += (extra_rows or {}).get(f"{split}/set_{k}", [])
            text = "video_name,label\n" + "".join(f"{a},{b}\n" for a, b in rows)
            (folder / f"set_{k}.csv").write_text(text)
    return root


def write_avi(path: Path, n: int, label: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIDE, SIDE))
    for i in range(n):
        writer.write(frame_image(i, label))
    writer.release()


def make_afew(root: Path, clips: dict[tuple[str, str, str], int], *, video: bool) -> Path:
    """An AFEW tree: clips {(split folder, emotion folder, id): n frames}, .avi or frame folders."""
    for (split, emotion, clip), n in clips.items():
        folder = root / split / emotion
        if video:
            write_avi(folder / f"{clip}.avi", n)
        else:
            write_frames(folder / clip, n, pattern="{frame:05d}")
    return root


def make_ferv39k(
    root: Path,
    clips: dict[str, int],
    rows: dict[str, list[str]],
    *,
    nested: bool = False,
) -> Path:
    """A FERV39k tree: clips {"Scene/Emotion/clip": n frames (0 = no folder)} as zero-padded
    frame folders, and the split files' raw rows {"train": [...], "test": [...]}."""
    base = root / "2_ClipsforFaceCrop"
    if nested:
        base = base / "2_ClipsforFaceCrop"
    base.mkdir(parents=True, exist_ok=True)
    for i, (path, n) in enumerate(clips.items()):
        if n > 0:
            write_frames(base / path, n, label=i % 7, pattern="{frame:04d}")
    setups = root / "4_setups" / "All_scenes"
    setups.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (setups / f"{split}_All.csv").write_text("".join(f"{line}\n" for line in lines))
    return root


def make_mafw(
    root: Path,
    clips: dict[str, int],
    folds: dict[int, dict[str, list[str]]],
    *,
    split_parent: str = "Train & Test Set",
) -> Path:
    """A MAFW tree: clips {"00025": n frames (0 = no folder)} under data/frames/, and per fold k
    the raw rows of set_k/train.txt and set_k/test.txt ({k: {"train": [...], "test": [...]}})."""
    for i, (clip, n) in enumerate(clips.items()):
        if n > 0:
            write_frames(root / "data" / "frames" / clip, n, label=i % 7, pattern="{frame:05d}")
    (root / "data" / "frames").mkdir(parents=True, exist_ok=True)
    for k, parts in folds.items():
        folder = root / split_parent / "single" / "no_caption" / f"set_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for part, lines in parts.items():
            (folder / f"{part}.txt").write_text("".join(f"{line}\n" for line in lines))
    return root
