"""The noise benchmark's table and figure: UAR/WAR of each model at each N1 and N2 level.

Inputs are the run folders of the ``noise_run`` stages (one evaluation per level, each carrying
the settings of the model it evaluated) and the noise measured on each level's test clips.
Models are named by content: an NR-DFERNet run gives two rows, with its snippet-based filter
(``sf_*`` metrics) and without it (the same model's unfiltered predictions: the filter acts at
evaluation only), a run without DSF or DCT one row with its filter, a baseline one row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nrdfer.data.synth.levels import CLEAN, KINDS, level_sets
from nrdfer.errors import UserError
from nrdfer.io import atomic_open, atomic_path, read_json, write_json
from nrdfer.report.build import PAPER_NAMES

EVALUATION = "evaluation.json"


def _model_rows(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(row name, metrics prefix) for the model an evaluation file describes."""
    name = str(details["model_name"])
    if name != "nrdfernet":
        return [(PAPER_NAMES.get(name, name), "")]
    dsf, dct = bool(details["model_dsf"]), bool(details["model_dct"])
    if dsf and dct:
        return [("NR-DFERNet", "sf_"), ("NR-DFERNet w/o SF", "")]
    missing = " and ".join(x for x, on in (("DSF", dsf), ("DCT", dct)) if not on)
    return [(f"NR-DFERNet w/o {missing}", "sf_")]


def collect(runs: str | Path, levels: Sequence[float]) -> list[dict[str, Any]]:
    """One row per model and level: kind, level (%), uar, war, sf_fired_fraction (the
    filter's firing rate on that set's test clips; None for a baseline and for the row
    without the filter)."""
    runs = Path(runs)
    folders = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    if not folders:
        raise UserError(f"{runs}: no run folders; run the noise_run stages first (make noise)")
    rows = []
    for folder in folders:
        for level in level_sets(levels):
            path = folder / level.name / EVALUATION
            if not path.is_file():
                raise UserError(f"{path}: missing; re-run the noise_run stage of {folder.name}")
            details = read_json(path)
            kinds = KINDS if level.name == CLEAN else (level.kind,)
            for model, prefix in _model_rows(details):
                fired = details.get("sf_fired_fraction") if prefix else None
                for kind in kinds:  # the clean set is level 0 of both kinds
                    rows.append(
                        {
                            "model": model,
                            "kind": kind,
                            "level": round(100 * level.level),
                            "uar": float(details[f"{prefix}uar"]),
                            "war": float(details[f"{prefix}war"]),
                            "sf_fired_fraction": fired,
                            "clips": int(details["clips"]),
                        }
                    )
    return sorted(rows, key=lambda r: (r["kind"], _order(r["model"]), r["level"]))


ROW_ORDER = ("NR-DFERNet", "NR-DFERNet w/o SF", "NR-DFERNet w/o DSF", "NR-DFERNet w/o DCT")


def _order(model: str) -> tuple[int, str]:
    return (ROW_ORDER.index(model) if model in ROW_ORDER else len(ROW_ORDER), model)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def table_markdown(rows: Sequence[Mapping[str, Any]], measured: Mapping[str, Any]) -> str:
    """Two tables (N1, N2): a row per model, UAR / WAR per level, then the filter's firing
    rate and the noise measured on the test clips."""
    out = ["# Noise benchmark: UAR / WAR (%) on the test clips at each noise level", ""]
    for kind in KINDS:
        sel = [r for r in rows if r["kind"] == kind]
        levels = sorted({r["level"] for r in sel})
        name = {"n1": "N1 (target-irrelevant frames)", "n2": "N2 (short expressive window)"}
        out += [f"## {name[kind]}", ""]
        out.append("| model | " + " | ".join(f"{lv} %" for lv in levels) + " |")
        out.append("|---|" + "---|" * len(levels))
        models = sorted({r["model"] for r in sel}, key=_order)
        for model in models:
            cells = {r["level"]: r for r in sel if r["model"] == model}
            out.append(
                f"| {model} | "
                + " | ".join(
                    f"{_pct(cells[lv]['uar'])} / {_pct(cells[lv]['war'])}" if lv in cells else "–"
                    for lv in levels
                )
                + " |"
            )
        for model in models:
            cells = {r["level"]: r for r in sel if r["model"] == model}
            if any(c["sf_fired_fraction"] is not None for c in cells.values()):
                out.append(
                    f"| filter fired, {model} | "
                    + " | ".join(
                        _pct(cells[lv]["sf_fired_fraction"]) if lv in cells else "–"
                        for lv in levels
                    )
                    + " |"
                )
        out.append("")
        out.append(_measured_line(kind, levels, measured))
        out.append("")
    return "\n".join(out)


