"""Ingest: a DFEW, AFEW, FERV39k or MAFW tree (or the generated demo set) -> one manifest table.

One row per clip (see ``docs/data.md``): ``clip_id``, ``dataset``, ``source`` (path relative to
the data root, so the manifest does not depend on where the data lives), ``source_kind``
(``frames`` folder or ``video`` file), ``label`` (index in the data set's class set,
:mod:`nrdfer.labels`; ``-1`` when invalid), ``label_name``, ``n_frames`` (readable frames
counted on disk), ``bad_frames``, ``partition`` (the DFEW/MAFW test set ``set_k`` the clip
belongs to, AFEW ``train``/``val``, FERV39k ``train``/``test``), ``train_sets`` (DFEW/MAFW:
comma-separated folds whose official train list names the clip),
``status`` (``ok`` or the reason the clip is left out) and ``detail``.

Nothing is dropped silently: every CSV row and every clip on disk becomes a row; a bad one
gets a status other than ``ok`` and the summary line counts it. Layouts: see docs/data.md.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from nrdfer.data.frames import (
    VIDEO_SUFFIXES,
    count_video_frames,
    decode_image,
    list_frames,
)
from nrdfer.errors import UserError
from nrdfer.io import atomic_path
from nrdfer.labels import (
    AFEW,
    AFEW_FOLDERS,
    DFEW,
    FERV39K,
    MAFW,
    ClassSet,
    dfew_label_to_index,
)

COLUMNS = (
    "clip_id",
    "dataset",
    "source",
    "source_kind",
    "label",
    "label_name",
    "n_frames",
    "bad_frames",
    "partition",
    "train_sets",
    "status",
    "detail",
)

_INT_COLUMNS = ("label", "n_frames", "bad_frames")

OK = "ok"
STATUSES = {
    OK: "usable",
    "bad_row": "a split-file row that cannot be read (DFEW: video_name or label not an "
    "integer; FERV39k/MAFW: not '<clip> <label>', or a clip path outside the clip folder)",
    "bad_label": "label outside 1..7 (DFEW), an unknown emotion folder (AFEW) or an unknown "
    "label word (FERV39k, MAFW)",
    "label_conflict": "two split-file rows give the clip different labels",
    "path_label_conflict": "the emotion folder in the clip's path disagrees with the label "
    "column (FERV39k)",
    "duplicate_row": "one split file lists the clip more than once (FERV39k, MAFW)",
    "no_test_set": "only train lists name the clip, no test list (MAFW)",
    "duplicate_test": "the clip id appears in two test folds",
    "train_test_overlap": "the clip is in the train and the test CSV of the same fold",
    "duplicate_id": "two clips on disk map onto the same clip id",
    "missing": "the split file names a clip that is not on disk",
    "unreadable": "no readable frame (corrupt images or video)",
    "too_short": "fewer readable frames than ingest.min_frames",
}
"""Status -> meaning. Only ``ok`` clips go into folds and shards."""

DFEW_FRAME_SOURCES = ("clip_224x224", "clip_224x224_16f", "original")
AFEW_SPLITS = {"train_afew": "train", "val_afew": "val"}
KINDS = ("dfew", "afew", "ferv39k", "mafw")
FERV39K_CLIPS = "2_ClipsforFaceCrop"
FERV39K_SPLITS = {"train": "train_All.csv", "test": "test_All.csv"}  # under 4_setups/All_scenes
MAFW_SOURCES = ("frames", "clips", "root")
"""Where MAFW clips are read: ``data/frames/<clip>/`` frame folders; ``data/clips/`` videos
(``<clip>.mp4``) or frame folders; or folders / videos directly under the root."""
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


def _require_dir(path: Path, what: str, hint: str) -> None:
    if not path.is_dir():
        raise UserError(f"{path}: {what} not found. {hint}")


def _count_frames(path: Path, verify: bool) -> tuple[int, int, str]:
    """(readable frames, unreadable frames, detail) of a frames folder or a video file."""
    if path.is_dir():
        files = list_frames(path)
        if verify:
            bad = [f.name for f in files if decode_image(f) is None]
        else:  # cheap check: the first and the last frame decode
            ends = files[:1] + files[-1:] if len(files) > 1 else files
            bad = [f.name for f in ends if decode_image(f) is None]
        detail = f"unreadable frames: {', '.join(bad[:5])}" if bad else ""
        if len(bad) > 5:
            detail += f" (+{len(bad) - 5} more)"
        return len(files) - len(bad), len(bad), detail
    try:
        return count_video_frames(path, decode=verify), 0, ""
    except ValueError as exc:
        return 0, 1, str(exc)


def _disk_status(n: int, bad: int, min_frames: int, detail: str) -> tuple[str, str]:
    if n == 0:
        return "unreadable", detail or "no frames"
    if n < min_frames:
        return "too_short", f"{n} readable frames < min_frames={min_frames}"
    return OK, detail


def _on_disk(
    path: Path, root: Path, status: str, detail: str, min_frames: int, verify: bool
) -> tuple[str, int, int, str, str]:
    """(source relative to root, frames, bad frames, status, detail) of a clip at ``path``;
    a status other than ``ok`` from the split files is kept."""
    source, n, bad = path.relative_to(root).as_posix(), 0, 0
    if not path.exists():
        if status == OK:
            status, detail = "missing", f"{source} not found"
    else:
        n, bad, frame_detail = _count_frames(path, verify)
        if status == OK:
            status, detail = _disk_status(n, bad, min_frames, frame_detail)
    return source, n, bad, status, detail


def _video_file(folder: Path, stem: str) -> Path:
    """``folder/stem`` with the first video suffix present on disk (``.mp4`` if none is)."""
    return next(
        (folder / f"{stem}{s}" for s in VIDEO_SUFFIXES if (folder / f"{stem}{s}").is_file()),
        folder / f"{stem}.mp4",
    )


@dataclass
class _DfewClip:
    raw_id: str
    video: int | None = None
    labels: set[int] = field(default_factory=set)
    raw_labels: set[str] = field(default_factory=set)
    test_sets: set[int] = field(default_factory=set)
    train_sets: set[int] = field(default_factory=set)
    bad_row: str = ""


def _dfew_split_dir(base: Path, split: str) -> Path:
    for sep in ("-", "_"):
        candidate = base / f"{split}(single{sep}labeled)"
        if candidate.is_dir():
            return candidate
    raise UserError(
        f"{base}: neither '{split}(single-labeled)' nor '{split}(single_labeled)' found. "
        "Point the ingest root at the unpacked DFEW folder (it holds EmoLabel_DataSplit/)."
    )


def _read_split_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}). Restore it from DFEW.") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in ("video_name", "label") if c not in table.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(table.columns) or 'none'}). DFEW split CSVs have 'video_name,label'."
        )
    return table


def _set_number(path: Path) -> int:
    match = re.fullmatch(r"set_(\d+)", path.stem)
    if match is None:
        raise UserError(f"{path}: expected split files named set_1.csv ... set_5.csv")
    return int(match.group(1))


def _read_dfew_splits(splits: Path) -> dict[str, _DfewClip]:
    """Every clip the five train/test split CSVs name: clip id -> the sets it is in, its
    labels, and the first malformed row naming it."""
    clips: dict[str, _DfewClip] = {}
    for split in ("train", "test"):
        csvs = sorted(_dfew_split_dir(splits, split).glob("set_*.csv"), key=_set_number)
        if split == "test" and not csvs:
            raise UserError(f"{splits}: no test set_*.csv files found")
        for csv in csvs:
            k = _set_number(csv)
            for row in _read_split_csv(csv).itertuples(index=False):
                raw_id, raw_label = str(row.video_name).strip(), str(row.label).strip()
                try:
                    video = int(raw_id)
                    clip_id = f"{video:05d}"
                except ValueError:
                    video, clip_id = None, _SAFE_ID.sub("_", raw_id) or "empty"
                clip = clips.setdefault(clip_id, _DfewClip(raw_id=raw_id, video=video))
                (clip.test_sets if split == "test" else clip.train_sets).add(k)
                clip.raw_labels.add(raw_label)
                if video is None:
                    clip.bad_row = f"{csv.name}: video_name {raw_id!r} is not an integer"
                try:
                    clip.labels.add(int(raw_label))
                except ValueError:
                    clip.bad_row = f"{csv.name}: label {raw_label!r} is not an integer"
    return clips


def _dfew_status(clip: _DfewClip) -> tuple[str, str, int]:
    """(status, detail, label index) of a clip from what the split CSVs say about it: a
    malformed row, conflicting labels, two test sets, or train and test of one set."""
    status, detail, label = OK, "", -1
    if len(clip.labels) == 1:
        try:
            label = dfew_label_to_index(next(iter(clip.labels)))
        except ValueError as exc:
            status, detail = "bad_label", str(exc)
    if clip.bad_row:
        status, detail = "bad_row", clip.bad_row
    elif status == OK and len(clip.labels) > 1:
        status = "label_conflict"
        detail = f"labels {sorted(clip.labels)} in different CSVs"
    elif status == OK and len(clip.test_sets) > 1:
        status = "duplicate_test"
        detail = f"in test sets {sorted(clip.test_sets)}"
    elif status == OK and clip.test_sets & clip.train_sets:
        status = "train_test_overlap"
        detail = f"in train and test of set(s) {sorted(clip.test_sets & clip.train_sets)}"
    return status, detail, label


def ingest_dfew(
    root: str | Path, frames: str, min_frames: int, verify: bool, progress: bool = True
) -> pd.DataFrame:
    """Read a DFEW tree into a manifest.

    Args:
        root: the unpacked DFEW folder (holding ``Clip/`` and ``EmoLabel_DataSplit/``).
        frames: frame source: ``clip_224x224``, ``clip_224x224_16f`` or ``original`` (mp4).
        min_frames: clips with fewer readable frames get status ``too_short``.
        verify: decode every frame (exact counts, catches corrupt frames) instead of the ends.
        progress: show a progress bar.

    Returns:
        The manifest (columns :data:`COLUMNS`), sorted by clip id.
    """
    root = Path(root)
    if frames not in DFEW_FRAME_SOURCES:
        raise UserError(f"ingest.dfew_frames={frames!r}: use one of {DFEW_FRAME_SOURCES}")
    _require_dir(root, "DFEW root", "Pass the folder where DFEW was unpacked.")
    splits = root / "EmoLabel_DataSplit"
    _require_dir(splits, "EmoLabel_DataSplit/", "This does not look like a DFEW tree.")
    clip_dir = root / "Clip" / frames
    _require_dir(clip_dir, f"frame source Clip/{frames}/", "Set ingest.dfew_frames to one present.")

    clips = _read_dfew_splits(splits)
    rows = []
    for clip_id in tqdm(sorted(clips), desc="ingest dfew", disable=not progress, unit="clip"):
        clip = clips[clip_id]
        status, detail, label = _dfew_status(clip)
        source, kind, n, bad = "", "frames", 0, 0
        if clip.video is not None:
            if frames == "original":
                path = _video_file(clip_dir, clip_id)
                kind = "video"
            else:
                path = clip_dir / clip_id
            source, n, bad, status, detail = _on_disk(
                path, root, status, detail, min_frames, verify
            )
        rows.append(
            {
                "clip_id": clip_id,
                "dataset": "dfew",
                "source": source,
                "source_kind": kind,
                "label": label,
                "label_name": DFEW.classes[label] if label >= 0 else "",
                "n_frames": n,
                "bad_frames": bad,
                "partition": f"set_{next(iter(clip.test_sets))}"
                if len(clip.test_sets) == 1
                else "",
                "train_sets": ",".join(str(k) for k in sorted(clip.train_sets)),
                "status": status,
                "detail": detail,
            }
        )
    return _frame(rows)


def _afew_entries(split_dir: Path) -> Iterable[tuple[Path, Path]]:
    for emotion_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        for entry in sorted(emotion_dir.iterdir()):
            if entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES:
                yield emotion_dir, entry


def ingest_afew(
    root: str | Path, min_frames: int, verify: bool, progress: bool = True
) -> pd.DataFrame:
    """Read an AFEW tree into a manifest.

    Accepts the raw layout (``{Train_AFEW,Val_AFEW}/<Emotion>/<id>.avi``) and the preprocessed
    one written by the detect_align/enhance stages (``.../<Emotion>/<id>/00001.jpg ...``),
    even mixed. Emotion folders map onto the DFEW class order; an unknown folder name gives
    status ``bad_label``.

    Args:
        root: folder holding ``Train_AFEW/`` and/or ``Val_AFEW/``.
        min_frames: clips with fewer readable frames get status ``too_short``.
        verify: decode every frame (exact counts) instead of the ends / video header.
        progress: show a progress bar.

    Returns:
        The manifest (columns :data:`COLUMNS`), sorted by clip id.
    """
    root = Path(root)
    _require_dir(root, "AFEW root", "Pass the folder holding Train_AFEW/ and Val_AFEW/.")
    split_dirs = {
        AFEW_SPLITS[p.name.lower()]: p
        for p in root.iterdir()
        if p.is_dir() and p.name.lower() in AFEW_SPLITS
    }
    if not split_dirs:
        raise UserError(f"{root}: no Train_AFEW/ or Val_AFEW/ folder. Is this an AFEW tree?")
    folder_to_label = {name.lower(): idx for name, idx in AFEW_FOLDERS.items()}
    entries = [
        (split, emotion_dir, entry)
        for split, split_dir in sorted(split_dirs.items())
        for emotion_dir, entry in _afew_entries(split_dir)
    ]
    id_counts = Counter(f"{split}_{_SAFE_ID.sub('_', e.stem)}" for split, _, e in entries)
    rows = []
    for split, emotion_dir, entry in tqdm(
        entries, desc="ingest afew", disable=not progress, unit="clip"
    ):
        clip_id = f"{split}_{_SAFE_ID.sub('_', entry.stem)}"
        label = folder_to_label.get(emotion_dir.name.lower(), -1)
        n, bad, frame_detail = _count_frames(entry, verify)
        if label < 0:
            status, detail = "bad_label", f"unknown emotion folder {emotion_dir.name!r}"
        elif id_counts[clip_id] > 1:
            status, detail = "duplicate_id", f"{id_counts[clip_id]} clips named {entry.stem!r}"
        else:
            status, detail = _disk_status(n, bad, min_frames, frame_detail)
        rows.append(
            {
                "clip_id": clip_id,
                "dataset": "afew",
                "source": entry.relative_to(root).as_posix(),
                "source_kind": "frames" if entry.is_dir() else "video",
                "label": label,
                "label_name": AFEW.classes[label] if label >= 0 else "",
                "n_frames": n,
                "bad_frames": bad,
                "partition": split,
                "train_sets": "",
                "status": status,
                "detail": detail,
            }
        )
    return _frame(rows)


@dataclass
class _Listed:
    """A clip as the split files of FERV39k or MAFW list it."""

    name: str  # as written in the split file (FERV39k: Scene/Emotion/clip; MAFW: 00025.mp4)
    labels: set[int] = field(default_factory=set)
    test_sets: set[int] = field(default_factory=set)
    train_sets: set[int] = field(default_factory=set)
    rows: Counter = field(default_factory=Counter)  # split file name -> rows naming the clip
    problem: tuple[str, str] | None = None  # (status, detail) found while reading the rows


def _read_list(path: Path) -> list[tuple[int, str, str]]:
    """(line number, clip, label) of a space-delimited split file without header.

    The label is the last field, the clip everything before it; a line with one field gives
    an empty label (reported as ``bad_row``). Blank lines are skipped.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable split file ({exc}). Restore it.") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.strip().rsplit(None, 1)
        if not fields:
            continue
        rows.append((number, fields[0], fields[1] if len(fields) == 2 else ""))
    return rows


