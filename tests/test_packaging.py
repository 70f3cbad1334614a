"""Packaging: floors that the generated code can run on, and every import declared."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "pyproject.toml"
CLIENT = ROOT / "clients/python/pyproject.toml"
GENERATED = ROOT / "clients/python/src/tiergate/v1"


def requirements(pyproject: Path, *extras: str) -> dict[str, Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    parsed = (Requirement(line) for line in lines)
    return {canonicalize_name(r.name): r for r in parsed}


def floor(requirement: Requirement) -> Version:
    floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert floors, f"{requirement} has no floor"
    return max(floors)


def generated_versions() -> tuple[Version, Version]:
    """The protobuf and grpcio versions the committed code was generated with."""
    protobuf = {
        Version(m[1])
        for path in GENERATED.glob("*_pb2.py")
        if (m := re.search(r"^# Protobuf Python Version: (\S+)$", path.read_text(), re.M))
    }
    grpcio = {
        Version(m[1])
        for path in GENERATED.glob("*_pb2_grpc.py")
        if (m := re.search(r"^GRPC_GENERATED_VERSION = '(\S+)'$", path.read_text(), re.M))
    }
    assert len(protobuf) == 1
    assert len(grpcio) == 1
    return protobuf.pop(), grpcio.pop()


class TestFloors:
    @pytest.mark.parametrize("pyproject", [SERVER, CLIENT], ids=["server", "client"])
    def test_floors_run_the_generated_code(self, pyproject: Path) -> None:
        """The protobuf and grpcio floors are at least what the generated code checks for at
        import, and protobuf stays within the major version it was generated for."""
        protobuf, grpcio = generated_versions()
        declared = requirements(pyproject)
        assert floor(declared["protobuf"]) >= protobuf
        assert not declared["protobuf"].specifier.contains(f"{protobuf.major + 1}.0.0")
        assert floor(declared["grpcio"]) >= grpcio

    def test_the_client_is_versioned(self) -> None:
        """The server asks for a released range of its own client."""
        client = tomllib.loads(CLIENT.read_text(encoding="utf-8"))["project"]["version"]
        requirement = requirements(SERVER)["tiergate-client"]
        assert requirement.specifier.contains(client)
        assert floor(requirement) == Version(client)


@cache
def _owners() -> dict[Path, str]:
    """Installed file -> the distribution that installed it."""
    owners: dict[Path, str] = {}
    for dist in metadata.distributions():
        for file in dist.files or ():
            owners[Path(str(dist.locate_file(file))).resolve()] = canonicalize_name(
                dist.metadata["Name"]
            )
    return owners


def _spec_file(module: str) -> Path | None:
    """A file of ``module``: its own, or one inside it when it is a namespace package."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, AttributeError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin is not None and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin).resolve()
    for location in spec.submodule_search_locations or ():
        for path in sorted(Path(location).rglob("*.py")):
            return path.resolve()
    return None


def _distribution(module: str) -> str | None:
    """The distribution a third-party module comes from (None: standard library or ours)."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top in ("tiergate", "harness", "samples", "conftest"):
        return None
    if top in ("bench", "emulator_calls", "emulator_control", "gen_protos"):
        return None
    path = _spec_file(module)
    assert path is not None, f"{module} is not installed"
    return _owners().get(path)


def imported(*folders: str) -> dict[str, str]:
    """Distribution -> one module importing it, for every import under ``folders``."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            if "tiergate/v1" in path.as_posix():
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    # `from opentelemetry import trace` imports the submodule's package.
                    names = [
                        f"{node.module}.{a.name}"
                        if _spec_file(f"{node.module}.{a.name}") is not None
                        and node.module.split(".")[0] not in sys.stdlib_module_names
                        else node.module
                        for a in node.names
                    ]
                for name in names:
                    if (dist := _distribution(name)) is not None:
                        found.setdefault(dist, str(path.relative_to(ROOT)))
    return found


