"""The noise benchmark's report: UAR of each model at each N1 and N2 level, mean ± std over
training seeds, and the findings, computed from intervals over the seeds (docs/noise.md).

It reads result files only: the evaluation files of the ``evaluate`` stages and the test sets'
``synth_meta.json``. An evaluation file records what it evaluated (the test set's ``noise``
kind and ``level``, the model's ``model_*`` settings and training ``seed``), so results are
grouped by content, never by file name. An NR-DFERNet run gives two rows: with its
snippet-based filter (``sf_*`` metrics) and without it (the same model's unfiltered
predictions: the filter acts at evaluation only); a run without DSF or DCT one row with its
filter; a baseline one row.

A finding compares NR-DFERNet with each other row through :func:`nrdfer.report.claims.compare`:
per seed, the drop of UAR from the clean test set to a level; the interval is the Student-t
interval over seeds of "drop of the other model minus drop of NR-DFERNet". NR-DFERNet is
"more robust" (or "less robust") only where that interval excludes zero; otherwise the
difference is "within noise".
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nrdfer.errors import UserError
from nrdfer.io import atomic_open, atomic_path, read_json, write_json
from nrdfer.report.claims import Claim, compare, spread_interval
from nrdfer.report.names import PAPER_NAMES
from nrdfer.results import read_flat

KINDS = ("n1", "n2")
KIND_NAMES = {"n1": "N1 (target-irrelevant frames)", "n2": "N2 (short expressive window)"}
REFERENCE = "NR-DFERNet"
ROW_ORDER = ("NR-DFERNet", "NR-DFERNet w/o SF", "NR-DFERNet w/o DSF", "NR-DFERNet w/o DCT")
META_FILE = "synth_meta.json"


def model_rows(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(row name, metrics prefix) for the model an evaluation file describes."""
    name = str(details["model_name"])
    if name != "nrdfernet":
        return [(PAPER_NAMES.get(name, name), "")]
    dsf, dct = bool(details["model_dsf"]), bool(details["model_dct"])
    if dsf and dct:
        return [(REFERENCE, "sf_"), ("NR-DFERNet w/o SF", "")]
    missing = " and ".join(x for x, on in (("DSF", dsf), ("DCT", dct)) if not on)
    return [(f"NR-DFERNet w/o {missing}", "sf_")]


def pct(level: float) -> int:
    """A level in [0, 1] as the whole percentage the tables print."""
    return round(100 * float(level))


