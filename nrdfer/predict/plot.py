"""The paper's Fig. 5 for any video: sampled face frames with their attention weights, and the
class probabilities before and after the snippet-based filter (plus the window timeline).

matplotlib is imported here only (``Figure`` + Agg canvas: no pyplot, no global state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nrdfer.io import atomic_path
from nrdfer.predict.predictor import VideoResult

__all__ = ["plot_prediction"]

FRAME_INCHES = 1.1
"""Width of one sampled frame in the figure."""

BAR_WIDTH = 0.4
"""Width of one bar of the before/after probability chart (two bars per class)."""


def plot_prediction(result: VideoResult, path: str | Path, dpi: int = 100) -> None:
    """Draw a prediction and write it as an image (format from the suffix, e.g. ``.png``).

    Layout: row 1, the T sampled aligned face crops titled with their time and attention
    weight (rollout of the class token, paper Fig. 5); row 2, the attention as bars; row 3,
    probabilities before and after the filter and, for a long video, the window timeline
    (probability of each class per window after the filter).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    clip = result.clip
    t = len(clip.frames)
    weights = clip.attention or [None] * t
    width = max(8.0, FRAME_INCHES * t)
    fig = Figure(figsize=(width, 2.0 + 2.0 + 3.2), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    rows = fig.subfigures(3, 1, height_ratios=[2.0, 2.0, 3.2])

    frame_axes = rows[0].subplots(1, t, squeeze=False)[0]
    for ax, crop, when, w in zip(frame_axes, result.crops, clip.times, weights, strict=True):
        ax.imshow(crop)
        ax.set_axis_off()
        ax.set_title(f"{when:.2f}s\n" + ("—" if w is None else f"{w:.3f}"), fontsize=8)
    fired = " (filter fired)" if clip.filter_fired else ""
    rows[0].suptitle(f"{Path(result.path).name}: {clip.label}{fired}", fontsize=11)

    ax = rows[1].subplots()
    values = [0.0 if w is None else w for w in weights]
    ax.bar(np.arange(t), values, color="tab:orange")
    ax.set_xticks(np.arange(t), [str(f) for f in clip.frames], fontsize=7)
    ax.set_xlim(-0.5, t - 0.5)
    ax.set_xlabel("video frame")
    ax.set_ylabel("attention")
    if clip.attention is None:
        ax.text(0.5, 0.5, "model has no temporal attention", ha="center", transform=ax.transAxes)

    timeline = bool(result.windows)
    bottom = rows[2].subplots(1, 2 if timeline else 1, squeeze=False)[0]
    k = np.arange(len(result.classes))
    before = [clip.probs_seq[c] for c in result.classes]
    after = [clip.probs[c] for c in result.classes]
    ax = bottom[0]
    ax.bar(k - BAR_WIDTH / 2, before, BAR_WIDTH, label="before filter")
    ax.bar(k + BAR_WIDTH / 2, after, BAR_WIDTH, label="after filter")
    ax.set_xticks(k, result.classes, rotation=30, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    if timeline:
        ax = bottom[1]
        mids = [(w.start + w.end) / 2 for w in result.windows]
        for c in result.classes:
            ax.plot(mids, [w.probs[c] for w in result.windows], marker="o", label=c)
        for w in result.windows:
            ax.axvspan(w.start, w.end, alpha=0.05, color="gray")
        ax.set_ylim(0, 1)
        ax.set_xlabel("time (s)")
        ax.set_title("timeline (after filter)", fontsize=9)
        ax.legend(fontsize=7, ncol=2)

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png")
