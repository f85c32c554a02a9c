"""Recall of small faces in large frames: the two-pass detector (``detect_align.min_face``)
against the first pass alone (``min_face: 0``, frames shrunk to ``max_side`` only).

Two kinds of scenes, built at run time (no photo of a person is stored in this repository):

- group photos: the faces of the photos that ship inside installed packages (skimage's
  astronaut and cameraman, matplotlib's Grace Hopper), each cut out with some context, scaled so
  the face is a chosen width and pasted onto a 4K (3840 x 2160) or 1080p canvas whose
  background is skimage's textures, several people per canvas;
- generated scenes: the demo data's renderer (``nrdfer.data.synth``) drawing one person with a
  small face in a 4K or 1080p scene (face widths from its true box).

A placed face counts as found when a detected box's centre lies within half the face's width of
the true centre. Writes benchmarks/results/small_faces.json (or --out) and a PNG of recall
against face width (share of the long side).

    python benchmarks/small_faces.py [--scenes 4] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import skimage.data

from nrdfer.data.synth.face import sample_identity
from nrdfer.data.synth.scene import ClipSpec, render_clip
from nrdfer.io import atomic_path, write_json
from nrdfer.preprocess.faces import TinyRetinaFace, largest_face

MAX_SIDE = 640  # params.yaml's detect_align.max_side
MIN_FACE = 0.015  # params.yaml's detect_align.min_face
SHARES = (0.015, 0.02, 0.03, 0.045)
"""Face widths placed, as a share of the canvas's long side (4K: 58, 77, 115, 173 px)."""
CANVASES = {"4K": (2160, 3840), "1080p": (1080, 1920)}


def source_faces() -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """(photo, face box) of every photo of a person shipped in installed packages."""
    hopper = cv2.imread(
        os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    )[..., ::-1]
    photos = [
        skimage.data.astronaut(),
        np.ascontiguousarray(hopper),
        np.repeat(skimage.data.camera()[..., None], 3, 2),  # grey (H, W) -> (H, W, 3)
    ]
    det = TinyRetinaFace(max_side=0)
    out = []
    for photo in photos:
        face = largest_face(det.detect(photo)[0])
        assert face is not None, "a shipped photo lost its face"
        out.append((photo, face.box))
    return out


