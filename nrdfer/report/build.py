"""Assemble the paper's tables and figures from the pipeline's outputs (stage ``report``).

Inputs are the directories dvc.yaml names; runs are grouped by the settings stored inside each
metrics/features file, never by file names. Missing optional inputs (a grid that was not run)
leave "–" in our columns; missing required inputs are an error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrdfer.errors import UserError
from nrdfer.io import write_text
from nrdfer.labels import DFEW
from nrdfer.params import BaseParams, ModelParams, ReportParams
from nrdfer.report import claims, figures, tables
from nrdfer.report.aggregate import group, metrics_in, read_metrics
from nrdfer.report.names import PAPER_NAMES
from nrdfer.results import EVALUATION, read_features


@dataclass(frozen=True)
class ReportInputs:
    """What the report reads (all paths from dvc.yaml)."""

    summary: Path  # 5-fold summary of the main model (aggregate stage)
    fold_details: Path  # dir of the main model's per-fold evaluations (features: confusion)
    components: Path  # dir of Table 1 runs (DSF x DCT x folds; features: Fig. 5, Fig. 6)
    snippets: Path  # dir of Table 2 evaluations (L x S x folds)
    layers: Path  # dir of Table 3 runs (M x N x folds)
    compare: Path  # dir of baseline runs on DFEW (Table 5)
    compare_afew: Path  # dir of baseline runs on AFEW val (Table 4)
    oversample: Path  # dir of NR-DFERNet* runs (Table 5)
    afew: Path | None  # AFEW val metrics of NR-DFERNet (Table 4), or None
    fig4_curves: Path  # dvclive plots dir of the Fig. 4 fold
    ferv39k: Path | None = None  # FERV39k evaluation details of NR-DFERNet, or None
    mafw: Path | None = None  # MAFW fold summary of NR-DFERNet (aggregate stage), or None


def load_features(directory: Path) -> list[dict[str, Any]]:
    """Every features npz under ``directory`` with its stored settings (``meta``)."""
    return [read_features(path) for path in sorted(Path(directory).rglob("*.npz"))]


def gmacs(model: ModelParams, **changes: Any) -> float:
    """Paper-convention GMACs of one clip of ``model`` with ``changes`` (Tables 3-5)."""
    from nrdfer.models.flops import model_cost

    return model_cost(dataclasses.replace(model, **changes)).macs_paper / 1e9


def _pick_component(feats: Sequence[Mapping[str, Any]], dsf: bool, dct: bool) -> list[Mapping]:
    return [
        f for f in feats if f["meta"].get("model_dsf") == dsf and f["meta"].get("model_dct") == dct
    ]


def _table1_runs(feats: Sequence[Mapping[str, Any]]) -> dict[tuple[bool, bool], list[Any]]:
    """(dsf, dct) -> its Table 1 evaluations (keys, labels, predictions), one per ablation fold
    in fold order; only the folds every setting has."""
    by_setting = {
        s: {str(f["meta"].get("fold")): f for f in _pick_component(feats, *s)}
        for s in claims.SETTINGS
    }
    present = [f for f in by_setting.values() if f]
    folds = sorted(set.intersection(*(set(f) for f in present))) if present else []
    return {s: [f[fold] for fold in folds] for s, f in by_setting.items() if f and folds}


def write_claims(
    path_md: Path, path_json: Path, comp_feats: Sequence[Mapping[str, Any]], fold_feats
) -> None:
    """The comparisons the README and docs may quote, computed from the predictions: Table 1's
    trainings against each other over their ablation folds, and the filter over the main
    folds (``nrdfer.report.claims``: a difference is stated only where an interval covering
    training noise excludes zero)."""
    try:
        table1 = claims.table1_claims(_table1_runs(comp_feats))
    except ValueError as exc:
        raise UserError(f"{exc}; re-run the components stages") from None
    sections = {
        "Table 1: components (UAR without SF, over the ablation folds)": table1,
        f"The snippet-based filter (UAR over {len(fold_feats)} main folds)": [
            claims.filter_claim(fold_feats)
        ],
    }
    write_text(path_md, claims.claims_markdown(sections))
    payload = {title: [c.as_dict() for c in cl] for title, cl in sections.items()}
    write_text(path_json, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def write_report(
    inputs: ReportInputs,
    tables_dir: Path,
    figures_dir: Path,
    *,
    base: BaseParams,
    model: ModelParams,
    report: ReportParams,
) -> list[Path]:
    """Write Tables 1-5 and, when given, the FERV39k and MAFW tables (Markdown + CSV), the
    claims they support (claims.md / .json) and Figs. 4-6 + confusion matrices (PNG).

    Returns the files written.
    """
    summary = read_metrics([inputs.summary])[0]
    written = write_tables(inputs, summary, model, tables_dir)

    figures.fig4(inputs.fig4_curves, figures_dir / "fig4_sf_gain.png", report.fig4_fold)
    written.append(figures_dir / "fig4_sf_gain.png")

    fold_feats = _main_fold_features(inputs.fold_details, summary)
    _confusion_figure(fold_feats, figures_dir / "confusion_dfew.png")
    written.append(figures_dir / "confusion_dfew.png")

    comp_feats = load_features(inputs.components)
    write_claims(tables_dir / "claims.md", tables_dir / "claims.json", comp_feats, fold_feats)
    written += [tables_dir / "claims.md", tables_dir / "claims.json"]
    if _fig5(comp_feats, figures_dir / "fig5_attention.png"):
        written.append(figures_dir / "fig5_attention.png")
    if _fig6(comp_feats, figures_dir / "fig6_tsne.png", report, seed=base.seed):
        written.append(figures_dir / "fig6_tsne.png")
    return written


def write_tables(
    inputs: ReportInputs, summary: Mapping[str, Any], model: ModelParams, tables_dir: Path
) -> list[Path]:
    """Read every result file the tables need (all of them before the first table is written),
    then write Tables 1-5 and the FERV39k / MAFW tables that have results (Markdown + CSV);
    ``summary`` is the main model's 5-fold summary. Returns the files written."""
    components = metrics_in(inputs.components, EVALUATION)
    snippets = metrics_in(inputs.snippets)
    layers = metrics_in(inputs.layers, EVALUATION)
    compare = metrics_in(inputs.compare, EVALUATION)
    compare_afew = metrics_in(inputs.compare_afew, EVALUATION)
    oversample = metrics_in(inputs.oversample, EVALUATION)
    afew = read_metrics([inputs.afew])[0] if inputs.afew is not None else None
    extra = {
        table: read_metrics([path])[0]
        for table, path in (
            (tables.ferv39k_table, inputs.ferv39k),
            (tables.mafw_table, inputs.mafw),
        )
        if path is not None
    }

    main_gmacs = gmacs(model)
    layer_keys = set(group(layers, lambda r: (int(r["model_M"]), int(r["model_N"]))))
    layer_gmacs = {(m, n): gmacs(model, M=m, N=n) for m, n in sorted(layer_keys)}
    baselines = group(compare, lambda r: str(r["model_name"]))
    base_names = {PAPER_NAMES.get(str(k), str(k)): v for k, v in baselines.items()}
    base_gmacs = {PAPER_NAMES.get(str(k), str(k)): gmacs(model, name=str(k)) for k in baselines}
    afew_baselines = {
        str(k): v for k, v in group(compare_afew, lambda r: str(r["model_name"])).items()
    }
    star = group(oversample, lambda r: "NR-DFERNet*").get("NR-DFERNet*")
    written = []
    for table in (
        tables.table1(components),
        tables.table2(snippets),
        tables.table3(layers, layer_gmacs),
        tables.table4(
            afew,
            {PAPER_NAMES.get(k, k): v for k, v in afew_baselines.items()},
            {"NR-DFERNet": main_gmacs, **base_gmacs},
        ),
        tables.table5(
            {"NR-DFERNet": summary, "NR-DFERNet*": star, **base_names},
            {"NR-DFERNet": main_gmacs, "NR-DFERNet*": main_gmacs, **base_gmacs},
        ),
        *(make(ours) for make, ours in extra.items()),
    ):
        table.write(tables_dir)
        written += [tables_dir / f"{table.name}.md", tables_dir / f"{table.name}.csv"]
    return written