def _add_row(
    clips: dict[str, _Listed],
    clip_id: str,
    name: str,
    label: str,
    where: str,
    classes: ClassSet,
    *,
    test_set: int | None = None,
    train_set: int | None = None,
) -> _Listed:
    """Record one split-file row (``where`` = ``file:line``) naming ``clip_id``."""
    clip = clips.setdefault(clip_id, _Listed(name=name))
    clip.rows[where.split(":")[0]] += 1
    if test_set is not None:
        clip.test_sets.add(test_set)
    if train_set is not None:
        clip.train_sets.add(train_set)
    if not label:
        clip.problem = clip.problem or ("bad_row", f"{where}: no label after {name!r}")
        return clip
    try:
        clip.labels.add(classes.index_of(label))
    except ValueError as exc:
        clip.problem = clip.problem or ("bad_label", f"{where}: {exc}")
    return clip


def _listed_status(clip: _Listed) -> tuple[str, str]:
    """Status from the split files alone (before the disk is looked at)."""
    if clip.problem:
        return clip.problem
    if len(clip.labels) > 1:
        return "label_conflict", f"labels {sorted(clip.labels)} in different rows"
    repeated = sorted(f for f, n in clip.rows.items() if n > 1)
    if repeated:
        return "duplicate_row", f"listed {clip.rows[repeated[0]]} times in {repeated[0]}"
    if len(clip.test_sets) > 1:
        return "duplicate_test", f"in test sets {sorted(clip.test_sets)}"
    if clip.test_sets & clip.train_sets:
        return (
            "train_test_overlap",
            f"in train and test of {sorted(clip.test_sets & clip.train_sets)}",
        )
    return OK, ""


