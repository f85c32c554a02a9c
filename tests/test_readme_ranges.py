"""The README's demo table is the stability benchmark's output, not hand-written numbers: each
cell is the min - max over the numeric variants in benchmarks/results/stability.json."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

ROWS = {  # README row label (start) -> where its UAR and WAR ranges live in stability.json
    "NR-DFERNet, DFEW 5-fold mean, with SF": ("five_fold_mean_range", "sf_uar", "sf_war"),
    "the same without SF": ("five_fold_mean_range", "uar", "war"),
    "best epoch on the test fold, with SF": (
        "five_fold_mean_range",
        "best_on_test_sf_uar",
        "best_on_test_sf_war",
    ),
    "AFEW val": ("per_run/afew/val", "sf_uar", "sf_war"),
}


def _section(results: dict, where: str) -> dict:
    if where.startswith("per_run/"):
        return results["per_run"][where.removeprefix("per_run/")]
    return results[where]


def _cell(span: dict) -> str:
    return f"{span['min']:.1f} – {span['max']:.1f}"


def test_readme_demo_table_is_the_stability_benchmark():
    results = json.loads((ROOT / "benchmarks/results/stability.json").read_text())
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]]
        for line in (ROOT / "README.md").read_text().splitlines()
        if re.match(r"^\| \S", line)
    }
    for label, (where, uar, war) in ROWS.items():
        found = [cells for name, cells in rows.items() if name.startswith(label)]
        assert found, f"README: no demo table row starting {label!r}"
        section = _section(results, where)
        assert found[0] == [_cell(section[uar]), _cell(section[war])], label