def _main_fold_features(directory: Path, summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The features files under ``directory`` of the folds the 5-fold summary averages; none
    is an error."""
    main_folds = str(summary["fold_list"]).split(",")
    fold_feats = [f for f in load_features(directory) if str(f["meta"].get("fold")) in main_folds]
    if not fold_feats:
        raise UserError(f"{directory}: no features npz; re-run the evaluate stages")
    return fold_feats


def _confusion_figure(fold_feats: Sequence[Mapping[str, Any]], path: Path) -> None:
    """The main model's confusion matrices over all its test folds, without and with the
    filter."""
    labels = np.concatenate([f["labels"] for f in fold_feats])
    figures.confusion(
        labels,
        {
            "without SF": np.concatenate([f["pred"] for f in fold_feats]),
            "with SF": np.concatenate([f["pred_sf"] for f in fold_feats]),
        },
        DFEW.classes,
        path,
        f"NR-DFERNet on DFEW, {len(fold_feats)} test folds (row-normalised %, counts)",
    )


def _fig5(comp_feats: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Fig. 5 (attention per frame without and with the dynamic class token) from the first
    Table 1 runs with DSF, without and with DCT, when they kept attention and frames; whether
    it was drawn."""
    with_dct = _pick_component(comp_feats, dsf=True, dct=True)
    without_dct = _pick_component(comp_feats, dsf=True, dct=False)
    if not (with_dct and without_dct and "attention" in without_dct[0] and "frames" in with_dct[0]):
        return False
    a, b = without_dct[0], with_dct[0]
    # the frames evaluation kept (evaluate.fig5_clips): the first test clips of the fold
    frames = dict(zip(map(str, b["keys"]), b["frames"], strict=False))
    att = {
        "without DCT": dict(zip(map(str, a["keys"]), a["attention"], strict=True)),
        "with DCT": dict(zip(map(str, b["keys"]), b["attention"], strict=True)),
    }
    lab = dict(zip(map(str, b["keys"]), b["labels"], strict=True))
    figures.fig5(frames, att, {k: DFEW.classes[int(lab[k])] for k in frames}, path)
    return True


def _fig6(
    comp_feats: Sequence[Mapping[str, Any]], path: Path, report: ReportParams, seed: int
) -> bool:
    """Fig. 6 (t-SNE of the pooled features: the baseline without DSF and DCT against
    NR-DFERNet, over their Table 1 runs) when both were run; whether it was drawn."""
    baseline = _pick_component(comp_feats, dsf=False, dct=False)
    with_dct = _pick_component(comp_feats, dsf=True, dct=True)
    if not (baseline and with_dct):
        return False

    def panel(items):  # (N, D) features and (N,) labels of all runs of a setting
        return (
            np.concatenate([f["features"] for f in items]),
            np.concatenate([f["labels"] for f in items]),
        )

    figures.fig6(
        {"baseline (no DSF, no DCT)": panel(baseline), "NR-DFERNet": panel(with_dct)},
        DFEW.classes,
        path,
        perplexity=report.tsne_perplexity,
        max_points=report.tsne_max_points,
        seed=seed,
    )
    return True
