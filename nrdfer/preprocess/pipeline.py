"""The two preprocessing jobs over a folder tree: detect+align videos, then enhance dark frames.

Both mirror the input's relative layout under the output root (AFEW's
``{Train_AFEW,Val_AFEW}/<Emotion>/<id>.avi`` becomes ``.../<Emotion>/<id>/00001.jpg …``; any raw
video folder works the same way), run in parallel over clips with a progress bar, and are
resumable:

- each clip's frames are written to a hidden temporary folder and renamed into place when
  complete, and its report row is then written to ``<out>/.state/<clip>.json``;
- a re-run skips every clip whose state file records the same job key (a hash of the
  section's output-relevant params and of the input's names, sizes and modification times)
  and, for ``ok``, whose folder exists; so an interrupted run loses at most the clips in
  progress, and a changed parameter or input redoes exactly the clips it affects;
- a clip that fails (an unreadable video) is reported with status ``error`` (its state file
  records it for the report) and retried on the next run; the others finish;
- two videos that would write one clip folder (``clip1.avi`` and ``clip1.mp4`` side by side)
  are both left out and reported ``duplicate_id``, as the AFEW ingest leaves out a pair of
  clips with one id; a video whose clip folder would hold another's (``a/b.avi`` next to
  ``a/b/c.avi``) is reported ``nested_clip`` with that other one (:func:`clip_conflicts`).

The per-clip report CSV is written at the end from all state files, atomically.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing as mp
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nrdfer.errors import UserError
from nrdfer.io import atomic_open, claim_dir, write_json
from nrdfer.params import DetectAlignParams, EnhanceParams, to_dict
from nrdfer.preprocess.track import STATUS_ERROR, STATUS_NO_FACE, STATUS_OK, faces_in_stream
from nrdfer.preprocess.video import (
    VIDEO_EXTS,
    list_frame_dirs,
    list_videos,
    read_frames,
    video_frames,
    write_frames_atomic,
)

STATE_DIR = ".state"
"""Hidden folder under an output root holding one JSON report row per finished clip."""

STATUS_DUPLICATE = "duplicate_id"
"""detect_align: two videos of one folder share a stem; both are left out (as in AFEW ingest)."""

STATUS_NESTED = "nested_clip"
"""detect_align: one video's clip folder would hold another's (``a/b.avi`` and ``a/b/c.avi``)."""

DETECT_COLUMNS = ("clip", "status", "frames", "detected_frames", "max_faces", "reason")
ENHANCE_COLUMNS = (
    "clip",
    "status",
    "frames",
    "enhanced_frames",
    "enhanced",
    "skipped",
    "mean_luma_before",
    "mean_luma_after",
    "reason",
)


@dataclass(frozen=True)
class JobSummary:
    """Counts of one run over a tree."""

    total: int
    processed: int
    skipped: int
    by_status: dict[str, int]
    refused: int = 0


def _state_path(out_root: Path, clip: str) -> Path:
    return out_root / STATE_DIR / f"{clip}.json"


_NOT_OUTPUT_RELEVANT = ("workers", "batch_size")
"""Params that change how fast a job runs, not what it writes (left out of the job key)."""


def job_key(params: Any, source: Path) -> str:
    """Hash of the output-relevant params and the input file(s) (names, sizes, mtimes)."""
    settings = {k: v for k, v in to_dict(params).items() if k not in _NOT_OUTPUT_RELEVANT}
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
    text = json.dumps([settings, stats], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _done(out_root: Path, clip: str, key: str) -> bool:
    state = _state_path(out_root, clip)
    if not state.is_file():
        return False
    try:
        row = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if row.get("key") != key:
        return False
    if row.get("status") == STATUS_OK:
        return (out_root / clip).is_dir()
    return row.get("status") == STATUS_NO_FACE


def remove_leftovers(out_root: Path) -> int:
    """Delete the hidden temporary clip folders and files a killed run left under ``out_root``.

    Complete clips are only ever renamed into place, so what a killed run leaves behind is
    hidden (``.<clip>.tmp-<pid>`` folders, ``.<name>.<random>.tmp.json`` state files); removing
    them keeps the output tree byte-identical to an uninterrupted run's (DVC hashes it whole).
    Call it before any worker of this run starts.
    """
    if not out_root.is_dir():
        return 0
    leftovers = [p for p in out_root.rglob(".*.tmp*") if ".tmp" in p.name]
    for path in sorted(leftovers, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    return len(leftovers)


def _write_report(
    out_root: Path, clips: Sequence[str], report: Path, columns: Sequence[str]
) -> None:
    rows = []
    for clip in clips:
        state = _state_path(out_root, clip)
        if state.is_file():
            rows.append(json.loads(state.read_text(encoding="utf-8")))
    with atomic_open(report, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# Worker-process globals: each worker builds its own detector / enhancer (own ONNX session).
_WORKER: dict[str, Any] = {}


def _init_worker(factory: Callable[[], Any], threads: int) -> None:
    _WORKER["tool"] = factory()
    if threads and "torch" in sys.modules:  # a torch tool: one thread per worker process
        sys.modules["torch"].set_num_threads(threads)


def _run_jobs(
    clips: Sequence[str],
    process: Callable[[str], dict],
    factory: Callable[[], Any],
    workers: int,
    desc: str,
    tool: Any,
) -> dict[str, int]:
    """Run ``process`` over ``clips``: in-process with ``tool``, or in ``workers`` processes
    that each build their own tool with ``factory``; returns counts by status."""
    by_status: dict[str, int] = {}
    bar = tqdm(total=len(clips), desc=desc, unit="clip", disable=not clips)
    if workers <= 1 or len(clips) <= 1:
        _WORKER["tool"] = tool
        results: Iterable[dict] = map(process, clips)
        pool = None
    else:
        ctx = mp.get_context("spawn")  # no fork after torch/onnxruntime thread pools exist
        pool = ctx.Pool(min(workers, len(clips)), initializer=_init_worker, initargs=(factory, 1))
        results = pool.imap_unordered(process, clips)
    try:
        for row in results:
            by_status[row["status"]] = by_status.get(row["status"], 0) + 1
            if row["status"] == STATUS_ERROR:
                tqdm.write(f"{desc}: skipped {row['clip']}: {row['reason']}")
            elif row.get("skipped"):  # damaged frames left out of a clip that is kept
                tqdm.write(f"{desc}: {row['clip']}: {row['reason']}: {row['skipped']}")
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
        _WORKER.clear()
    return by_status


# ------------------------------------------------------------------------------------------
# detect + align
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DetectTask:
    videos_root: Path
    out_root: Path
    params: DetectAlignParams

    def __call__(self, rel: str) -> dict:
        p = self.params
        clip = str(Path(rel).with_suffix(""))
        row: dict[str, Any] = {"clip": clip, "frames": 0, "detected_frames": 0, "max_faces": 0}
        row["key"] = job_key(p, self.videos_root / rel)
        path = self.videos_root / rel
        try:  # streamed: memory does not grow with the video's length
            result, crops = faces_in_stream(
                lambda: video_frames(path, p.frame_stride, p.max_frames),
                _WORKER["tool"],
                p.output_size,
                p.detect_every,
                name=str(path),
            )
            if crops is not None:
                write_frames_atomic(self.out_root / clip, crops, p.jpeg_quality)
        except UserError as exc:
            row.update(status=STATUS_ERROR, reason=str(exc))
            write_json(_state_path(self.out_root, clip), row)
            return row
        row.update(
            frames=len(result.track),
            detected_frames=result.detected,
            max_faces=result.max_faces,
            status=result.status,
            reason="" if result.status == STATUS_OK else "no face found in any frame",
        )
        write_json(_state_path(self.out_root, clip), row)
        return row


@dataclass(frozen=True)
class _DetectorFactory:
    params: DetectAlignParams
    device: str

    def __call__(self):
        from nrdfer.preprocess.tools import build_detector

        return build_detector(self.params, self.device, threads=1 if self.params.workers > 1 else 0)


def clip_conflicts(rels: Sequence[str]) -> dict[str, dict[str, str]]:
    """The clips that more than one video would write, or that would hold another clip.

    A clip is a video's path without its suffix; its aligned frames go to the folder of that
    name. ``clip1.avi`` and ``clip1.mp4`` side by side both name ``clip1`` (``duplicate_id``);
    ``a/b.avi`` names the folder ``a/b`` that ``a/b/c.avi``'s clip ``a/b/c`` lies in
    (``nested_clip``; replacing ``a/b`` would delete it). Both sides of a conflict are left out.

    Args:
        rels: video paths relative to the videos root, as :func:`list_videos` returns them.

    Returns:
        ``clip -> {"status", "reason"}`` for every clip left out.
    """
    sources: dict[str, list[str]] = defaultdict(list)
    for rel in rels:
        sources[Path(rel).with_suffix("").as_posix()].append(rel)
    out: dict[str, dict[str, str]] = {}
    for clip, files in sources.items():
        if len(files) > 1:
            names = ", ".join(sorted(Path(f).name for f in files))
            out[clip] = {
                "status": STATUS_DUPLICATE,
                "reason": f"{len(files)} videos would write this one clip folder ({names}); "
                "both are left out: rename or remove one and re-run",
            }
    clips = sorted(sources)
    for i, clip in enumerate(clips):  # sorted: the clips inside ``clip/`` follow it
        inside = []
        for other in clips[i + 1 :]:
            if not other.startswith(clip + "/"):
                break
            inside.append(other)
        for other in inside:
            out.setdefault(other, {
                "status": STATUS_NESTED,
                "reason": f"lies inside the clip folder of {', '.join(sorted(sources[clip]))}; "
                "both are left out: rename one and re-run",
            })  # fmt: skip
        if inside:
            out.setdefault(clip, {
                "status": STATUS_NESTED,
                "reason": f"its clip folder would hold the clip folder of "
                f"{', '.join(sorted(f for o in inside for f in sources[o]))}; both are left "
                "out: rename one and re-run",
            })  # fmt: skip
    return out


def _refuse(out_root: Path, clip: str, conflict: dict[str, str]) -> None:
    """Record a clip left out by :func:`clip_conflicts` and remove what an earlier run wrote
    for it (when one of the videos was alone), so no clip folder stands for both."""
    row = {"clip": clip, "frames": 0, "detected_frames": 0, "max_faces": 0, **conflict}
    state = _state_path(out_root, clip)
    try:
        same = json.loads(state.read_text(encoding="utf-8")) == row
    except (OSError, ValueError):
        same = False
    if not same:
        write_json(state, row)
    folder = out_root / clip
    if not folder.is_dir():
        return
    if not any(p.is_dir() for p in folder.iterdir()):
        shutil.rmtree(folder)
        return
    for frame in folder.iterdir():  # its frames only: a nested clip's folder lies inside
        if frame.is_file():
            frame.unlink()


def detect_align_tree(
    videos_root: str | Path,
    out_root: str | Path,
    report: str | Path,
    params: DetectAlignParams,
    device: str = "cpu",
) -> JobSummary:
    """Detect, track and align the face of every video under ``videos_root``.

    Args:
        videos_root: folder of videos (searched recursively; layout mirrored).
        out_root: where the per-clip folders of aligned JPEG frames go.
        report: CSV with one row per clip folder: clip, status (ok | no_face | error |
            duplicate_id | nested_clip), frames, detected_frames, max_faces, reason.
        params: the ``detect_align`` section.
        device: torch device for the ResNet-50 backend.

    Returns:
        Counts of the run.
    """
    videos_root, out_root = Path(videos_root), Path(out_root)
    rels = [str(r) for r in list_videos(videos_root)]
    if not rels:
        raise UserError(f"{videos_root}: no videos found (looked for {', '.join(VIDEO_EXTS)})")
    conflicts = clip_conflicts(rels)
    claim_dir(out_root, "the detect_align stage", legacy=STATE_DIR)
    remove_leftovers(out_root)
    for clip, conflict in sorted(conflicts.items()):
        _refuse(out_root, clip, conflict)
        print(f"detect_align: left out {clip}: {conflict['reason']}", file=sys.stderr)
    usable = [r for r in rels if Path(r).with_suffix("").as_posix() not in conflicts]
    todo = [
        r
        for r in usable
        if not _done(out_root, str(Path(r).with_suffix("")), job_key(params, videos_root / r))
    ]
    factory = _DetectorFactory(params, device)
    tool = factory() if todo else None  # fails here, once, on a missing weights file
    by_status = _run_jobs(
        todo,
        _DetectTask(videos_root, out_root, params),
        factory,
        params.workers,
        "detect_align",
        tool,
    )
    for rel in rels:
        conflict = conflicts.get(Path(rel).with_suffix("").as_posix())
        if conflict is not None:  # counted per video
            by_status[conflict["status"]] = by_status.get(conflict["status"], 0) + 1
    clips = list(dict.fromkeys(str(Path(r).with_suffix("")) for r in rels))  # one row per clip
    _write_report(out_root, clips, Path(report), DETECT_COLUMNS)
    refused = len(rels) - len(usable)
    return JobSummary(len(rels), len(todo), len(usable) - len(todo), by_status, refused)


# ------------------------------------------------------------------------------------------
# enhance
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EnhanceTask:
    faces_root: Path
    out_root: Path
    params: EnhanceParams

    def __call__(self, clip: str) -> dict:
        from nrdfer.preprocess.enhance import enhance_dark_frames, mean_luma

        p = self.params
        row: dict[str, Any] = {
            "clip": clip, "frames": 0, "enhanced_frames": 0, "enhanced": "", "skipped": ""
        }  # fmt: skip
        row["key"] = job_key(p, self.faces_root / clip)
        try:
            frames, names, skipped = read_frames(self.faces_root / clip)
        except UserError as exc:
            row.update(status=STATUS_ERROR, reason=str(exc))
            write_json(_state_path(self.out_root, clip), row)
            return row
        out, dark, luma = enhance_dark_frames(frames, _WORKER["tool"], p.dark_threshold)
        row.update(
            status=STATUS_OK,
            frames=len(frames),
            enhanced_frames=int(dark.sum()),
            enhanced=" ".join(n for n, d in zip(names, dark, strict=True) if d),
            skipped=" ".join(skipped),
            mean_luma_before=round(float(luma.mean()), 3),
            mean_luma_after=round(float(mean_luma(out).mean()), 3),
            reason=f"{len(skipped)} frame(s) do not decode, skipped (listed in skipped); replace "
            "or delete them and re-run to keep them"
            if skipped
            else "",
        )
        write_frames_atomic(self.out_root / clip, out, p.jpeg_quality, names)
        write_json(_state_path(self.out_root, clip), row)
        return row


@dataclass(frozen=True)
class _EnhancerFactory:
    params: EnhanceParams
    device: str

    def __call__(self):
        from nrdfer.preprocess.tools import build_enhancer

        return build_enhancer(self.params, self.device)


def enhance_tree(
    faces_root: str | Path,
    out_root: str | Path,
    report: str | Path,
    params: EnhanceParams,
    device: str = "cpu",
) -> JobSummary:
    """Copy every clip folder under ``faces_root`` to ``out_root``, enhancing its dark frames.

    Frame file names are kept. The report CSV lists, per clip, how many and which frames were
    enhanced (space-separated file names) and the mean luma before and after.
    """
    faces_root, out_root = Path(faces_root), Path(out_root)
    clips = [str(c) for c in list_frame_dirs(faces_root)]
    if not clips:
        raise UserError(f"{faces_root}: no clip folders with image frames found")
    claim_dir(out_root, "the enhance stage", legacy=STATE_DIR)
    remove_leftovers(out_root)
    todo = [c for c in clips if not _done(out_root, c, job_key(params, faces_root / c))]
    factory = _EnhancerFactory(params, device)
    tool = factory() if todo else None  # fails here, once, on a missing weights file
    by_status = _run_jobs(
        todo, _EnhanceTask(faces_root, out_root, params), factory, params.workers, "enhance", tool
    )
    _write_report(out_root, clips, Path(report), ENHANCE_COLUMNS)
    return JobSummary(len(clips), len(todo), len(clips) - len(todo), by_status)


__all__ = [
    "DETECT_COLUMNS",
    "ENHANCE_COLUMNS",
    "JobSummary",
    "STATE_DIR",
    "STATUS_DUPLICATE",
    "STATUS_NESTED",
    "clip_conflicts",
    "detect_align_tree",
    "enhance_tree",
    "remove_leftovers",
]