def _listed_row(
    dataset: str,
    clip_id: str,
    clip: _Listed,
    classes: ClassSet,
    root: Path,
    path: Path | None,
    partition: str,
    min_frames: int,
    verify: bool,
) -> dict:
    """A manifest row for a listed clip at ``path`` (None: no path could be formed)."""
    status, detail = _listed_status(clip)
    label = next(iter(clip.labels)) if len(clip.labels) == 1 else -1
    source, kind, n, bad = "", "frames", 0, 0
    if path is not None:
        kind = "frames" if path.is_dir() or path.suffix.lower() not in VIDEO_SUFFIXES else "video"
        source, n, bad, status, detail = _on_disk(path, root, status, detail, min_frames, verify)
    if status in ("bad_label", "bad_row", "label_conflict", "path_label_conflict"):
        label = -1  # no single trustworthy label
    return {
        "clip_id": clip_id,
        "dataset": dataset,
        "source": source,
        "source_kind": kind,
        "label": label,
        "label_name": classes.classes[label] if label >= 0 else "",
        "n_frames": n,
        "bad_frames": bad,
        "partition": partition,
        "train_sets": ",".join(str(k) for k in sorted(clip.train_sets)),
        "status": status,
        "detail": detail,
    }


def _ferv39k_clip_dir(root: Path) -> Path:
    clip_dir = root / FERV39K_CLIPS
    _require_dir(clip_dir, f"{FERV39K_CLIPS}/", "Point the ingest root at the unpacked FERV39k.")
    nested = clip_dir / FERV39K_CLIPS  # some archives unpack into the folder twice
    return nested if nested.is_dir() else clip_dir


