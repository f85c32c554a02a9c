"""The test files themselves: one naming scheme, and no test module importing another.

Scheme: ``tests/<package>/test_<topic>.py``, the topic not repeating the folder (``data/
test_shards.py``, not ``data/test_data_shards.py``); helpers shared between test modules live
in a ``conftest.py`` or a helper module (``tests/data/helpers.py``, ``tests/engine/
tiny_engine.py``), never in a test module another imports.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

TESTS = ROOT / "tests"


def all_test_files() -> list:
    return sorted(TESTS.rglob("test_*.py"))


def imported_modules(source: str, package: str) -> set[str]:
    """Dotted names of the modules ``source`` imports (relative imports resolved against
    ``package``, e.g. ``tests.data``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
                found |= {".".join(base + [a.name]) for a in node.names if not node.module}
            else:
                found.add(node.module or "")
    return found


def test_file_names_follow_one_scheme():
    wrong = [
        str(path.relative_to(ROOT))
        for path in all_test_files()
        if path.parent != TESTS and path.stem.startswith(f"test_{path.parent.name}_")
    ]
    assert not wrong, f"name them test_<topic>.py inside their folder: {wrong}"


def test_no_test_module_imports_another():
    offenders = []
    for path in all_test_files():
        package = ".".join(path.relative_to(ROOT).parent.parts)
        for name in imported_modules(path.read_text(), package):
            if re.search(r"(^|\.)test_\w+$", name):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "move shared helpers into conftest.py or a helper module: " + "; ".join(
        offenders
    )


def test_the_import_check_sees_absolute_and_relative_imports():
    source = "from tests.data.test_shards import x\nfrom .test_synth import y\nimport tests.helpers"
    names = imported_modules(source, "tests.data")
    assert {"tests.data.test_shards", "tests.data.test_synth", "tests.helpers"} <= names