def collect(
    evaluations: str | Path, levels: Sequence[float], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """One row per model, kind, level (%) and seed: uar, war, sf_fired_fraction (the filter's
    firing rate; None for a baseline and for the row without the filter), clips.

    Every ``*.json`` under ``evaluations`` is read; results of a level or seed that is not
    asked for (left from an earlier run) are left out. A file that does not record its noise
    kind, level and seed, a result found twice, or a model that lacks a (kind, level, seed)
    that another has is an error naming it.
    """
    files = sorted(Path(evaluations).rglob("*.json")) if Path(evaluations).is_dir() else []
    if not files:
        raise UserError(f"{evaluations}: no evaluation files; run the benchmark (make noise)")
    wanted_levels, wanted_seeds = {pct(x) for x in levels}, {int(s) for s in seeds}
    rows: dict[tuple, dict[str, Any]] = {}
    for path in files:
        details = read_flat(path, "evaluation details", "re-run its evaluate stage (make noise)")
        missing = [k for k in ("noise", "level", "seed", "model_name") if k not in details]
        if missing or details["noise"] not in KINDS:
            raise UserError(
                f"{path}: records no {missing[0] if missing else 'noise kind n1/n2'}; it is not "
                "a noise benchmark evaluation (re-run its evaluate stage: make noise)"
            )
        level, seed = pct(details["level"]), int(details["seed"])
        if level not in wanted_levels or seed not in wanted_seeds:
            continue
        for model, prefix in model_rows(details):
            key = (model, details["noise"], level, seed)
            if key in rows:
                raise UserError(
                    f"{path}: {model}, {details['noise']} {level} %, seed {seed} is also in "
                    f"{rows[key]['path']}; remove the stale one"
                )
            rows[key] = {
                "model": model,
                "kind": details["noise"],
                "level": level,
                "seed": seed,
                "uar": float(details[f"{prefix}uar"]),
                "war": float(details[f"{prefix}war"]),
                "sf_fired_fraction": details.get("sf_fired_fraction") if prefix else None,
                "clips": int(details["clips"]),
                "path": str(path),
            }
    cells = {(k, lv, s) for k in KINDS for lv in wanted_levels for s in wanted_seeds}
    for model in sorted({k[0] for k in rows}, key=order):
        lacking = sorted(c for c in cells if (model, *c) not in rows)
        if lacking:
            kind, level, seed = lacking[0]
            raise UserError(
                f"{evaluations}: no evaluation of {model} at {kind} {level} %, seed {seed} "
                f"({len(lacking)} missing); re-run the benchmark (make noise)"
            )
    return sorted(
        rows.values(), key=lambda r: (r["kind"], order(r["model"]), r["level"], r["seed"])
    )


def order(model: str) -> tuple[int, str]:
    return (ROW_ORDER.index(model) if model in ROW_ORDER else len(ROW_ORDER), model)


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model, kind and level: mean and standard deviation (n - 1) over seeds of UAR and
    WAR, the mean firing rate of the filter, the number of seeds."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["kind"], r["level"]), []).append(r)
    out = []
    for (model, kind, level), sel in groups.items():
        cell: dict[str, Any] = {"model": model, "kind": kind, "level": level, "seeds": len(sel)}
        for key in ("uar", "war"):
            values = np.array([r[key] for r in sel], dtype=float)
            cell[key] = float(values.mean())
            cell[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        fired = [r["sf_fired_fraction"] for r in sel if r["sf_fired_fraction"] is not None]
        cell["sf_fired_fraction"] = float(np.mean(fired)) if fired else None
        cell["clips"] = sel[0]["clips"]
        out.append(cell)
    return sorted(out, key=lambda c: (c["kind"], order(c["model"]), c["level"]))


def _per_seed(rows: Sequence[Mapping[str, Any]], model: str, kind: str) -> dict[int, dict]:
    """seed -> level -> UAR of one model under one kind of noise."""
    out: dict[int, dict] = {}
    for r in rows:
        if r["model"] == model and r["kind"] == kind:
            out.setdefault(r["seed"], {})[r["level"]] = r["uar"]
    return out


def drop_claims(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Findings: for each kind, each level above 0 and each model B other than NR-DFERNet,
    the claim about "NR-DFERNet is more robust than B": the interval over seeds of
    drop(B) - drop(NR-DFERNet), where a model's drop is its UAR on the clean test set minus
    its UAR at the level, both of the same training run. Each finding is the claim's
    ``as_dict()`` plus ``kind``, ``level``, the mean drops and the sentence ``statement``."""
    models = sorted({r["model"] for r in rows}, key=order)
    if REFERENCE not in models:
        return []
    out = []
    for kind in KINDS:
        levels = sorted({r["level"] for r in rows if r["kind"] == kind and r["level"] > 0})
        ref = _per_seed(rows, REFERENCE, kind)
        for level in levels:
            for other in (m for m in models if m != REFERENCE):
                theirs = _per_seed(rows, other, kind)
                seeds = sorted(set(ref) & set(theirs))
                drop_ref = [ref[s][0] - ref[s][level] for s in seeds]
                drop_other = [theirs[s][0] - theirs[s][level] for s in seeds]
                if len(seeds) < 2:
                    continue  # one seed has no spread: no claim
                interval = spread_interval(
                    [b - a for a, b in zip(drop_ref, drop_other, strict=True)],
                    f"{len(seeds)} seeds",
                )
                claim = compare(REFERENCE, other, interval, metric=f"UAR drop to {level} % {kind}")
                out.append(
                    {
                        **claim.as_dict(),
                        "kind": kind,
                        "level": level,
                        "drop_a": round(100 * float(np.mean(drop_ref)), 4),
                        "drop_b": round(100 * float(np.mean(drop_other)), 4),
                        "statement": statement(claim, kind, level, drop_ref, drop_other),
                    }
                )
    return out


def statement(
    claim: Claim, kind: str, level: int, drop_a: Sequence[float], drop_b: Sequence[float]
) -> str:
    """The sentence a finding prints: "more robust" / "less robust" only where the claim's
    interval excludes zero, else "within noise"."""
    i = claim.interval
    a, b = 100 * float(np.mean(drop_a)), 100 * float(np.mean(drop_b))
    how = (
        f"from clean to {level} % {kind.upper()} {claim.a} loses {a:.1f} UAR points, "
        f"{claim.b} {b:.1f} (difference {100 * i.estimate:+.1f}, 95 % interval "
        f"{100 * i.low:+.1f} to {100 * i.high:+.1f}, {i.method})"
    )
    if claim.verdict == "within noise":
        return f"{claim.a} vs {claim.b}: {how}: within noise."
    word = "more" if claim.verdict == "better" else "less"
    return f"{claim.a} is {word} robust than {claim.b} to {kind.upper()}: {how}."


def measured_noise(test_sets: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """(kind, level %) -> the noise of a test set's clips, from its ``synth_meta.json`` (which
    records the rates it was written with): clips with N1 frames and the mean share of their
    frames, non-neutral clips with an N2 window. The clean set is level 0 of both kinds."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(Path(test_sets).rglob(META_FILE)):
        meta = read_json(path)
        params = meta["params"]
        test = [m for m in meta["dfew"] if m["test_fold"] == 1]
        n1 = [m for m in test if m["n1_kind"] is not None]
        expressive = [m for m in test if m["class"] != "Neutral"]
        measured = {
            "test_clips": len(test),
            "n1_clips": len(n1),
            "n1_frame_share": (
                sum(len(m["n1_frames"]) / m["frames"] for m in n1) / len(n1) if n1 else 0.0
            ),
            "expressive_clips": len(expressive),
            "n2_clips": sum(m["n2_window"] is not None for m in expressive),
        }
        rates = {k: float(params[f"test_{k}_rate"]) for k in KINDS}
        for kind in KINDS:
            if rates[kind] > 0 or not any(rates.values()):
                out[(kind, pct(rates[kind]))] = measured
    return out


def _cell(c: Mapping[str, Any] | None, key: str = "uar") -> str:
    if c is None:
        return "–"
    std = c[f"{key}_std"]
    return f"{100 * c[key]:.1f}" + ("" if math.isnan(std) else f" ± {100 * std:.1f}")


def table_markdown(
    cells: Sequence[Mapping[str, Any]],
    findings: Sequence[Mapping[str, Any]],
    measured: Mapping[tuple[str, int], Mapping[str, Any]],
) -> str:
    """Per kind: UAR mean ± std over seeds per model and level, the filter's firing rate, the
    noise measured on the test clips; then the findings."""
    seeds = sorted({c["seeds"] for c in cells})
    out = [
        "# Noise benchmark: UAR (%) on the test clips at each noise level",
        "",
        f"Mean ± standard deviation over {'/'.join(map(str, seeds))} training seeds "
        "(WAR: table.csv).",
        "",
    ]
    for kind in KINDS:
        sel = [c for c in cells if c["kind"] == kind]
        levels = sorted({c["level"] for c in sel})
        out += [f"## {KIND_NAMES[kind]}", ""]
        out.append("| model | " + " | ".join(f"{lv} %" for lv in levels) + " |")
        out.append("|---|" + "---|" * len(levels))
        models = sorted({c["model"] for c in sel}, key=order)
        by = {(c["model"], c["level"]): c for c in sel}
        for model in models:
            out.append(
                f"| {model} | " + " | ".join(_cell(by.get((model, lv))) for lv in levels) + " |"
            )
        for model in models:
            fired = [by.get((model, lv), {}).get("sf_fired_fraction") for lv in levels]
            if any(f is not None for f in fired):
                shown = ["–" if f is None else f"{100 * f:.1f}" for f in fired]
                out.append(f"| filter fired (%), {model} | " + " | ".join(shown) + " |")
        out += ["", _measured_line(kind, levels, measured), ""]
    out += ["## Findings (computed: a difference is stated only where its interval excludes 0)", ""]
    out += [f"- {f['statement']}" for f in findings] or ["- none: fewer than two seeds"]
    return "\n".join(out) + "\n"


def _measured_line(
    kind: str, levels: Sequence[int], measured: Mapping[tuple[str, int], Mapping[str, Any]]
) -> str:
    parts = []
    for lv in levels:
        m = measured.get((kind, lv))
        if m is None:
            continue
        if kind == "n1":
            frames = f", {100 * m['n1_frame_share']:.0f} % of their frames" if m["n1_clips"] else ""
            parts.append(f"{lv} %: {m['n1_clips']}/{m['test_clips']} clips{frames}")
        else:
            parts.append(f"{lv} %: {m['n2_clips']}/{m['expressive_clips']} non-neutral clips")
    return "Measured on the test clips (synth metadata): " + "; ".join(parts) + "."


CSV_COLUMNS = ["model", "kind", "level", "seeds", "uar", "uar_std", "war", "war_std",
               "sf_fired_fraction", "clips"]  # fmt: skip


def write_csv(path: str | Path, cells: Sequence[Mapping[str, Any]]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(cells)


def slug(model: str) -> str:
    """A file name for a model's plot series (``NR-DFERNet w/o SF`` -> ``NR-DFERNet_wo_SF``)."""
    return re.sub(r"[^A-Za-z0-9+-]+", "_", model.replace("w/o", "wo")).strip("_")


def write_plot_series(folder: str | Path, cells: Sequence[Mapping[str, Any]], kind: str) -> None:
    """``folder/<model>.json``: rows {level, uar, uar_std} (mean and std over seeds, %) of one
    kind, per model (``dvc plots show`` draws one line per file)."""
    for model in {c["model"] for c in cells if c["kind"] == kind}:
        sel = [c for c in cells if c["kind"] == kind and c["model"] == model]
        write_json(
            Path(folder) / f"{slug(model)}.json",
            [
                {
                    "level": c["level"],
                    "uar": round(100 * c["uar"], 2),
                    "uar_std": None if math.isnan(c["uar_std"]) else round(100 * c["uar_std"], 2),
                }
                for c in sel
            ],
        )


def plot_png(path: str | Path, cells: Sequence[Mapping[str, Any]]) -> None:
    """UAR against noise level, one line per model with error bars (± std over seeds), N1 and
    N2 side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    xlabels = {"n1": "test clips with N1 frames (%)", "n2": "non-neutral test clips with N2 (%)"}
    for ax, kind in zip(axes, KINDS, strict=True):
        for model in sorted({c["model"] for c in cells if c["kind"] == kind}, key=order):
            sel = [c for c in cells if c["kind"] == kind and c["model"] == model]
            std = [0.0 if math.isnan(c["uar_std"]) else 100 * c["uar_std"] for c in sel]
            ax.errorbar(
                [c["level"] for c in sel],
                [100 * c["uar"] for c in sel],
                yerr=std,
                fmt="-o" if model.startswith("NR-DFERNet") else "--s",
                capsize=3,
                label=model,
            )
        ax.set_title(KIND_NAMES[kind])
        ax.set_xlabel(xlabels[kind])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("UAR (%), mean ± std over seeds")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def build_noise_report(
    evaluations: str | Path,
    test_sets: str | Path,
    levels: Sequence[float],
    seeds: Sequence[int],
    *,
    table: str | Path,
    csv_path: str | Path,
    claims: str | Path,
    figure: str | Path,
    plots: Mapping[str, str | Path],
) -> list[dict[str, Any]]:
    """Write the table (Markdown with the findings, CSV), the findings (JSON), the PNG figure
    and the plot series (``plots``: kind -> folder); returns the findings."""
    rows = collect(evaluations, levels, seeds)
    cells = summarise(rows)
    findings = drop_claims(rows)
    with atomic_open(table, "w", encoding="utf-8") as fh:
        fh.write(table_markdown(cells, findings, measured_noise(test_sets)))
    write_csv(csv_path, cells)
    write_json(claims, findings)
    plot_png(figure, cells)
    for kind, folder in plots.items():
        write_plot_series(folder, cells, kind)
    return findings


__all__ = [
    "build_noise_report",
    "collect",
    "drop_claims",
    "measured_noise",
    "model_rows",
    "slug",
    "statement",
    "summarise",
    "table_markdown",
]