def ingest_ferv39k(
    root: str | Path, min_frames: int, verify: bool, progress: bool = True
) -> pd.DataFrame:
    """Read a FERV39k tree into a manifest.

    Reads ``4_setups/All_scenes/train_All.csv`` and ``test_All.csv`` (space-delimited, no
    header, rows like ``Action/Sad/0010 Sad``) and the face-crop frame folders
    ``2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip>/``. Clip numbers repeat across scenes and
    emotions, so a clip is its relative path; its id is that path with ``/`` as ``_``
    (``Action_Sad_0010``). The emotion folder of the path must agree with the label column
    (else ``path_label_conflict``).

    Args:
        root: the unpacked FERV39k folder (holding ``2_ClipsforFaceCrop/`` and ``4_setups/``).
        min_frames: clips with fewer readable frames get status ``too_short``.
        verify: decode every frame (exact counts, catches corrupt frames) instead of the ends.
        progress: show a progress bar.

    Returns:
        The manifest (columns :data:`COLUMNS`), sorted by clip id; partition ``train``/``test``.
    """
    root = Path(root)
    _require_dir(root, "FERV39k root", "Pass the folder where FERV39k was unpacked.")
    setups = root / "4_setups" / "All_scenes"
    _require_dir(setups, "4_setups/All_scenes/", "This does not look like a FERV39k tree.")
    clip_dir = _ferv39k_clip_dir(root)
    clips: dict[str, _Listed] = {}
    split_of: dict[str, set[str]] = defaultdict(set)
    for split, file_name in FERV39K_SPLITS.items():
        path = setups / file_name
        if not path.is_file():
            raise UserError(f"{path}: split file not found. Restore it from FERV39k.")
        for number, raw, label in _read_list(path):
            name = raw.strip("/")  # the path relative to the clip folder
            clip_id = _SAFE_ID.sub("_", name) or "empty"
            clip = _add_row(clips, clip_id, name, label, f"{file_name}:{number}", FERV39K)
            split_of[clip_id].add(split)
            if clip.name != name:
                clip.problem = clip.problem or (
                    "duplicate_id",
                    f"{file_name}:{number}: {name!r} and {clip.name!r} share the id",
                )
            parts = name.split("/")
            if len(parts) != 3 or any(p in ("", ".", "..") for p in parts):
                clip.problem = clip.problem or (
                    "bad_row",
                    f"{file_name}:{number}: {name!r} is not <Scene>/<Emotion>/<clip>",
                )
            elif clip.problem is None:  # the label column's word is known: compare
                try:
                    in_path = FERV39K.index_of(parts[1])
                except ValueError:
                    in_path = -1
                if in_path != FERV39K.index_of(label):
                    clip.problem = (
                        "path_label_conflict",
                        f"{file_name}:{number}: path says {parts[1]!r}, label column {label!r}",
                    )
    rows = []
    for clip_id in tqdm(sorted(clips), desc="ingest ferv39k", disable=not progress, unit="clip"):
        clip = clips[clip_id]
        splits = split_of[clip_id]
        if len(splits) > 1 and clip.problem is None:
            clip.problem = ("train_test_overlap", "listed in train_All.csv and test_All.csv")
        ok_path = clip.problem is None or clip.problem[0] not in ("bad_row", "duplicate_id")
        path = clip_dir / clip.name if ok_path else None
        partition = next(iter(splits)) if len(splits) == 1 else ""
        rows.append(
            _listed_row(
                "ferv39k", clip_id, clip, FERV39K, root, path, partition, min_frames, verify
            )
        )
    return _frame(rows)