class TestImportsAreDeclared:
    def test_the_service(self) -> None:
        """Every package the service imports is a runtime dependency of its own, or of the
        `eval` extra that only `tiergate eval --report` loads, or of the `bedrock` and `vertex`
        extras that only their roads (and the emulator's check of their credentials) load."""
        loaded_by_extras = requirements(SERVER, "eval", "bedrock", "vertex").keys()
        undeclared = imported("server").keys() - loaded_by_extras
        assert not undeclared, {d: imported("server")[d] for d in undeclared}

    def test_the_client(self) -> None:
        """Every package the Python client imports is a dependency of the client."""
        used = imported("clients/python/src")
        assert not used.keys() - requirements(CLIENT).keys()

    def test_tests_scripts_and_benchmarks(self) -> None:
        """What the tests, scripts and benchmarks import is in the runtime or an extra."""
        used = imported("tests", "scripts", "bench", "clients/python/tests")
        extras = ("test", "lint", "codegen", "k8s", "eval", "bench", "bedrock", "vertex")
        declared = requirements(SERVER, *extras).keys() | requirements(CLIENT).keys()
        assert not used.keys() - declared, {d: used[d] for d in used.keys() - declared}


class TestMakefile:
    MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")

    def test_help_lists_every_target(self) -> None:
        """`make help` prints every target of the Makefile with its one-line description."""
        targets = re.findall(r"^([a-z][a-z0-9-]*):", self.MAKEFILE, re.M)
        done = subprocess.run(
            ["make", "--no-print-directory", "help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        listed = [line.split()[0] for line in done.stdout.splitlines()]
        assert listed == targets
        assert all(len(line.split()) > 1 for line in done.stdout.splitlines())

    def test_run_serves_on_loopback_and_the_emulator(self) -> None:
        """`make run` binds 127.0.0.1, chooses the emulator, keeps batches in the checkout's
        git-ignored .tiergate/, and installs the runtime plus the eval report's extra only."""
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", "-W", "pyproject.toml", "run"],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")},
            capture_output=True,
            text=True,
            check=True,
        )
        serve = " ".join(done.stdout.split("TIERGATE_HOST=", 1)[1].split())
        assert serve.startswith("127.0.0.1 TIERGATE_UPSTREAM=emulator ")
        assert "TIERGATE_BATCH_DIR=.tiergate/batches " in serve
        assert serve.endswith("tiergate serve")
        installs = [line.split("pip install", 1)[1] for line in done.stdout.splitlines()
                    if "pip install" in line]  # fmt: skip
        extras = {extra for line in installs for extra in re.findall(r"\[(\w+)\]", line)}
        assert extras == {"eval"}
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", ".tiergate/batches/batches.db"], cwd=ROOT, check=False
        )
        assert ignored.returncode == 0

    def test_run_banner_names_the_upstream_it_serves(self) -> None:
        """The banner of `make run` says "emulator" only on the emulator; on the real API it
        names the Messages API, before the server refuses to start without a key."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERGATE_", "ANTHROPIC"))}
        banners = {}
        for upstream in ("emulator", "anthropic"):
            done = subprocess.run(
                ["make", "--no-print-directory", "-n", "-W", "pyproject.toml", "run",
                 f"TIERGATE_UPSTREAM={upstream}"],
                cwd=ROOT, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            # The banner's shell lines, run as make would run them (minus the serve line).
            script = done.stdout.split("TIERGATE_HOST=", 1)[0]
            script = script[script.index("if [") :]
            banners[upstream] = subprocess.run(
                ["sh", "-c", script], env=env, capture_output=True, text=True, check=True
            ).stdout
        assert "the embedded emulator: heuristic answers" in banners["emulator"]
        assert "emulator" not in banners["anthropic"]
        assert "the Messages API at its default URL, with ANTHROPIC_API_KEY" in banners["anthropic"]
        assert "batches in .tiergate/batches" in banners["anthropic"]