def background(height: int, width: int, k: int) -> np.ndarray:
    """A textured backdrop from skimage's images (RGB uint8 (H, W, 3))."""
    names = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel")
    img = getattr(skimage.data, names[k % len(names)])()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def group_photo(
    size: tuple[int, int], share: float, k: int, faces: list, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """A canvas with 6 people whose faces are ``share`` of the long side wide; returns the
    image and the true (cx, cy, width) of each face."""
    h, w = size
    img = background(h, w, k)
    target = share * max(h, w)
    truth = []
    cols, rows = 3, 2
    for i in range(cols * rows):
        photo, (x1, y1, x2, y2) = faces[(i + k) % len(faces)]
        s = target / (x2 - x1) * rng.uniform(0.95, 1.05)
        # cut the face with 1.5 face-widths of context each side (shoulders, hair)
        pad = 1.5 * (x2 - x1)
        c0, r0 = int(max(0, x1 - pad)), int(max(0, y1 - pad))
        c1, r1 = int(min(photo.shape[1], x2 + pad)), int(min(photo.shape[0], y2 + pad * 1.5))
        cut = cv2.resize(
            photo[r0:r1, c0:c1],
            (max(1, round((c1 - c0) * s)), max(1, round((r1 - r0) * s))),
            interpolation=cv2.INTER_AREA,
        )
        cell_w, cell_h = w // cols, h // rows
        ox = (i % cols) * cell_w + int(rng.uniform(0, max(1, cell_w - cut.shape[1])))
        oy = (i // cols) * cell_h + int(rng.uniform(0, max(1, cell_h - cut.shape[0])))
        ch, cw = min(cut.shape[0], h - oy), min(cut.shape[1], w - ox)
        img[oy : oy + ch, ox : ox + cw] = cut[:ch, :cw]
        truth.append((ox + ((x1 + x2) / 2 - c0) * s, oy + ((y1 + y2) / 2 - r0) * s, target))
    return img, truth


def generated_scene(
    size: tuple[int, int], share: float, seed: int
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """One frame of the demo renderer with a person whose face is about ``share`` wide."""
    h, w = size
    rng = np.random.default_rng(seed)
    ident = sample_identity(rng)
    # the renderer's face size is the oval's half-height as a share of the height; its box
    # is about 2 * aspect * half-height wide
    half = share * max(h, w) / (2 * ident.aspect) / h
    spec = ClipSpec(
        label=int(rng.integers(7)), n_frames=1, size=(w, h), face_size=(half, half),
        position_spread=0.35, head_motion=0.0, intensity=(0.8, 1.0), n1_kind=None,
        n1_frames=(), n2_window=None, dark_gain=None,
    )  # fmt: skip
    clip = render_clip(spec, rng, ident)
    x0, y0, x1, y1 = clip.boxes[0]
    return clip.frames[0], [((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0)]


def found(faces, truth) -> int:
    return sum(
        any(abs(f.center[0] - cx) < tw / 2 and abs(f.center[1] - cy) < tw / 2 for f in faces)
        for cx, cy, tw in truth
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=4, help="scenes per kind, canvas and size")
    ap.add_argument("--out", default="benchmarks/results/small_faces.json")
    args = ap.parse_args()
    detectors = {
        "first pass only (min_face 0)": TinyRetinaFace(max_side=MAX_SIDE),
        f"two passes (min_face {MIN_FACE})": TinyRetinaFace(max_side=MAX_SIDE, min_face=MIN_FACE),
    }
    faces = source_faces()
    rng = np.random.default_rng(0)
    rows = []
    for canvas, size in CANVASES.items():
        for share in SHARES:
            for kind in ("group photo", "generated scene"):
                scenes = [
                    group_photo(size, share, k, faces, rng)
                    if kind == "group photo"
                    else generated_scene(size, share, 1000 + k)
                    for k in range(args.scenes)
                ]
                for name, det in detectors.items():
                    hits = total = 0
                    start = time.perf_counter()
                    for img, truth in scenes:
                        hits += found(det.detect(img)[0], truth)
                        total += len(truth)
                    secs = (time.perf_counter() - start) / len(scenes)
                    rows.append(
                        {
                            "canvas": canvas, "face_share": share,
                            "face_px": round(share * max(size)), "kind": kind, "detector": name,
                            "found": hits, "faces": total, "recall": round(hits / total, 3),
                            "seconds_per_frame": round(secs, 3),
                        }
                    )  # fmt: skip
                    print(f"{canvas} {share:.3f} {kind:15s} {name:30s} {hits}/{total} {secs:.2f}s")
    result = {
        "what": "recall of faces of a given width (share of the long side) in large frames",
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count()},
        "max_side": MAX_SIDE,
        "rows": rows,
    }
    write_json(args.out, result)
    plot(rows, Path(args.out).with_suffix(".png"))


def plot(rows: list[dict], path: Path) -> None:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CANVASES), figsize=(10, 3.8), sharey=True)
    for ax, canvas in zip(axes, CANVASES, strict=True):
        for name in dict.fromkeys(r["detector"] for r in rows):
            for kind, style in (("group photo", "-o"), ("generated scene", "--s")):
                sel = [
                    r
                    for r in rows
                    if (r["canvas"], r["detector"], r["kind"]) == (canvas, name, kind)
                ]
                ax.plot([100 * r["face_share"] for r in sel], [r["recall"] for r in sel], style,
                        label=f"{name}, {kind}")  # fmt: skip
        ax.set_title(f"{canvas}: faces found")
        ax.set_xlabel("face width, % of the long side")
        ax.set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("recall")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