def _mafw_split_dir(root: Path) -> Path:
    found = [root / "single" / "no_caption", *root.glob("*/single/no_caption")]
    found = sorted(p for p in found if p.is_dir())
    if not found:
        raise UserError(
            f"{root}: no single/no_caption/ split folder (looked in the root and one level "
            "below, e.g. 'Train & Test Set/single/no_caption'). Point the ingest root at the "
            "unpacked MAFW folder."
        )
    if len(found) > 1:
        raise UserError(
            f"{root}: {len(found)} single/no_caption/ split folders "
            f"({', '.join(p.relative_to(root).as_posix() for p in found)}); keep one"
        )
    return found[0]


def _mafw_source(root: Path, source: str) -> Path:
    if source == "root":
        return root
    for base in (root / "data" / source, root / source):
        if base.is_dir():
            return base
    raise UserError(
        f"{root}: neither data/{source}/ nor {source}/ found. Set ingest.mafw_frames to the "
        f"one present ({', '.join(MAFW_SOURCES)})."
    )


def ingest_mafw(
    root: str | Path,
    source: str,
    min_frames: int,
    verify: bool,
    progress: bool = True,
    splits_root: str | Path | None = None,
) -> pd.DataFrame:
    """Read a MAFW tree (single-expression set) into a manifest.

    Reads the five folds ``.../single/no_caption/set_{1..5}/{train,test}.txt`` (rows like
    ``00025.mp4 anger``) and the clips from ``data/frames/<clip>/`` (``source="frames"``) or
    ``data/clips/`` (``source="clips"``: ``<clip>.mp4``, or a ``<clip>/`` frame folder as the
    detect_align stage writes when run over the MAFW tree), or directly under ``root``
    (``source="root"``: e.g. a folder of face-crop folders, with ``splits_root`` the MAFW
    tree). Compound (multi-expression) labels are not read.

    Args:
        root: the unpacked MAFW folder.
        source: ``frames``, ``clips`` or ``root`` (see :data:`MAFW_SOURCES`).
        min_frames: clips with fewer readable frames get status ``too_short``.
        verify: decode every frame (exact counts, catches corrupt frames) instead of the ends.
        progress: show a progress bar.
        splits_root: where the split files are, when ``root`` is a tree of face frames written
            from MAFW's clips (default: ``root``).

    Returns:
        The manifest (columns :data:`COLUMNS`), sorted by clip id; partition = the test set;
        ``source`` relative to ``root``.
    """
    root = Path(root)
    if source not in MAFW_SOURCES:
        raise UserError(f"ingest.mafw_frames={source!r}: use one of {MAFW_SOURCES}")
    _require_dir(root, "MAFW root", "Pass the folder where MAFW was unpacked.")
    if splits_root is not None:
        _require_dir(Path(splits_root), "MAFW split root", "Pass the unpacked MAFW folder.")
    splits = _mafw_split_dir(Path(splits_root) if splits_root is not None else root)
    data = _mafw_source(root, source)
    sets = sorted(
        (int(m.group(1)), p)
        for p in splits.iterdir()
        if p.is_dir() and (m := re.fullmatch(r"set_(\d+)", p.name))
    )
    if not sets:
        raise UserError(f"{splits}: no set_1 ... set_5 folders")
    clips: dict[str, _Listed] = {}
    for k, folder in sets:
        for part in ("train", "test"):
            path = folder / f"{part}.txt"
            if not path.is_file():
                raise UserError(f"{path}: split file not found. Restore it from MAFW.")
            for number, name, label in _read_list(path):
                stem = Path(name).stem if Path(name).suffix.lower() in VIDEO_SUFFIXES else name
                clip_id = _SAFE_ID.sub("_", stem) or "empty"
                where = f"set_{k}/{part}.txt:{number}"
                sets_kw = {"test_set": k} if part == "test" else {"train_set": k}
                clip = _add_row(clips, clip_id, stem, label, where, MAFW, **sets_kw)
                if "/" in stem or stem in ("", ".", ".."):
                    clip.problem = clip.problem or ("bad_row", f"{where}: {name!r} is no clip")
    rows = []
    for clip_id in tqdm(sorted(clips), desc="ingest mafw", disable=not progress, unit="clip"):
        clip = clips[clip_id]
        if not clip.test_sets and clip.problem is None:
            sets = ", ".join(f"set_{k}" for k in sorted(clip.train_sets))
            clip.problem = ("no_test_set", f"in the train lists of {sets} only")
        path = None
        if clip.problem is None or clip.problem[0] != "bad_row":
            path = data / clip.name
            if source != "frames" and not path.is_dir():
                path = _video_file(data, clip.name)
        partition = f"set_{next(iter(clip.test_sets))}" if len(clip.test_sets) == 1 else ""
        rows.append(
            _listed_row("mafw", clip_id, clip, MAFW, root, path, partition, min_frames, verify)
        )
    return _frame(rows)


