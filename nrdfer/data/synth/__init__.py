"""A generated dynamic-expression data set in the exact layouts of DFEW and AFEW (and, when
asked for, FERV39k and MAFW).

The licensed data sets cannot be shipped, so the pipeline runs end to end on this one. Faces
are drawn procedurally (:mod:`.face`) for many identities; the seven classes are facial
actions with onset/apex/offset over time (:mod:`.expressions`); the paper's two kinds of
noisy frames (Section 1, Fig. 1) are injected at parameterised rates (:mod:`.noise`), and with
``synth.test_noise`` at separate rates into the test clips (DFEW fold 1, Val_AFEW); clips are
written as DFEW and AFEW trees (:mod:`.layouts`; FERV39k and MAFW trees with
``synth.ferv39k_clips`` / ``synth.mafw_clips``, MAFW's four further classes with expressions of
their own) with a contact sheet to look at (:mod:`.sheet`). Output is deterministic for a seed.
See docs/demo-data.md.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from tqdm import tqdm

from nrdfer.data.synth.expressions import CLASS_EXPRESSIONS
from nrdfer.data.synth.layouts import (
    AFEW_SPLITS,
    DFEW_FOLDS,
    FERV39K_SCENES,
    LAYOUT_CODES,
    Job,
    afew_ids,
    allocate,
    render_job,
    stratified_folds,
    write_dfew_splits,
    write_ferv39k_splits,
    write_mafw_splits,
)
from nrdfer.data.synth.sheet import contact_sheet
from nrdfer.errors import UserError
from nrdfer.io import (
    OWNER_MARKER,
    claim_dir,
    disk_errors,
    exit_on_sigterm,
    write_json,
    write_text,
)
from nrdfer.labels import CLASSES, FERV39K, MAFW, NEUTRAL, class_set
from nrdfer.params import SynthParams, allowed, to_dict

Layout = Literal["dfew", "afew", "both", "ferv39k", "mafw"]
LAYOUTS = ("dfew", "afew", "both", "ferv39k", "mafw")
"""``both``: DFEW and AFEW (``--clips`` sets their counts), with FERV39k and MAFW when
``synth.ferv39k_clips`` / ``synth.mafw_clips`` ask for them; any other: that layout alone."""
META_NAME = "synth_meta.json"  # per-clip ground truth (noise, boxes), beside the layouts
SHEET_NAME = "contact_sheet.png"


OWNER = "nrdfer synth"
"""Written into the output folder's marker file: a folder without it is never replaced."""


def _check(params: SynthParams, counts: dict[str, int]) -> None:
    """Clip counts per layout (``--clips`` or params) within the ranges of
    ``synth.<layout>_clips``, before anything is planned or allocated."""
    dfew, afew, mafw = counts["dfew"], counts["afew"], counts["mafw"]
    if dfew and dfew < DFEW_FOLDS:
        raise UserError(f"DFEW clips must be at least {DFEW_FOLDS} (one per fold), got {dfew}")
    if afew and afew < len(AFEW_SPLITS):
        raise UserError(f"AFEW clips must be at least {len(AFEW_SPLITS)}, got {afew}")
    if mafw and mafw < DFEW_FOLDS:
        raise UserError(f"MAFW clips must be at least {DFEW_FOLDS} (one per fold), got {mafw}")
    if not any(counts.values()):
        raise UserError("no clips to write: every asked-for layout has 0 clips; pass --clips")
    for name, n in ((f"{layout}_clips", n) for layout, n in counts.items()):
        try:
            replace(params, **{name: n})
        except pydantic.ValidationError:
            raise UserError(
                f"{n:,} clips: must be {allowed(SynthParams, name)} (the range of "
                f"synth.{name}); ask for fewer"
            ) from None


