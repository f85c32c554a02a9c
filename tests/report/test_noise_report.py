"""The noise benchmark's report (nrdfer.report.noise) on hand-made result files: results grouped
by what each evaluation file records, mean ± std over seeds, and findings stated only where the
interval over seeds excludes zero."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import pytest

from nrdfer.errors import UserError
from nrdfer.report import noise
from tests.conftest import ROOT

SEEDS = (1, 2, 3)
LEVELS = (0.0, 0.5)
FULL = {"model_name": "nrdfernet", "model_dsf": True, "model_dct": True}
NO_DSF = {"model_name": "nrdfernet", "model_dsf": False, "model_dct": True}
BASELINE = {"model_name": "resnet18_lstm", "model_dsf": True, "model_dct": True}


def evaluation(folder: Path, name: str, model: dict, kind: str, level: float, seed: int,
               uar: float, sf_uar: float | None = None) -> None:  # fmt: skip
    """A details file as the evaluate stage writes it (only the keys the report reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    sf = uar if sf_uar is None else sf_uar
    details = {**model, "noise": kind, "level": level, "seed": seed, "clips": 80,
               "uar": uar, "war": uar + 0.01, "sf_uar": sf, "sf_war": sf + 0.01,
               "sf_fired_fraction": 0.5}  # fmt: skip
    (folder / name).write_text(json.dumps(details))


def benchmark(tmp_path: Path, uars: dict[str, dict], models: dict[str, dict]) -> Path:
    """Evaluation files for ``uars[model][(kind, level)] = [uar per seed]``, under file names
    that say nothing (the report must read what each file records)."""
    root = tmp_path / "evaluations"
    n = 0
    for model, cells in uars.items():
        for (kind, level), values in cells.items():
            for seed, uar in zip(SEEDS, values, strict=True):
                n += 1
                evaluation(root / f"set{n % 3}", f"run{n}.json", models[model], kind, level,
                           seed, uar)  # fmt: skip
    return root


def cells_for(clean: list[float], noisy: list[float]) -> dict:
    return {(k, lv): v for k in ("n1", "n2") for lv, v in ((0.0, clean), (0.5, noisy))}


def test_groups_by_recorded_content_and_averages_over_seeds(tmp_path):
    root = benchmark(
        tmp_path,
        {"full": cells_for([0.80, 0.82, 0.84], [0.78, 0.80, 0.82])},
        {"full": FULL},
    )
    # left from an earlier run: a seed and a level no longer asked for are left out
    evaluation(root / "old", "x.json", FULL, "n1", 0.5, 99, 0.1)
    evaluation(root / "old", "y.json", FULL, "n2", 0.75, 1, 0.1)
    rows = noise.collect(root, LEVELS, SEEDS)
    assert {r["seed"] for r in rows} == set(SEEDS) and {r["level"] for r in rows} == {0, 50}
    assert {r["model"] for r in rows} == {"NR-DFERNet", "NR-DFERNet w/o SF"}
    cells = {(c["model"], c["kind"], c["level"]): c for c in noise.summarise(rows)}
    clean = cells[("NR-DFERNet", "n1", 0)]
    assert clean["uar"] == pytest.approx(0.82) and clean["uar_std"] == pytest.approx(0.02)
    assert clean["seeds"] == 3 and clean["sf_fired_fraction"] == pytest.approx(0.5)
    assert cells[("NR-DFERNet w/o SF", "n2", 50)]["sf_fired_fraction"] is None


def test_files_without_a_record_repeats_and_gaps_are_errors(tmp_path):
    root = benchmark(tmp_path, {"full": cells_for([0.8] * 3, [0.7] * 3)}, {"full": FULL})
    evaluation(root / "again", "dup.json", FULL, "n1", 0.5, 2, 0.7)
    with pytest.raises(UserError, match="seed 2 is also in"):
        noise.collect(root, LEVELS, SEEDS)
    (root / "again" / "dup.json").unlink()
    (root / "again" / "plain.json").write_text(json.dumps({**FULL, "uar": 0.5, "seed": 1}))
    with pytest.raises(UserError, match="plain.json: records no noise"):
        noise.collect(root, LEVELS, SEEDS)
    (root / "again" / "plain.json").unlink()
    evaluation(root / "again", "lonely.json", NO_DSF, "n1", 0.0, 1, 0.7)
    with pytest.raises(
        UserError, match="no evaluation of NR-DFERNet w/o DSF at n1 0 %, seed 2 \\(11 missing"
    ):
        noise.collect(root, LEVELS, SEEDS)
    with pytest.raises(UserError, match="no evaluation files"):
        noise.collect(tmp_path / "nothing", LEVELS, SEEDS)


def findings_for(tmp_path, full_noisy, baseline_clean, baseline_noisy):
    root = benchmark(
        tmp_path,
        {
            "full": cells_for([0.80, 0.82, 0.84], full_noisy),
            "base": cells_for(baseline_clean, baseline_noisy),
        },
        {"full": FULL, "base": BASELINE},
    )
    findings = noise.drop_claims(noise.collect(root, LEVELS, SEEDS))
    return {(f["b"], f["kind"]): f for f in findings}


def test_more_robust_only_where_the_interval_excludes_zero(tmp_path):
    # NR-DFERNet loses 2 points at every seed, the baseline 20 +- 1: a clear difference
    found = findings_for(tmp_path, [0.78, 0.80, 0.82], [0.70, 0.72, 0.74], [0.51, 0.52, 0.53])
    f = found[("ResNet18+LSTM", "n2")]
    assert f["verdict"] == "better" and f["low"] > 0
    assert f["drop_a"] == pytest.approx(2.0) and f["drop_b"] == pytest.approx(20.0)
    assert f["statement"].startswith("NR-DFERNet is more robust than ResNet18+LSTM to N2")
    assert "t-interval over 3 seeds" in f["statement"]
    # NR-DFERNet without its filter: the same runs, the same drop at every seed: no difference
    same = found[("NR-DFERNet w/o SF", "n1")]
    assert same["verdict"] == "within noise" and "within noise" in same["statement"]


def test_a_difference_inside_the_seed_spread_is_within_noise(tmp_path):
    # drops 2, 2, 2 vs 0, 9, 1: the baseline loses more on average (3.3 vs 2.0), but its seeds
    # disagree so much that the interval holds 0
    found = findings_for(tmp_path, [0.78, 0.80, 0.82], [0.70, 0.72, 0.74], [0.70, 0.63, 0.73])
    f = found[("ResNet18+LSTM", "n1")]
    assert f["difference"] == pytest.approx(4 / 3, abs=1e-3)
    assert f["low"] < 0 < f["high"] and f["verdict"] == "within noise"
    assert f["statement"].endswith("within noise.") and "more robust" not in f["statement"]


def test_less_robust_is_said_too(tmp_path):
    found = findings_for(tmp_path, [0.60, 0.61, 0.63], [0.70, 0.72, 0.74], [0.69, 0.71, 0.73])
    f = found[("ResNet18+LSTM", "n2")]
    assert f["verdict"] == "worse" and f["statement"].startswith("NR-DFERNet is less robust")


def test_report_files(tmp_path):
    root = benchmark(
        tmp_path,
        {
            "full": cells_for([0.80, 0.82, 0.84], [0.78, 0.80, 0.82]),
            "base": cells_for([0.70, 0.72, 0.74], [0.51, 0.52, 0.53]),
        },
        {"full": FULL, "base": BASELINE},
    )
    sets = tmp_path / "test_sets"
    for name, rates, n1 in (("a", (0, 0), 0), ("b", (0.5, 0), 4), ("c", (0, 0.5), 0)):
        clips = [{"test_fold": 1, "class": "Happy" if i % 2 else "Neutral", "frames": 10,
                  "n1_kind": "cut" if i < n1 else None, "n1_frames": [0, 1, 2, 3] if i < n1 else [],
                  "n2_window": [2, 4] if rates[1] and i % 2 and i < 6 else None}
                 for i in range(8)]  # fmt: skip
        (sets / name).mkdir(parents=True)
        meta = {"params": {"test_n1_rate": rates[0], "test_n2_rate": rates[1]}, "dfew": clips}
        (sets / name / "synth_meta.json").write_text(json.dumps(meta))
    out = tmp_path / "out"
    findings = noise.build_noise_report(
        root, sets, LEVELS, SEEDS,
        table=out / "table.md", csv_path=out / "table.csv", claims=out / "claims.json",
        figure=out / "fig.png", plots={"n1": out / "n1", "n2": out / "n2"},
    )  # fmt: skip
    table = (out / "table.md").read_text()
    assert "| NR-DFERNet | 82.0 ± 2.0 | 80.0 ± 2.0 |" in table
    assert "50 %: 4/8 clips, 40 % of their frames" in table and "50 %: 3/4 non-neutral" in table
    for f in findings:
        assert f"- {f['statement']}" in table
    assert json.loads((out / "claims.json").read_text()) == findings
    with open(out / "table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["seeds"] for r in rows} == {"3"} and len(rows) == 3 * 2 * 2
    assert (out / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    series = json.loads((out / "n2" / "ResNet18+LSTM.json").read_text())
    assert series[0] == {"level": 0, "uar": 72.0, "uar_std": 2.0}


def test_the_report_reads_result_files_only():
    """Editing the data generator, a model or the engine does not re-run the report: it
    imports neither nrdfer.data nor nrdfer.engine nor nrdfer.models."""
    tree = ast.parse((ROOT / "nrdfer" / "report" / "noise.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    for module in imported:
        assert not module.startswith(("nrdfer.data", "nrdfer.engine", "nrdfer.models")), module
