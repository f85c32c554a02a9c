"""No function of the package is longer than MAX_LINES lines (``def`` line to last line,
docstring included): a long function is split along the steps a reader would name.

The rule holds for everything in CHECKED: the whole ``nrdfer`` package.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 80

CHECKED = ("nrdfer",)
"""Files, or folders (every ``.py`` file under them), relative to the repository root."""


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method in ``source`` longer than
    ``limit`` lines, nested ones included."""
    return [
        (node.name, node.lineno, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > limit
    ]


def checked_files() -> list[Path]:
    files = []
    for entry in CHECKED:
        path = ROOT / entry
        assert path.exists(), f"{entry}: listed in CHECKED but not in the repository"
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_no_function_over_the_limit():
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name} ({n} lines)"
        for path in checked_files()
        for name, line, n in long_functions(path.read_text())
    ]
    assert not too_long, f"functions over {MAX_LINES} lines: " + "; ".join(too_long)


def test_the_count_sees_long_and_nested_functions():
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    nested = body.replace("\n", "\n    ")
    source = (
        f"def long():\n{body}\n\n\ndef short():\n    def inner():\n    {nested}\n    return 1\n"
    )
    assert long_functions(source) == [("long", 1, 81), ("short", 84, 83), ("inner", 85, 81)]
    assert long_functions(source, limit=83) == []