def _jobs(
    root: Path,
    params: SynthParams,
    seed: int,
    dfew: int,
    afew: int,
    ferv39k: int = 0,
    mafw: int = 0,
) -> tuple[list[Job], dict]:
    """Plan all clips: labels, ids, folds/splits. Returns the jobs and the DFEW split plan
    (with the FERV39k and MAFW split rows under ``ferv39k`` / ``mafw``)."""
    rng = np.random.default_rng([seed, 99])  # plan-level randomness (labels, folds, ids)
    planner = _Planner(
        root, params, seed, {"dfew": dfew, "afew": afew, "ferv39k": ferv39k, "mafw": mafw}
    )
    jobs: list[Job] = []
    plan: dict[str, Any] = {}
    if dfew:
        new, plan = _dfew_jobs(planner, rng, dfew)
        jobs += new
    if afew:
        jobs += _afew_jobs(planner, rng, afew)
    if ferv39k:
        new, plan["ferv39k"] = _ferv39k_jobs(planner, ferv39k)
        jobs += new
    if mafw:
        new, plan["mafw"] = _mafw_jobs(planner, mafw)
        jobs += new
    return jobs, plan


class _Planner:
    """What the per-layout plans share: the params, every job's common settings, the clips
    picked for the contact sheet."""

    def __init__(self, root: Path, params: SynthParams, seed: int, sizes: dict[str, int]):
        self.root, self.params, self.seed = root, params, seed
        self.common = dict(
            seed=seed,
            intensity=params.intensity,
            head_motion=params.head_motion,
            n1_rate=params.n1_rate,
            n1_share=params.n1_share,
            n2_rate=params.n2_rate,
            n2_share=params.n2_share,
            fps=params.fps,
            crop_size=params.dfew_frame_size,
            original_size=params.dfew_original_size,
            frame_name=params.dfew_frame_name,
            jpeg_quality=params.jpeg_quality,
            noise_stream=params.test_noise,
        )
        self.face_clip = dict(  # DFEW's face-crop clips; FERV39k's and MAFW's alike
            frames=params.dfew_frames,
            size=params.dfew_scene_size,
            face_size=params.dfew_face_size,
            dark_share=0.0,
            dark_gain=(1.0, 1.0),
        )
        self.shown: dict[str, dict[int, int]] = {layout: {} for layout in LAYOUT_CODES}
        self.sheet_layout = next(layout for layout, n in sizes.items() if n)

    def noise(self, layout: str, labels: np.ndarray, test: np.ndarray) -> list[dict]:
        """Each clip's job settings: with test_noise, the test clips get exactly
        round(test_n1_rate x test clips) N1 clips and round(test_n2_rate x non-neutral test
        clips) N2 clips, those with the lowest draws of their own seed (so the noisy clips at
        a rate include those at every lower rate)."""
        params, common = self.params, self.common
        if not params.test_noise:
            return [common] * len(labels)
        code = LAYOUT_CODES[layout]
        draw = np.array(
            [np.random.default_rng([self.seed, code, i, 2]).random(2) for i in range(len(labels))]
        )  # (clips, 2): the N1 and the N2 draw
        n1 = _lowest(draw[:, 0], test, params.test_n1_rate)
        n2 = _lowest(draw[:, 1], test & (labels != NEUTRAL), params.test_n2_rate)
        out = []
        for i in range(len(labels)):
            if not test[i]:
                out.append(common)
                continue
            out.append(
                {
                    **common,
                    "n1_rate": float(n1[i]),
                    "n1_share": params.test_n1_share,
                    "n2_rate": float(n2[i]),
                    "n2_share": params.test_n2_share,
                }
            )
        return out

    def thumbs(self, layout: str, label: int) -> int:
        """Frames of this clip on the contact sheet: the first clips of each class of the
        first layout written."""
        if layout != self.sheet_layout:
            return 0
        taken = self.shown[layout].setdefault(label, 0)
        if taken >= self.params.sheet_clips_per_class:
            return 0
        self.shown[layout][label] = taken + 1
        return self.params.sheet_frames

    def jobs(
        self,
        layout: str,
        folder: str,
        names: Sequence[str],
        labels: np.ndarray,
        settings: list[dict],
        **clip: Any,
    ) -> list[Job]:
        """One job per clip of ``layout`` under ``root/folder``: its name, label, frames on the
        sheet, noise settings and ``clip`` (frame counts, sizes, darkness, expressions)."""
        return [
            Job(
                layout=layout,
                index=i,
                root=str(self.root / folder),
                name=names[i],
                label=int(label),
                thumbs=self.thumbs(layout, int(label)),
                **clip,
                **settings[i],
            )
            for i, label in enumerate(labels)
        ]