def _frame(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table = table.astype(dict.fromkeys(_INT_COLUMNS, "int64"))
    return table.sort_values(["clip_id", "source"], kind="stable").reset_index(drop=True)


def ingest(
    kind: str,
    root: str | Path,
    *,
    dfew_frames: str,
    min_frames: int,
    verify: bool,
    mafw_frames: str = "frames",
    splits_root: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Ingest a ``dfew``, ``afew``, ``ferv39k`` or ``mafw`` tree (see :func:`ingest_dfew`,
    :func:`ingest_afew`, :func:`ingest_ferv39k`, :func:`ingest_mafw`); ``splits_root`` is
    MAFW's only."""
    if splits_root is not None and kind != "mafw":
        raise UserError(f"a separate split-file root is read for mafw only, not {kind}")
    if kind == "dfew":
        return ingest_dfew(root, dfew_frames, min_frames, verify, progress)
    if kind == "afew":
        return ingest_afew(root, min_frames, verify, progress)
    if kind == "ferv39k":
        return ingest_ferv39k(root, min_frames, verify, progress)
    if kind == "mafw":
        return ingest_mafw(root, mafw_frames, min_frames, verify, progress, splits_root)
    raise UserError(f"unknown dataset kind {kind!r}: use {', '.join(KINDS)}")


def summarize(table: pd.DataFrame, pad_to: int | None = None) -> str:
    """One line: clips seen, usable, and the count per reason for the rest."""
    counts = table["status"].value_counts()
    ok = int(counts.get(OK, 0))
    parts = [f"{len(table)} clips, {ok} ok"]
    parts += [f"{int(c)} {s}" for s, c in sorted(counts.items()) if s != OK]
    if pad_to is not None:
        short = int(((table["status"] == OK) & (table["n_frames"] < pad_to)).sum())
        parts.append(f"{short} shorter than {pad_to} frames (padded by repeating the last)")
    return ", ".join(parts)


def describe_left_out(table: pd.DataFrame, limit: int = 10) -> list[str]:
    """One line per clip that is left out (status not ``ok``): clip id, file, status, detail.

    At most ``limit`` lines, then a count of the rest; empty when every clip is usable.
    """
    bad = table[table["status"] != OK]
    lines = []
    for row in bad.head(limit).itertuples(index=False):
        where = f" ({row.source})" if row.source else ""
        lines.append(
            f"  {row.clip_id}{where}: {row.status}: {row.detail or STATUSES.get(row.status, '')}"
        )
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return lines


def write_manifest(table: pd.DataFrame, path: str | Path) -> None:
    """Write the manifest atomically: parquet for ``.parquet``, else CSV."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`; a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found. Run the ingest stage first.")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            text_columns = {c: str for c in COLUMNS if c not in _INT_COLUMNS}
            table = pd.read_csv(path, dtype=text_columns, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the manifest ({exc}). Re-run ingest.") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: not a manifest (missing {', '.join(missing)}). Re-run ingest.")
    return table
