"""The paper's figures as PNG: Fig. 4 (WAR with and without the snippet filter per epoch, and the
gain), Fig. 5 (normalised temporal attention per frame, without and with the dynamic class
token), Fig. 6 (t-SNE of clip features, baseline vs NR-DFERNet), and 5-fold confusion matrices.

matplotlib and scikit-learn are imported inside the functions that use them.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nrdfer.errors import UserError
from nrdfer.io import atomic_path


def _save(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_curve(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A dvclive TSV (``step``, value) -> (steps, values)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: per-epoch curve missing; it needs train.eval_every_epoch: true "
            "(re-run the train stage)"
        )
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:]
    steps = np.array([int(r[0]) for r in rows])
    return steps, np.array([float(r[1]) for r in rows])


def fig4(live_plots: str | Path, out: str | Path, fold: int) -> None:
    """Paper Fig. 4: test WAR per epoch without and with SF, and the gain, for one fold."""
    base = Path(live_plots) / "test"
    steps, war = read_curve(base / "war.tsv")
    _, war_sf = read_curve(base / "sf_war.tsv")
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    ax1.plot(steps, 100 * war, label="without SF", color="tab:blue")
    ax1.plot(steps, 100 * war_sf, label="with SF", color="tab:red")
    ax1.set_ylabel("test WAR (%)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    gain = 100 * (war_sf - war)
    ax2.bar(steps, gain, color=np.where(gain >= 0, "tab:green", "tab:gray"))
    ax2.axhline(0, color="black", lw=0.8)
    ax2.set_ylabel("gain of SF (WAR %)")
    ax2.set_xlabel("epoch")
    ax2.grid(alpha=0.3)
    fig.suptitle(f"Fig. 4: snippet-based filter on fold {fold} (per-epoch test evaluation)")
    fig.tight_layout()
    _save(fig, out)


def fig5(
    frames: Mapping[str, np.ndarray],
    attention: Mapping[str, Mapping[str, np.ndarray]],
    labels: Mapping[str, str],
    out: str | Path,
) -> None:
    """Paper Fig. 5: for each clip, its frames and the normalised attention per frame of each
    model (e.g. "without DCT", "with DCT").

    Args:
        frames: clip key -> (T, H, W, 3) uint8 sampled test frames.
        attention: model label -> clip key -> (T', ) attention over frame tokens, T' <= T.
        labels: clip key -> caption (true class).
    """
    plt = _pyplot()
    keys = list(frames)
    models = list(attention)
    if not keys or not models:
        raise UserError("Fig. 5 needs at least one clip and one model with attention")
    t = len(next(iter(attention[models[0]].values())))
    rows = len(keys) * (1 + len(models))
    fig, axes = plt.subplots(rows, 1, figsize=(min(1.0 * t + 1, 18), 1.1 * rows), squeeze=False)
    r = 0
    for key in keys:
        strip = np.concatenate(list(frames[key][:t]), axis=1)  # (H, t*W, 3)
        ax = axes[r, 0]
        ax.imshow(strip, aspect="auto")  # fills the row, so frame i sits above weight i
        ax.set_axis_off()
        ax.set_title(f"clip {key}: {labels[key]}", fontsize=9, loc="left")
        r += 1
        for model in models:
            ax = axes[r, 0]
            weights = np.asarray(attention[model][key], dtype=float)[None, :]  # (1, t)
            ax.imshow(
                weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=max(weights.max(), 1e-6)
            )
            for i, w in enumerate(weights[0]):
                ax.text(i, 0, f"{w:.2f}", ha="center", va="center", fontsize=7, color="white")
            ax.set_yticks([0], [model], fontsize=8)
            ax.set_xticks([])
            r += 1
    fig.suptitle("Fig. 5: normalised temporal attention per frame (class-token rollout)")
    fig.tight_layout()
    _save(fig, out)


def fig6(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: Sequence[str],
    out: str | Path,
    perplexity: float,
    max_points: int,
    seed: int,
) -> None:
    """Paper Fig. 6: t-SNE of pooled clip features, one panel per model.

    Args:
        panels: title -> (features (N, D), labels (N,)).
    """
    from sklearn.manifold import TSNE

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (title, (feats, labels)) in zip(axes[0], panels.items(), strict=True):
        if len(feats) > max_points:  # evenly subsample, deterministic
            idx = np.linspace(0, len(feats) - 1, max_points).astype(int)
            feats, labels = feats[idx], labels[idx]
        perp = min(perplexity, max(2.0, (len(feats) - 1) / 3))
        emb = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(
            np.asarray(feats, dtype=np.float64)
        )
        for c, name in enumerate(classes):
            m = labels == c
            ax.scatter(emb[m, 0], emb[m, 1], s=8, color=colors(c), label=name)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(fontsize=8, markerscale=2, loc="best")
    fig.suptitle("Fig. 6: t-SNE of clip features (test folds)")
    fig.tight_layout()
    _save(fig, out)


def confusion(
    labels: np.ndarray, preds: Mapping[str, np.ndarray], classes: Sequence[str], out: str | Path,
    title: str,
) -> None:  # fmt: skip
    """Row-normalised confusion matrices (one panel per prediction set), counts annotated."""
    plt = _pyplot()
    k = len(classes)
    fig, axes = plt.subplots(1, len(preds), figsize=(5.2 * len(preds), 4.8), squeeze=False)
    for ax, (name, pred) in zip(axes[0], preds.items(), strict=True):
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (labels, pred), 1)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(k):
            for j in range(k):
                color = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, f"{100 * norm[i, j]:.0f}\n({cm[i, j]})", ha="center",
                        va="center", fontsize=7, color=color)  # fmt: skip
        ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)