def _dfew_jobs(planner: _Planner, rng: np.random.Generator, n: int) -> tuple[list[Job], dict]:
    """DFEW's clips and its split plan (ids, labels, folds)."""
    params = planner.params
    labels = rng.permutation(allocate(params.dfew_class_counts, n, "dfew_class_counts"))
    folds = stratified_folds(labels, DFEW_FOLDS, rng)
    plan = {"ids": list(range(1, n + 1)), "labels": labels.tolist(), "folds": folds}
    settings = planner.noise("dfew", labels, folds == 0)
    names = [f"{i + 1:05d}" for i in range(n)]
    return planner.jobs("dfew", "DFEW", names, labels, settings, **planner.face_clip), plan


def _afew_jobs(planner: _Planner, rng: np.random.Generator, n: int) -> list[Job]:
    """AFEW's clips: per class, the first ``afew_val_share`` of its clips go to Val."""
    params = planner.params
    labels = rng.permutation(allocate(params.afew_class_counts, n, "afew_class_counts"))
    ids = rng.permutation(afew_ids(n, rng))
    split = np.zeros(n, dtype=int)
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        split[idx[: int(round(len(idx) * params.afew_val_share))]] = 1
    if split.all() or not split.any():  # both splits must exist
        split[0] = 1 - split[0]
    settings = planner.noise("afew", labels, split == 1)
    names = [f"{AFEW_SPLITS[split[i]]}/{CLASSES[label]}/{ids[i]}" for i, label in enumerate(labels)]
    return planner.jobs(
        "afew", "AFEW", names, labels, settings,
        frames=params.afew_frames,
        size=params.afew_size,
        face_size=params.afew_face_size,
        dark_share=params.afew_dark_share,
        dark_gain=params.afew_dark_gain,
    )  # fmt: skip


def _ferv39k_jobs(planner: _Planner, n: int) -> tuple[list[Job], dict]:
    """FERV39k's clips and split rows: per class, the first ``ferv39k_test_share`` go to test;
    scenes drawn; two quirks of a real split file that ingest leaves out."""
    params = planner.params
    frng = np.random.default_rng([planner.seed, 99, LAYOUT_CODES["ferv39k"]])
    labels = frng.permutation(allocate(params.dfew_class_counts, n, "dfew_class_counts"))
    test = np.zeros(n, dtype=bool)
    for c in range(FERV39K.num_classes):
        idx = np.flatnonzero(labels == c)
        test[idx[: int(round(len(idx) * params.ferv39k_test_share))]] = True
    if test.all() or not test.any():  # both splits must exist
        test[0] = not test[0]
    scenes = frng.integers(len(FERV39K_SCENES), size=n)
    numbers: Counter = Counter()  # clip numbers count per scene and emotion: they repeat
    rows = []
    for scene, label in zip(scenes, labels, strict=True):
        numbers[scene, label] += 1
        emotion = FERV39K.classes[label]
        rows.append((f"{FERV39K_SCENES[scene]}/{emotion}/{numbers[scene, label]:04d}", emotion))
    train = np.flatnonzero(~test)
    if len(train) >= 3:
        a, b = train[0], train[1]
        other = FERV39K.classes[(labels[a] + 1) % FERV39K.num_classes]
        rows[a] = (rows[a][0], other)  # a label column that disagrees with the path
        rows[b] = (rows[b][0], "Contempt")  # a label word FERV39k does not have
    settings = planner.noise("ferv39k", labels, test)
    names = [row[0] for row in rows]
    jobs = planner.jobs("ferv39k", "FERV39k", names, labels, settings, **planner.face_clip)
    return jobs, {"rows": rows, "test": test.tolist()}


def _mafw_jobs(planner: _Planner, n: int) -> tuple[list[Job], dict]:
    """MAFW's clips (its eleven classes' expressions) and split rows, with a compound label
    in the single-expression lists when there are enough clips."""
    mrng = np.random.default_rng([planner.seed, 99, LAYOUT_CODES["mafw"]])
    counts = planner.params.mafw_class_counts
    labels = mrng.permutation(allocate(counts, n, "mafw_class_counts", MAFW.classes))
    folds = stratified_folds(labels, DFEW_FOLDS, mrng, MAFW.num_classes)
    ids = [f"{v:05d}" for v in sorted(mrng.choice(np.arange(1, 100_000), n, False))]
    rows = [(ids[i], MAFW.classes[label]) for i, label in enumerate(labels)]
    if n >= 2 * DFEW_FOLDS:
        other = MAFW.classes[(labels[0] + 1) % MAFW.num_classes]
        rows[0] = (ids[0], f"{rows[0][1]}_{other}")
    expressions = CLASS_EXPRESSIONS["mafw"]
    settings = planner.noise("mafw", np.array([expressions[c] for c in labels]), folds == 0)
    clip = dict(planner.face_clip, expressions=expressions)
    jobs = planner.jobs("mafw", "MAFW", ids, labels, settings, **clip)
    return jobs, {"rows": rows, "folds": folds}


