"""dvc.yaml (and noise/dvc.yaml) <-> stage scripts <-> params.yaml <-> the code each stage imports.

For every stage DVC resolves (foreach/matrix expanded by DVC itself):
- the params it declares are, key by key, exactly what its script reads: the script's
  ``PARAMS`` (or ``params(args)``), less the keys its ``cmd`` fixes with ``--set`` and the
  training keys the script fixes itself (``FIXED``), with an overlay section (``train_afew``)
  standing for its own keys plus the keys of the section under it that it does not replace,
  and, for a script that builds a model, only the ``model`` keys that model reads;
- every path argument the script writes is declared in outs/metrics/plots, every declared
  output is written through an argument, and every path it reads is a declared dependency;
- every module its script imports, transitively inside ``nrdfer/`` and ``stages/`` (found in
  the source, nothing executed), is covered by one of its ``deps``;
- no stage script spells a data path itself;
and every key of params.yaml is read by some stage, so `dvc exp run -S key=value` never does
nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest
import yaml

from nrdfer.models.registry import available_models, model_keys
from nrdfer.params import OVERLAYS, SECTIONS
from tests.conftest import ROOT, STAGES_DIR, load_stage_module

RAW_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


PROJECTS = {".": "", "noise": "../"}
"""DVC project folder -> how its stages reach the project root (the noise benchmark is a DVC
project of its own in noise/, whose stages run ../stages/ scripts with ../params.yaml)."""


def resolved_stages(project_copy):
    from dvc.repo import Repo

    with Repo(str(project_copy)) as repo:
        out = []
        for stage in repo.index.stages:
            params = set()
            for dep in stage.deps:
                if dep.__class__.__name__ == "ParamsDependency":
                    params.update(dep.params)
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


def expand(entries, overlays: bool = False, raw=RAW_PARAMS) -> set[str]:
    """``"model"`` -> every ``model.KEY`` of params.yaml (``"base.seed"`` stays); with
    ``overlays``, an overlay section (what a script loads) also stands for the keys of the
    section under it that it does not replace."""
    keys = set()
    for entry in entries:
        if "." in entry:
            keys.add(entry)
            continue
        keys |= {f"{entry}.{k}" for k in raw[entry]}
        if overlays and entry in OVERLAYS:
            under = OVERLAYS[entry]
            keys |= {f"{under}.{k}" for k in raw[under] if k not in raw[entry]}
    return keys


def interpolated(stage_name: str, folder: str = ".", project: Path | None = None) -> set[str]:
    """Keys a stage's definition uses through ``${section.key}`` (or ``${section.key[i]}``):
    DVC puts their values in the command itself. ``stage_name`` is DVC's address: ``train@1``
    for the project's own dvc.yaml, ``<path>/dvc.yaml:ingest@mafw`` for another dvc.yaml
    inside the project (``project``: the DVC project folder the path is relative to)."""
    file, _, stage = stage_name.rpartition(":")
    base = stage.split("@")[0]
    rel = Path("dvc.yaml")
    if file and project is not None:
        rel = Path(file).resolve().relative_to(Path(project).resolve())
    raw = yaml.safe_load((ROOT / folder / rel).read_text())["stages"][base]
    found = re.findall(r"\$\{(\w+\.\w+)(?:\[\d+\])?\}", str(raw))
    return {k for k in found if not k.startswith("item.")}


def all_stages(project_copy):
    """(folder, path prefix to the root, stage) for every stage of every DVC project."""
    for folder, up in PROJECTS.items():
        for stage in resolved_stages(Path(project_copy) / folder):
            yield folder, up, stage


def expected_params(module, args) -> set[str]:
    """What a stage script reads of params.yaml for these arguments (see the module doc)."""
    entries = module.params(args) if hasattr(module, "params") else module.PARAMS
    keys = expand(entries, overlays=True)
    fixed = {o.split("=", 1)[0] for o in args.overrides}
    section = getattr(args, "train_section", "train")
    for key in getattr(module, "FIXED", {}):
        fixed |= {f"{section}.{key}", f"{OVERLAYS.get(section, section)}.{key}"}
    keys -= fixed
    if getattr(module, "BUILDS_MODEL", False):
        sets = dict(o.split("=", 1) for o in args.overrides)
        name = sets.get("model.name", RAW_PARAMS["model"]["name"])
        reads = model_keys(name)
        keys = {k for k in keys if not k.startswith("model.") or k[6:] in reads}
    return keys


def import_closure(script: Path) -> set[Path]:
    """Files of ``nrdfer/`` and ``stages/`` that ``script`` imports, transitively: import
    statements at any depth plus string constants naming an ``nrdfer`` module (imported by
    name, as the model registry does)."""

    def module_file(name: str) -> Path | None:
        base = ROOT.joinpath(*name.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None

    def names(path: Path) -> set[str]:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        package = package.rsplit(".", 1)[0] if path.name != "__init__.py" else package[:-9]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                if node.level:
                    parts = parts[: len(parts) - node.level + 1]
                module = ".".join(parts + [node.module]) if node.level else node.module
                found |= {module} | {f"{module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Constant) and re.fullmatch(
                r"nrdfer(\.\w+)+", str(node.value)
            ):
                found.add(node.value)
        return found

    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in names(path):
            parts = name.split(".")
            if parts[0] != "nrdfer":
                local = STAGES_DIR / f"{parts[0]}.py"
                todo += [local] if local.is_file() else []
                continue
            todo += [f for i in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:i])))]
    return seen


def test_stages_match_scripts(project_copy):
    stages = list(all_stages(project_copy))
    assert {folder for folder, _, _ in stages} == set(PROJECTS), "a dvc.yaml has no stages"
    for folder, up, (name, cmd, params, deps, outs) in stages:
        argv = shlex.split(cmd)
        assert argv[0] == "python" and argv[1].startswith(f"{up}stages/"), (
            f"{folder}/dvc.yaml {name}: cmd must be 'python {up}stages/<script>.py ...', "
            f"got {cmd!r}"
        )
        if up:  # the main params file, by the path DVC tracks it as
            assert argv[2:4] == ["--params", f"{up}params.yaml"], (
                f"{name}: --params {up}params.yaml"
            )
        argv[1] = argv[1][len(up) :]
        module = load_stage_module(argv[1])
        parser = module.build_parser()
        args = parser.parse_args(argv[2:])
        declared = expand(params)
        expected = expected_params(module, args)
        sets = dict(o.split("=", 1) for o in args.overrides)
        if "model.name" in sets:
            # a matrix over baselines: one declaration covers every model of it, so at least
            # what this one reads and at most what some baseline reads
            default = RAW_PARAMS["model"]["name"]
            baselines = {f"model.{k}" for m in available_models() if m != default
                         for k in model_keys(m) - {"name"}}  # fmt: skip
            mine = {k for k in declared if k.startswith("model.")}
            assert {k for k in expected if k.startswith("model.")} <= mine <= baselines, (
                f"{name}: declares model keys {sorted(mine)}; needs what {sets['model.name']} "
                f"reads, and nothing no baseline reads"
            )
            declared -= mine
            expected = {k for k in expected if not k.startswith("model.")}
        assert declared == expected, (
            f"{name}: dvc.yaml declares params it does not read: {sorted(declared - expected)}; "
            f"it reads params dvc.yaml does not declare: {sorted(expected - declared)}"
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
                    assert covered(path, deps), f"{name}: reads {path} not declared in deps"
        for o in outs:
            assert any(o == w or w in o.parents or o in w.parents for w in written), (
                f"{name}: declared output {o} is not written through any output argument"
            )
        for path in sorted(import_closure(ROOT / argv[1])):
            rel = PurePosixPath(up + path.relative_to(ROOT).as_posix())
            assert covered(rel, deps), (
                f"{name}: imports {rel} but no dep covers it; add it (or a folder above it) to "
                "the stage's deps in dvc.yaml"
            )


def test_every_param_is_read_by_a_stage(project_copy):
    read: set[str] = set()
    for folder, _, (name, _, params, _, _) in all_stages(project_copy):
        read |= expand(params) | interpolated(name, folder, Path(project_copy) / folder)
    unread = sorted(expand(RAW_PARAMS) - read)
    assert not unread, f"params no stage reads (dvc exp run -S would change nothing): {unread}"


def test_closure_sees_lazy_and_named_imports():
    """The import scanner follows imports inside functions and modules named in strings."""
    closure = {p.relative_to(ROOT).as_posix() for p in import_closure(STAGES_DIR / "report.py")}
    assert "nrdfer/models/flops.py" in closure  # imported inside a function of report/build.py
    assert "nrdfer/models/baselines/c3d.py" in closure  # registry imports baselines by name
    assert "stages/_common.py" in closure


def test_model_keys_are_what_builders_read():
    """``register(reads=...)`` is what a build reads of the params: recorded on a real build."""
    from nrdfer.models import build_model
    from nrdfer.params import load_section

    class Recorder:
        def __init__(self, params):
            self._params, self.seen = params, set()

        def __getattr__(self, key):
            self.seen.add(key)
            return getattr(self._params, key)

    model = load_section(ROOT / "params.yaml", "model")
    for name in available_models():
        recorder = Recorder(dataclasses.replace(model, name=name))
        build_model(recorder)
        assert recorder.seen == model_keys(name), name


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
    list(all_stages(project_copy))  # raises on a malformed dvc.yaml
    assert Path(project_copy, "dvc.yaml").is_file()
    assert set(SECTIONS) >= set(RAW_PARAMS)
