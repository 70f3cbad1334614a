"""The package's modules form layers: no import cycle, not even through a type-only import."""

from __future__ import annotations

import ast
import subprocess
import sys
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
    ``if TYPE_CHECKING`` (every import statement in the file is an edge). ``from pkg import
    sub`` is an edge to ``pkg`` as well as to ``pkg.sub``: the package's ``__init__`` runs
    first, so a module that imports its own package that way closes a cycle with an
    ``__init__`` that imports it."""
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
            # ``from package import x`` runs and reads the package first, even when ``x`` is
            # a submodule: inside the package that is its __init__ half-built, a cycle.
            if base in known and base != name:
                edges.add(base)
            edges |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
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

    def test_only_the_command_line_imports_the_command_line(self) -> None:
        """``tiergate.cli`` is the top layer: nothing else imports it (money is printed by
        the ledger's ``dollars``, not by the CLI's render)."""
        graph = import_graph()
        outside = {
            name: sorted(t for t in targets if t == "tiergate.cli" or t.startswith("tiergate.cli."))
            for name, targets in graph.items()
            if not (name == "tiergate.cli" or name.startswith("tiergate.cli."))
        }
        assert {name: found for name, found in outside.items() if found} == {}

    def test_the_pure_layers_load_no_transport(self) -> None:
        """The tasks, the schema compiler and validation raise the service's errors without
        loading grpc or the model SDK (the codes become gRPC's in ``serving.status``)."""
        probe = (
            "import sys, tiergate.tasks, tiergate.schema, tiergate.calls.validation;"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'anthropic'}))"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]"

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

    def test_importing_from_the_own_package_is_an_edge_to_it(self, tmp_path: Path) -> None:
        """A module importing a sibling through its package (``from tiergate.pkg import b``)
        depends on the package's ``__init__``: with an ``__init__`` that imports the module,
        that is a cycle (the module would read its package half-built)."""
        source = tmp_path / "a.py"
        source.write_text("from tiergate.pkg import b\n")
        known = {"tiergate.pkg", "tiergate.pkg.a", "tiergate.pkg.b"}
        edges = imports("tiergate.pkg.a", source, known)
        assert edges == {"tiergate.pkg", "tiergate.pkg.b"}
        init = tmp_path / "__init__.py"
        init.write_text("from tiergate.pkg.a import A\n")
        graph = {"tiergate.pkg": imports("tiergate.pkg", init, known), "tiergate.pkg.a": edges}
        graph["tiergate.pkg.b"] = set()
        assert cycles(graph) == [["tiergate.pkg", "tiergate.pkg.a"]]

    def test_a_package_importing_its_own_modules_is_no_cycle(self, tmp_path: Path) -> None:
        """``from tiergate.pkg import a`` inside ``pkg/__init__.py`` is no edge to itself."""
        init = tmp_path / "__init__.py"
        init.write_text("from tiergate.pkg import a\n")
        known = {"tiergate.pkg", "tiergate.pkg.a"}
        assert imports("tiergate.pkg", init, known) == {"tiergate.pkg.a"}

    def test_type_checking_imports_are_read(self, tmp_path: Path) -> None:
        """An import under ``if TYPE_CHECKING`` in a source file becomes an edge."""
        source = tmp_path / "mod.py"
        source.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from tiergate.serving.app import App\n"
        )
        assert imports("tiergate.mod", source, {"tiergate.serving.app"}) == {"tiergate.serving.app"}
