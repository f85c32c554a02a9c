"""Hand-made result files for the report tests: flat evaluation details as the evaluate and
ablate stages write them (only the keys the report reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(path: Path, **fields: Any) -> Path:
    """One flat JSON result file at ``path`` holding ``fields``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))
    return path


def evaluation(uar: float, war: float, sf: float = 0.0, **settings: Any) -> dict[str, Any]:
    """An evaluation's metrics: UAR/WAR, with the filter ``sf`` higher, plus ``settings``."""
    return {"uar": uar, "war": war, "sf_uar": uar + sf, "sf_war": war + sf, **settings}