def _lowest(draws: np.ndarray, member: np.ndarray, rate: float) -> np.ndarray:
    """A mask of the round(rate x members) members with the lowest draws."""
    idx = np.flatnonzero(member)
    chosen = idx[np.argsort(draws[idx], kind="stable")[: int(round(rate * len(idx)))]]
    mask = np.zeros(len(draws), dtype=bool)
    mask[chosen] = True
    return mask


def _run(jobs: list[Job], workers: int, progress: bool) -> Iterator[dict[str, Any]]:
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    try:
        if workers <= 1:
            for job in jobs:
                yield render_job(job)
                bar.update()
            return
        # fork where the platform has it: workers start at once and need no importable
        # __main__ (spawn re-runs the caller's main module, which fails for `python -`)
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        pool = ctx.Pool(workers)
        try:
            for result in pool.imap(render_job, jobs, chunksize=4):
                yield result
                bar.update()
            # every clip is back: the workers end on their own. Pool.terminate (what `with
            # Pool` calls) once left `make noise` waiting on a worker that never saw its SIGTERM
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    finally:
        bar.close()


def generate(
    out_dir: str | Path,
    params: SynthParams,
    seed: int,
    clips: int | None = None,
    layout: Layout = "both",
    workers: int | None = None,
    progress: bool = True,
    test_only: bool = False,
) -> dict[str, Any]:
    """Generate the demo data set into ``out_dir`` (replaced whole, atomically).

    Writes ``DFEW/`` and/or ``AFEW/`` in the official layouts, ``contact_sheet.png`` and
    ``synth_meta.json`` (per-clip ground truth: label, frames, N1/N2 noise, AFEW face boxes).
    The output is generated in a temporary directory beside ``out_dir`` and renamed into place.
    An existing ``out_dir`` is replaced only when it is empty or synth wrote it (its
    ``.nrdfer-owner`` file says so); any other folder is refused with a UserError, untouched.

    Args:
        out_dir: output directory.
        params: the ``synth`` section.
        seed: master seed (``base.seed``); the same seed gives identical files.
        clips: clips per layout, overriding ``dfew_clips`` and ``afew_clips`` (``both``) or
            the one layout's count.
        layout: which layouts to write (:data:`LAYOUTS`).
        workers: worker processes (default ``params.workers``); does not change the output.
        progress: show a progress bar.
        test_only: write only the DFEW test clips (fold 1, set_1 of the split files), byte for
            byte as in the whole set: the noise benchmark's test set at one level, whose
            training clips are those of its clean set (docs/noise.md).

    Returns:
        A summary: clips per layout, class counts, N1/N2/dark clip counts.
    """
    if layout not in LAYOUTS:
        raise UserError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    counts = {}
    for name in LAYOUT_CODES:
        n = getattr(params, f"{name}_clips")
        if layout == "both":
            counts[name] = n if clips is None or name in ("ferv39k", "mafw") else clips
        else:
            counts[name] = (n if clips is None else clips) if name == layout else 0
    _check(params, counts)
    out = Path(out_dir).resolve()
    with disk_errors(out.parent, "re-run synth"), exit_on_sigterm():
        return _generate(out, params, seed, counts, layout, workers, progress, test_only)