def _measured_line(kind: str, levels: Sequence[int], measured: Mapping[str, Any]) -> str:
    parts = []
    for lv in levels:
        m = measured.get(CLEAN if lv == 0 else f"{kind}_{lv}")
        if m is None:
            continue
        if kind == "n1":
            frames = f", {100 * m['n1_frame_share']:.0f} % of their frames" if m["n1_clips"] else ""
            parts.append(f"{lv} %: {m['n1_clips']}/{m['test_clips']} clips{frames}")
        else:
            parts.append(f"{lv} %: {m['n2_clips']}/{m['expressive_clips']} non-neutral clips")
    return "Measured on the test clips (synth metadata): " + "; ".join(parts) + "."


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    columns = ["model", "kind", "level", "uar", "war", "sf_fired_fraction", "clips"]
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def slug(model: str) -> str:
    """A file name for a model's plot series (``NR-DFERNet w/o SF`` -> ``NR-DFERNet_wo_SF``)."""
    return re.sub(r"[^A-Za-z0-9+-]+", "_", model.replace("w/o", "wo")).strip("_")


def write_plot_series(folder: str | Path, rows: Sequence[Mapping[str, Any]], kind: str) -> None:
    """``folder/<model>.json``: rows {level, uar} of one kind, per model (``dvc plots show``
    draws one line per file)."""
    for model in {r["model"] for r in rows if r["kind"] == kind}:
        sel = [r for r in rows if r["kind"] == kind and r["model"] == model]
        write_json(
            Path(folder) / f"{slug(model)}.json",
            [{"level": r["level"], "uar": round(100 * r["uar"], 2)} for r in sel],
        )


def plot_png(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """UAR against noise level, one line per model, N1 and N2 side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    titles = {"n1": "N1: target-irrelevant frames", "n2": "N2: short expressive window"}
    xlabels = {"n1": "test clips with N1 frames (%)", "n2": "non-neutral test clips with N2 (%)"}
    for ax, kind in zip(axes, KINDS, strict=True):
        for model in sorted({r["model"] for r in rows if r["kind"] == kind}, key=_order):
            sel = [r for r in rows if r["kind"] == kind and r["model"] == model]
            style = "-o" if model.startswith("NR-DFERNet") else "--s"
            ax.plot([r["level"] for r in sel], [100 * r["uar"] for r in sel], style, label=model)
        ax.set_title(titles[kind])
        ax.set_xlabel(xlabels[kind])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("UAR (%)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def build_noise_report(
    runs: str | Path,
    measured: str | Path,
    levels: Sequence[float],
    *,
    table: str | Path,
    csv_path: str | Path,
    figure: str | Path,
    plots: Mapping[str, str | Path],
) -> list[dict[str, Any]]:
    """Write the table (Markdown and CSV), the PNG figure and the plot series (``plots``:
    kind -> folder); returns rows."""
    rows = collect(runs, levels)
    noise = read_json(measured)
    with atomic_open(table, "w", encoding="utf-8") as fh:
        fh.write(table_markdown(rows, noise) + "\n")
    write_csv(csv_path, rows)
    plot_png(figure, rows)
    for kind, folder in plots.items():
        write_plot_series(folder, rows, kind)
    return rows


__all__ = ["build_noise_report", "collect", "slug", "table_markdown"]
