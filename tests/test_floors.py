"""The declared dependency floors install together and run the service: every runtime
dependency at its lowest allowed version, in a fresh virtual environment (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "clients/python/pyproject.toml")
LOCAL = "tiergate-client"  # installed from clients/python, not from the index

# Imports the service, compiles a schema with RE2 patterns and references, builds the App and
# its settings (price table, telemetry), and lays out one task's request for the API.
CHECK = """
from tiergate.serving.app import App
from tiergate.config import from_env
from tiergate.calls.prompt import render_params
from tiergate.schema import compile_schema
from tiergate.serving.task_service import SERVICE
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2 as pb

compiled = compile_schema(
    '{"type": "object", "properties": {"id": {"$ref": "#/$defs/id"}}, "required": ["id"],'
    ' "$defs": {"id": {"type": "string", "pattern": "^[a-z]+$"}}}'
)
assert compiled.problems({"id": "abc"}) == []
assert compiled.problems({"id": "ABC"}), "the pattern is enforced"
app = App(from_env({"TIERGATE_UPSTREAM": "emulator"}))
request = pb.ClassifyRequest(text="t", labels=[pb.Label(name="a"), pb.Label(name="b")])
task = TASKS["Classify"]
task.validate(request)
facts = app.prices.facts(app.settings.model_for(task.tier))
params = render_params(task.prompt(request), facts=facts, ttl="5m")
assert params["max_tokens"] > 0
assert sorted(m.name for m in SERVICE.methods) == sorted(TASKS)
print("floors ok")
"""


def floors() -> dict[str, str]:
    """Each runtime dependency of the service and its client, at its declared floor."""
    found: dict[str, str] = {}
    for pyproject in PYPROJECTS:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        for line in project["dependencies"]:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            lows = [s.version for s in requirement.specifier if s.operator == ">="]
            assert lows, f"{pyproject.name}: {line} has no floor"
            if name != LOCAL:
                found[name] = max(lows, key=lambda v: [*map(int, v.split("b")[0].split("."))])
    return found


class TestFloors:
    def test_every_runtime_dependency_has_a_floor(self) -> None:
        """Both packages declare a >= floor for every runtime dependency."""
        assert "grpcio" in floors()
        assert "protobuf" in floors()

    @pytest.mark.slow
    def test_the_floors_install_together_and_run_the_service(self, tmp_path: Path) -> None:
        """With every runtime dependency pinned to its floor, the packages install, ``tiergate
        --version`` answers and the service's modules run: a floor too low for the code (or
        for another floor) fails here."""
        constraints = tmp_path / "floors.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(floors().items())))
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONWARNINGS": "ignore"}
        pip = [str(python), "-m", "pip", "install", "--no-input"]
        install = subprocess.run(
            [*pip, "-c", str(constraints), str(ROOT / "clients/python"), str(ROOT)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert install.returncode == 0, install.stderr[-3000:]
        version = subprocess.run(
            [str(venv / "bin" / "tiergate"), "--version"], capture_output=True, text=True
        )
        assert version.stdout.strip() == "tiergate 1.0.0", version.stderr[-2000:]
        check = subprocess.run(
            [str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path
        )
        assert check.stdout.strip() == "floors ok", check.stderr[-3000:]
