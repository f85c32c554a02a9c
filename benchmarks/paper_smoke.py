"""Smoke run of the paper path (`make paper`) at the paper's sizes on generated data, timed.

What `make paper DFEW=... AFEW=...` runs, ingest to report, on a small generated data set in the
real layouts and sizes: DFEW-layout clips of 224 x 224 JPEG frames (12-120 frames per clip) and
AFEW-layout 720 x 576 25 fps videos. The command is the same (`nrdfer preset presets/paper.yaml
... --run`, i.e. `dvc exp run` with the paper's overrides), with the smoke overlay
``presets/smoke.yaml`` after it (one epoch, one fold, the smallest grids) and weights files for
RetinaFace-ResNet-50 and EnlightenGAN made from randomly initialised modules saved in the official
key layout (``module.`` prefix), so the real loaders, detectors and enhancers run (random weights:
the faces they find and the numbers are meaningless; the code paths and sizes are the point).

The project (dvc.yaml, stages, nrdfer, params.yaml, presets) is copied to a work folder, made a
git + DVC repository, and run there; checks then read the outputs (every table, AFEW face crops
of 112 px, DFEW shards at a 128-px short side, the model at 112 px) and the seconds are written to
benchmarks/results/paper_smoke.json.

    python benchmarks/paper_smoke.py [--work DIR] [--out benchmarks/results/paper_smoke.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True)
    if proc.returncode != 0:
        sys.exit(f"paper smoke: {' '.join(cmd[:4])} ... failed with exit status {proc.returncode}")


def copy_project(dst: Path, env: dict[str, str]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", "params.yaml"):
        shutil.copy(ROOT / name, dst / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("stages", "nrdfer", "presets"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    (dst / ".gitignore").write_text("/models/external/\n")
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "smoke@example.invalid"],
                ["git", "config", "user.name", "smoke"], ["dvc", "init", "-q"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "paper smoke"]):  # fmt: skip
        sh(cmd, dst, env)


def official_weights(directory: Path) -> dict[str, Path]:
    """Randomly initialised RetinaFace-ResNet-50 and EnlightenGAN generator saved as the official
    files are (``module.`` prefixed keys, no ``num_batches_tracked``)."""
    import torch

    from nrdfer.preprocess.enhance import EnlightenGANGenerator
    from nrdfer.preprocess.retinaface_r50 import RetinaFaceR50Net

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    paths = {}
    for param, net, name in (
        ("detect_align.resnet50_weights", RetinaFaceR50Net(), "Resnet50_Final.pth"),
        ("enhance.enlightengan_weights", EnlightenGANGenerator(), "200_net_G_A.pth"),
    ):
        state = {
            f"module.{k}": v
            for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")
        }
        torch.save(state, directory / name)
        paths[param] = directory / name
    return paths


def check_outputs(project: Path) -> dict[str, object]:
    """The outputs `make paper` promises, at the paper's sizes."""
    import cv2

    from nrdfer.io import read_json
    from nrdfer.model_file import load_model_file

    problems = []
    for name in (*(f"table{k}" for k in range(1, 6)), "ferv39k", "mafw"):
        if not (project / f"reports/tables/{name}.md").is_file():
            problems.append(f"reports/tables/{name}.md missing")
    faces = sorted((project / "data/interim/afew/enhanced").rglob("*.jpg"))
    sides = {cv2.imread(str(p)).shape[:2] for p in faces[:50]}
    if sides != {(112, 112)}:
        problems.append(f"AFEW face crops are {sides}, not 112 x 112")
    spec = read_json(project / "data/shards/dfew/index.json").get("spec", {})
    if spec.get("short_side") != 128:
        problems.append(f"DFEW shards spec {spec}, not a 128-px short side")
    for path in ("dfew/fold1", "ferv39k", "mafw/fold1"):
        model = load_model_file(project / f"models/{path}/model.pt")["model_params"]
        if (model["image_size"], model["frames"], model["M"], model["N"]) != (112, 16, 2, 4):
            problems.append(f"the {path} model is not the paper's: {model}")
    names = ("dfew", "afew", "ferv39k", "mafw")
    metrics = {name: read_json(project / f"metrics/{name}.json") for name in names}
    return {"problems": problems, "afew_face_crops": len(faces), "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/paper_smoke.json"))
    args = parser.parse_args()
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="paper_smoke_"))
    env.setdefault("DVC_SITE_CACHE_DIR", str(work / ".dvc-site-cache"))
    project = work / "project"
    try:
        t0 = time.perf_counter()
        copy_project(project, env)
        weights = official_weights(project / "models/external")
        from nrdfer.commands.preset import preset_overrides

        sets = preset_overrides(ROOT / "presets/smoke.yaml")
        sets += [f"{param}={path}" for param, path in weights.items()]
        cmd = [
            "nrdfer",
            "preset",
            "presets/paper.yaml",
            *(a for s in sets for a in ("-S", s)),
            "--run",
        ]
        t1 = time.perf_counter()
        sh(cmd, project, env)
        t2 = time.perf_counter()
        checks = check_outputs(project)
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU used",
            "load_average_at_end": os.getloadavg()[0],
            "setup_seconds": round(t1 - t0, 1),
            "pipeline_seconds": round(t2 - t1, 1),
            **checks,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        if checks["problems"]:
            sys.exit("paper smoke: " + "; ".join(checks["problems"]))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
