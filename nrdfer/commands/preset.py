"""``nrdfer preset FILE``: turn a params preset into ``dvc exp run -S`` arguments.

A preset (``presets/*.yaml``) is a flat mapping of dotted keys to values, e.g. the paper's
sizes and schedule for real DFEW/AFEW. The values are checked against params.yaml with the same
strict loader (unknown key, wrong type -> error naming the key), then printed one ``-S`` option
per key; with ``--run`` it runs ``dvc exp run`` with them itself (no shell), which is what
``make paper DFEW=/path/to/DFEW AFEW=/path/to/AFEW`` does. ``--target`` names what to run instead
of the demo pipeline: a stage or dvc.yaml, or a DVC project folder such as ``noise`` (the noise
benchmark: ``make noise PRESET=...``), where ``dvc exp run`` runs with each ``-S`` naming the
params file from there (``-S ../params.yaml:train.epochs=70``). Before running the demo pipeline, the weight files the
selected face detector and enhancer need (the paper's RetinaFace-ResNet-50 and EnlightenGAN) must
exist: a missing one stops it with one line each naming the file, where it comes from, the param
that points to it and the override that selects the offline fallback.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from nrdfer.errors import UserError
from nrdfer.params import load_all, parse_yaml, read_yaml_text
from nrdfer.preprocess.weights import check_weights, missing_weights


def read_preset(path: str) -> dict[str, object]:
    """A preset file as ``{dotted key: value}``; an error names the file if it is malformed."""
    if not Path(path).exists():
        raise UserError(f"{path}: preset not found (see presets/ in the project)")
    data = parse_yaml(read_yaml_text(path, "preset"), str(path))
    if not isinstance(data, dict) or not all(isinstance(k, str) and "." in k for k in data):
        raise UserError(f"{path}: a preset is a flat mapping of 'section.key: value' lines")
    return data


def overrides(preset: dict[str, object]) -> list[str]:
    """``key=value`` strings (values as compact JSON, which is valid YAML, without spaces)."""
    return [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in preset.items()]


def preset_overrides(path: str | Path, section: str | None = None) -> list[str]:
    """A preset file as ``key=value`` overrides; ``section`` keeps only that section's keys."""
    sets = overrides(read_preset(str(path)))
    return [s for s in sets if section is None or s.startswith(f"{section}.")]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("preset", help="preset file, e.g. presets/paper-dfew.yaml")
    parser.add_argument(
        "--params",
        default="params.yaml",
        help="params file to check against (default: ./params.yaml)",
    )
    parser.add_argument(
        "-S",
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="further overrides after the preset's, e.g. -S source.dfew_root=/data/DFEW",
    )
    parser.add_argument("--run", action="store_true", help="run `dvc exp run` with them")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        help="with --run: what `dvc exp run` runs: a stage, a dvc.yaml or a DVC project folder "
        "such as noise, run from there (default: dvc.yaml; the face-tool weights are checked "
        "only then, the noise benchmark does not use them)",
    )


def run(args: argparse.Namespace) -> int:
    preset = read_preset(args.preset)
    sets = overrides(preset) + list(args.extra)
    load_all(args.params, overrides(preset), flag=f"{args.preset}:")  # errors name the preset
    resolved = load_all(args.params, sets)  # and then the -S options after it
    argv = [a for s in sets for a in ("-S", s)]
    missing = missing_weights(resolved)
    if not args.run:
        print(" ".join(shlex.quote(a) for a in argv))
        for line in missing:
            print(f"note: {line}", file=sys.stderr)
        return 0
    if not args.target:  # the demo pipeline runs the face tools: before any work, every
        check_weights(resolved)  # missing weights file named at once
    dvc = shutil.which("dvc") or shutil.which("dvc", path=str(Path(sys.executable).parent))
    if dvc is None:
        raise UserError("dvc not found; run inside the project's environment (make venv)")
    projects = [t for t in args.target if Path(t, ".dvc").is_dir()]
    if not projects:
        return subprocess.run([dvc, "exp", "run", *args.target, *argv], check=False).returncode
    if len(args.target) > 1:
        raise UserError(f"--target {projects[0]}: a DVC project folder is run alone")
    params = Path(os.path.relpath(Path(args.params).resolve(), Path(projects[0]).resolve()))
    argv = [a for s in sets for a in ("-S", f"{params.as_posix()}:{s}")]
    return subprocess.run([dvc, "exp", "run", *argv], check=False, cwd=projects[0]).returncode