def _generate(
    out: Path, params, seed, counts, layout, workers, progress, test_only
) -> dict[str, Any]:
    claim_dir(out, OWNER, create=False)  # never replace a folder synth did not write
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    for path in (tmp, old, *_leftovers(out)):
        shutil.rmtree(path, ignore_errors=True)
    tmp.mkdir()
    try:
        dfew = counts["dfew"]
        jobs, plan = _jobs(
            tmp, params, seed, dfew, counts["afew"], counts["ferv39k"], counts["mafw"]
        )
        if dfew and test_only:  # the same test clips, byte for byte, and nothing else
            keep = plan["folds"] == 0
            jobs = [j for j in jobs if j.layout != "dfew" or keep[j.index]]
            plan = {
                **plan,
                "ids": [i for i, k in zip(plan["ids"], keep, strict=True) if k],
                "labels": [c for c, k in zip(plan["labels"], keep, strict=True) if k],
                "folds": plan["folds"][keep],
            }
        results = list(_run(jobs, workers if workers is not None else params.workers, progress))
        if dfew:
            write_dfew_splits(
                tmp / "DFEW", plan["ids"], plan["labels"], plan["folds"], params.dfew_split_spelling
            )
        if counts["ferv39k"]:
            write_ferv39k_splits(tmp / "FERV39k", plan["ferv39k"]["rows"], plan["ferv39k"]["test"])
        if counts["mafw"]:
            write_mafw_splits(tmp / "MAFW", plan["mafw"]["rows"], plan["mafw"]["folds"])
        rows = [
            (r["meta"]["label"], _caption(r["meta"]), r["thumbs"])
            for r in results
            if r["thumbs"] is not None
        ]
        rows.sort(key=lambda row: row[0])
        sheet_layout = next(name for name, n in counts.items() if n)
        contact_sheet(rows, tmp / SHEET_NAME, class_set(sheet_layout).classes)
        meta = {
            "seed": seed,
            "layout": layout,
            "params": to_dict(replace(params, **{f"{k}_clips": n for k, n in counts.items()})),
            "dfew": [r["meta"] for r in results if r["layout"] == "dfew"],
            "afew": [r["meta"] for r in results if r["layout"] == "afew"],
        }
        if dfew:
            for m, f in zip(meta["dfew"], plan["folds"], strict=True):
                m["test_fold"] = int(f) + 1
        if counts["ferv39k"]:
            meta["ferv39k"] = [r["meta"] for r in results if r["layout"] == "ferv39k"]
            split = zip(plan["ferv39k"]["rows"], plan["ferv39k"]["test"], strict=True)
            for m, ((_, word), test) in zip(meta["ferv39k"], split, strict=True):
                m.update(split="test" if test else "train", split_label=word)
        if counts["mafw"]:
            meta["mafw"] = [r["meta"] for r in results if r["layout"] == "mafw"]
            split = zip(plan["mafw"]["rows"], plan["mafw"]["folds"], strict=True)
            for m, ((_, word), fold) in zip(meta["mafw"], split, strict=True):
                m.update(test_fold=int(fold) + 1, split_label=word)
        write_json(tmp / META_NAME, meta)
        write_text(tmp / OWNER_MARKER, OWNER + "\n")
        claim_dir(out, OWNER, create=False)  # still ours after the minutes of generating
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summarize(meta)


def _leftovers(out: Path) -> list[Path]:
    """Temp folders beside ``out`` of synth runs that were killed (their process is gone)."""
    found = []
    for path in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = path.name.rpartition("-")
        if not kind.endswith((".tmp", ".old")) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            found.append(path)
        except OSError:  # alive, another user's
            pass
    return found


def _caption(meta: dict[str, Any]) -> str:
    parts = []
    if meta["n1_kind"]:
        parts.append(f"N1 {meta['n1_kind']}")
    if meta["n2_window"]:
        parts.append("N2")
    if meta.get("dark_gain"):
        parts.append("dark")
    return ", ".join(parts) or "clean"


def summarize(meta: dict[str, Any]) -> dict[str, Any]:
    """Counts per layout: clips, per class, N1, N2 and dark clips (from synth_meta.json)."""
    out: dict[str, Any] = {}
    for layout in LAYOUT_CODES:
        clips = meta.get(layout) or []
        if not clips:
            continue
        out[layout] = {
            "clips": len(clips),
            "classes": {c: sum(m["class"] == c for m in clips) for c in class_set(layout).classes},
            "n1": sum(m["n1_kind"] is not None for m in clips),
            "n2": sum(m["n2_window"] is not None for m in clips),
            "dark": sum(m["dark_gain"] is not None for m in clips),
        }
    return out


__all__ = ["LAYOUTS", "META_NAME", "SHEET_NAME", "generate", "summarize"]
