"""dvc.yaml <-> stage scripts <-> params.yaml.

For every stage DVC resolves (foreach/matrix expanded by DVC itself):
- the params sections it declares are exactly the sections its script loads (``PARAMS``);
- every path argument the script writes is declared in outs/metrics/plots, every declared
  output is written through an argument, and every path it reads is a declared dependency;
- no stage script spells a data path itself.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from nrdfer.params import SECTIONS
from tests.conftest import ROOT

STAGES_DIR = ROOT / "stages"


def load_stage_module(script: str):
    path = ROOT / script
    sys.path.insert(0, str(STAGES_DIR))
    try:
        spec = importlib.util.spec_from_file_location(f"_stage_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(STAGES_DIR))
    return module


def resolved_stages(project_copy):
    from dvc.repo import Repo

    with Repo(str(project_copy)) as repo:
        out = []
        for stage in repo.index.stages:
            params = set()
            for dep in stage.deps:
                if dep.__class__.__name__ == "ParamsDependency":
                    params.update(p.split(".")[0] for p in dep.params)
            deps = [
                PurePosixPath(d.def_path)
                for d in stage.deps
                if d.__class__.__name__ != "ParamsDependency"
            ]
            outs = [PurePosixPath(o.def_path) for o in stage.outs]
            out.append((stage.addressing, stage.cmd, params, deps, outs))
        return out


def covered(path: PurePosixPath, declared: list[PurePosixPath]) -> bool:
    return any(path == d or d in path.parents for d in declared)


def interpolated_sections(stage_name: str) -> set[str]:
    """Params sections a stage's definition uses through ``${section.key}`` (values passed on
    the command line or used as paths): DVC tracks them, the script doesn't load them."""
    base = stage_name.rsplit(":", 1)[-1].split("@")[0]
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][base]
    return set(re.findall(r"\$\{(\w+)\.", str(raw))) - {"item"}


def test_stages_match_scripts(project_copy):
    stages = resolved_stages(project_copy)
    assert stages, "dvc.yaml has no stages"
    for name, cmd, params, deps, outs in stages:
        argv = shlex.split(cmd)
        assert argv[0] == "python" and argv[1].startswith("stages/"), (
            f"{name}: cmd must be 'python stages/<script>.py ...', got {cmd!r}"
        )
        module = load_stage_module(argv[1])
        params = params - (interpolated_sections(name) - set(module.PARAMS))
        assert set(module.PARAMS) == params, (
            f"{name}: dvc.yaml declares params {sorted(params)} but {argv[1]} loads "
            f"{sorted(module.PARAMS)}"
        )
        assert set(module.PARAMS) <= set(SECTIONS)
        parser = module.build_parser()
        args = parser.parse_args(argv[2:])
        for override in args.overrides:
            assert override.split(".")[0] in module.PARAMS, (
                f"{name}: --set {override} changes a section the stage does not declare"
            )
        roles = parser._nrdfer_roles
        written = []
        for dest, role in roles.items():
            values = getattr(args, dest)
            values = values if isinstance(values, list) else [values]
            for value in values:
                if value is None:
                    continue
                path = PurePosixPath(value)
                if role == "out":
                    written.append(path)
                    assert covered(path, outs), f"{name}: writes {path} not declared in outs"
                else:
                    assert covered(path, deps + outs) or covered(path, deps), (
                        f"{name}: reads {path} not declared in deps"
                    )
        for o in outs:
            assert any(o == w or w in o.parents for w in written), (
                f"{name}: declared output {o} is not written through any output argument"
            )
        assert PurePosixPath(argv[1]) in deps, f"{name}: its script {argv[1]} must be a dep"


PATHLIKE_SUFFIXES = (".json", ".csv", ".parquet", ".tar", ".pt", ".pth", ".png", ".md", ".onnx")


@pytest.mark.parametrize("script", sorted(p.name for p in STAGES_DIR.glob("*.py")))
def test_stage_scripts_spell_no_paths(script):
    tree = ast.parse((STAGES_DIR / script).read_text())
    doc_nodes = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in doc_nodes:
                continue
            s = node.value
            assert not s.startswith(("data/", "models/", "reports/", "results/")), (
                f"{script}: path literal {s!r}; pass it from dvc.yaml instead"
            )
            assert not (s.endswith(PATHLIKE_SUFFIXES) and ("/" in s or " " not in s)), (
                f"{script}: file name literal {s!r}; pass it from dvc.yaml instead"
            )


def test_stage_scripts_are_thin():
    """Stage scripts don't read YAML or environment themselves (only via nrdfer.params)."""
    for path in STAGES_DIR.glob("*.py"):
        text = path.read_text()
        assert "yaml.safe_load" not in text and "yaml.load" not in text, path.name
        assert "os.environ" not in text, path.name


def test_dvc_yaml_parses(project_copy):
    resolved_stages(project_copy)  # raises on a malformed dvc.yaml
    assert Path(project_copy, "dvc.yaml").is_file()
