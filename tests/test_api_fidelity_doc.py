"""docs/api-fidelity*.md names real tests and real code: a renamed test or function breaks it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("api-fidelity*.md"))
# `test_x.py::Class` or `test_x.py::Class::test_name` (parametrised ids ignored).
TEST_REF = re.compile(r"`(test_\w+\.py)::(\w+)(?:::(\w+))?")
# `module.py` `name` or `module.py` `Class.method` in the emulator column.
CODE_REF = re.compile(r"`(\w+\.py)` `(\w+(?:\.\w+)?)")


def _defined(path: Path) -> set[str]:
    """Top-level names and Class.method names defined in ``path``."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}.{item.name}")
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(f"{node.name}.{item.target.id}")  # dataclass fields
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _rows(doc: Path) -> list[list[str]]:
    """The cells of every table row (header and rule lines skipped)."""
    rows = []
    for line in doc.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0] not in ("Rule", "---"):
            rows.append(cells)
    return rows


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
class TestFidelityDoc:
    def test_every_named_test_exists(self, doc: Path) -> None:
        """Each `file::Class[::test]` reference resolves to a test in tests/."""
        refs = TEST_REF.findall(doc.read_text())
        assert refs, "the table names no test"
        for file, cls, test in refs:
            names = _defined(ROOT / "tests" / file)
            assert cls in names, f"{file}::{cls}"
            if test:
                assert f"{cls}.{test}" in names, f"{file}::{cls}::{test}"

    def test_every_named_function_exists(self, doc: Path) -> None:
        """Code references resolve: the service column in server/tiergate/, the emulator
        column in server/tiergate/emulator/."""
        service, emulator = ROOT / "server" / "tiergate", ROOT / "server" / "tiergate" / "emulator"
        rows = _rows(doc)
        assert rows, "the doc has no table rows"
        for row in rows:
            for folder, cell in ((service, row[2]), (emulator, row[3])):
                for file, name in CODE_REF.findall(cell):
                    module = folder / file
                    if module.exists():
                        assert name in _defined(module), f"{module.relative_to(ROOT)} {name}"
