"""What a code edit costs in re-runs: dvc.yaml's per-stage code deps vs the whole package.

Each stage of dvc.yaml lists the files and folders of ``nrdfer/`` and ``stages/`` its script
imports (tests/test_dvc_consistency.py checks the import closure). The alternative, declaring
the whole ``nrdfer`` folder as a dep of every stage, cannot go stale either, but then any edit
re-runs every stage. For each module of ``nrdfer/`` this script counts the stages an edit of it
makes stale under both declarations and what re-running them costs, timed from a reproduced
pipeline: a stage's duration is the time between its outputs' modification and those of the
stage DVC ran before it (dvc.lock order; run after a full ``dvc repro``, e.g. ``make demo``).

    python benchmarks/code_deps.py [--project .] [--out benchmarks/results/code_deps.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path, PurePosixPath

import yaml


def stage_deps(project: Path) -> dict[str, list[PurePosixPath]]:
    """Stage name -> its file deps, as DVC resolves dvc.yaml (foreach/matrix expanded)."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        return {
            s.addressing: [
                PurePosixPath(d.def_path)
                for d in s.deps
                if d.__class__.__name__ != "ParamsDependency"
            ]
            for s in repo.index.stages
        }


def newest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
    return max(times, default=0.0)


def stage_seconds(project: Path) -> dict[str, float]:
    """Stage -> seconds it took in the last ``dvc repro``, from its outputs' modification times
    in dvc.lock's order (the order DVC ran them in)."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    ends = {
        name: max(newest_mtime(project / out["path"]) for out in entry.get("outs", []))
        for name, entry in lock.items()
        if entry.get("outs")
    }
    order = sorted(ends, key=ends.get)
    seconds, previous = {}, None
    for name in order:
        seconds[name] = 0.0 if previous is None else ends[name] - ends[previous]
        previous = name
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=".", help="a reproduced project (dvc.lock, outputs)")
    parser.add_argument("--out", default="benchmarks/results/code_deps.json")
    args = parser.parse_args()
    project = Path(args.project).resolve()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    deps = stage_deps(project)
    seconds = stage_seconds(project)
    total = sum(seconds.values())
    rows = []
    for module in sorted((project / "nrdfer").rglob("*.py")):
        rel = PurePosixPath(module.relative_to(project).as_posix())
        stale = sorted(s for s, d in deps.items() if any(rel == p or p in rel.parents for p in d))
        rows.append(
            {
                "module": str(rel),
                "stages": len(stale),
                "seconds": round(sum(seconds.get(s, 0.0) for s in stale), 1),
                "stale": stale,
            }
        )
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
        "project": project.name,
        "stages": len(deps),
        "pipeline_seconds": round(total, 1),
        "whole_package": {"stages": len(deps), "seconds": round(total, 1)},
        "per_stage_deps": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(deps)} stages, {total:.0f} s in the last dvc repro (= any edit, whole package)")
    print(f"{'module':45s} {'stages':>6s} {'seconds':>8s}")
    for row in rows:
        print(f"{row['module']:45s} {row['stages']:6d} {row['seconds']:8.1f}")


if __name__ == "__main__":
    main()
