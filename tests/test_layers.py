"""The package's modules form layers: no import cycle, not even through a type-only import."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "server"
GENERATED = "tiergate.v1"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SERVER).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in SERVER.rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(GENERATED)}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports anywhere: at the top, in functions, and under
    ``if TYPE_CHECKING`` (every import statement in the file is an edge)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in known:
                    edges.add(target)
                elif base in known:
                    edges.add(base)
    return edges


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = [stack.pop()]
            while group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1 or node in graph[node]:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


class TestImportGraph:
    def test_has_no_cycle(self) -> None:
        """No module of ``server/tiergate`` reaches itself by imports, type-only ones included."""
        assert cycles(import_graph()) == []

    def test_sees_the_modules_and_their_imports(self) -> None:
        """The walk finds the package's modules and a known edge (task_service imports tasks)."""
        graph = import_graph()
        assert "tiergate.serving.task_service" in graph
        assert "tiergate.tasks" in graph["tiergate.serving.task_service"]

    def test_counts_a_type_only_import_as_an_edge(self) -> None:
        """A cycle closed by an ``if TYPE_CHECKING`` import is found."""
        graph = {"a": {"b"}, "b": set()}
        assert cycles(graph) == []
        graph["b"].add("a")
        assert cycles(graph) == [["a", "b"]]

    def test_type_checking_imports_are_read(self, tmp_path: Path) -> None:
        """An import under ``if TYPE_CHECKING`` in a source file becomes an edge."""
        source = tmp_path / "mod.py"
        source.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from tiergate.serving.app import App\n"
        )
        assert imports("tiergate.mod", source, {"tiergate.serving.app"}) == {"tiergate.serving.app"}
