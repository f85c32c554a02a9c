"""The evaluation's confusion-matrix PNG: row-normalised matrices side by side, one panel per
prediction set (without and with the snippet-based filter).

Drawing only: the matrices come in as counts, so this module knows nothing of models, the
engine or result files. matplotlib is imported inside the function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nrdfer.io import atomic_path


def confusion_png(
    path: str | Path, matrices: Mapping[str, np.ndarray], classes: Sequence[str]
) -> None:
    """Row-normalised confusion matrices side by side, percentages annotated (PNG).

    Args:
        path: the PNG to write (atomically).
        matrices: panel title -> counts ``C[i, j]`` of true class ``i`` predicted as ``j``,
            (K, K) each; a row without clips is drawn as zeros.
        classes: the K class names in index order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(11, 4.8), constrained_layout=True)
    for ax, (title, counts) in zip(axes, matrices.items(), strict=True):
        cm = counts.astype(float)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                colour = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, f"{100 * norm[i, j]:.1f}", ha="center", va="center", color=colour)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(f"{title} (row-normalised %)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
