"""docs/api-fidelity.md names real tests and real code: a renamed test, module or function
breaks it, and a rule the service honours cannot keep a "pending" cell."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("api-fidelity*.md"))
# `test_x.py::Class`, `test_x.py::Class::test_name` or `...::test_name[case id]`.
TEST_REF = re.compile(r"`(test_\w+\.py)::(\w+)(?:::(\w+))?(?:\[([^\]`]+)\])?")
# `module.py` `name`, `schema/module.py` `Class.method`: paths below the column's folder.
CODE_REF = re.compile(r"`((?:\w+/)*\w+\.py)` `(\w+(?:\.\w+)?)")
# A named case id (`[...]`) must appear in the test sources that parametrise it.
TEST_SOURCES = sorted((ROOT / "tests").glob("*.py"))


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
        sources = "\n".join(path.read_text() for path in TEST_SOURCES)
        for file, cls, test, case in refs:
            names = _defined(ROOT / "tests" / file)
            assert cls in names, f"{file}::{cls}"
            if test:
                assert f"{cls}.{test}" in names, f"{file}::{cls}::{test}"
            if case:
                assert test, f"{file}::{cls}[{case}] names a case without its test"
                named = case in sources
                assert named, f"no test case is named {case!r}"

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
                    assert module.exists(), f"{row[0][:60]}: no module {file}"
                    assert name in _defined(module), f"{module.relative_to(ROOT)} {name}"

    def test_no_pending_cell_names_code(self, doc: Path) -> None:
        """A service cell naming a function is honoured, so it cannot also say pending."""
        for row in _rows(doc):
            if "pending" in row[2]:
                assert not CODE_REF.findall(row[2]), f"stale pending cell: {row[0][:60]}"

    def test_one_table_for_every_rule(self, doc: Path) -> None:
        """Rows live in docs/api-fidelity.md alone: no fragment files beside it."""
        assert doc.name == "api-fidelity.md"
