"""Fail closed at start-up: the emulator only when chosen, no key no start, no shared port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from harness import Processes, free_port, wait_serving
from samples import CLASSIFY
from tiergate.config import Settings, from_env
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub


def clean_environ(**env: str) -> dict[str, str]:
    """The test process's environment without any ANTHROPIC_*, OTEL_* or TIERGATE_* value."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OTEL_", "TIERGATE_"))
    }
    return {**kept, "TIERGATE_HOST": "127.0.0.1", "TIERGATE_PORT": str(free_port()), **env}


def serve(env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """``tiergate serve`` run to its end (it is expected to refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "tiergate.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


class TestUpstreamChoice:
    @pytest.mark.parametrize("key", [None, "", "   "])
    def test_no_key_for_the_real_api_stops_start_up(self, key: str | None) -> None:
        """Missing, empty or blank ANTHROPIC_API_KEY with the default upstream: exit 2 and one
        line on stderr naming the key and the explicit emulator choice; nothing served."""
        env = clean_environ()
        if key is not None:
            env["ANTHROPIC_API_KEY"] = key
        done = serve(env)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "ANTHROPIC_API_KEY" in lines[0]
        assert "TIERGATE_UPSTREAM=emulator" in lines[0]
        assert "serving" not in done.stdout

    def test_the_default_upstream_is_the_real_api(self) -> None:
        """Nothing set: the real API, so an unset key cannot mean the emulator."""
        assert Settings().upstream == "anthropic"
        assert not from_env({}).uses_emulator
        assert from_env({"TIERGATE_UPSTREAM": "emulator"}).uses_emulator
        with pytest.raises(ValueError, match="upstream"):
            from_env({"TIERGATE_UPSTREAM": "fake"})

    def test_the_real_upstream_never_imports_the_emulator(self) -> None:
        """With the real API chosen, starting the app leaves the emulator's modules unloaded."""
        program = """
import asyncio, sys
from tiergate.serving.app import App
from tiergate.config import Settings
from tiergate.telemetry import Telemetry

async def main():
    app = App(Settings(host="127.0.0.1", port=0, anthropic_api_key="sk-test"),
              telemetry=Telemetry())
    await app.start()
    await app.stop(grace=0)

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("tiergate.emulator")))
"""
        done = subprocess.run(
            [sys.executable, "-c", program],
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]"

    def test_the_emulator_chosen_explicitly_says_so(self) -> None:
        """TIERGATE_UPSTREAM=emulator serves without a key and logs a warning that the answers
        are the emulator's, not a model's."""
        env = clean_environ(TIERGATE_UPSTREAM="emulator")
        server = subprocess.Popen(
            [sys.executable, "-m", "tiergate.cli", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_serving(int(env["TIERGATE_PORT"]))
            with grpc.insecure_channel(f"127.0.0.1:{env['TIERGATE_PORT']}") as channel:
                assert Stub(channel).Classify(CLASSIFY, timeout=10).label
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert server.stdout is not None
        entries = [json.loads(line) for line in server.stdout.read().splitlines()]
        [warning] = [e for e in entries if e["event"] == "emulator.started"]
        assert warning["level"] == "warning"
        assert "not a language model" in warning["note"]


class TestListening:
    @pytest.fixture
    def first(self) -> Iterator[Processes]:
        processes = Processes()
        try:
            wait_serving(processes.port)
            yield processes
        finally:
            processes.close()

    def test_a_taken_port_stops_a_second_server(self, first: Processes) -> None:
        """A second server on the first one's port exits 2 with one line (no SO_REUSEPORT
        sharing); the first keeps answering every call."""
        env = clean_environ(
            ANTHROPIC_API_KEY="sk-test",
            ANTHROPIC_BASE_URL=first.emulator_url,
            TIERGATE_PORT=str(first.port),
        )
        done = serve(env)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert f"127.0.0.1:{first.port}" in lines[0]
        with (
            grpc.insecure_channel(f"127.0.0.1:{first.port}") as channel,
            ThreadPoolExecutor(8) as pool,
        ):
            stub = Stub(channel)
            calls = [pool.submit(stub.Classify, CLASSIFY, timeout=20) for _ in range(20)]
            assert [c.result().label for c in calls] == ["billing"] * 20
        first.server.terminate()
        first.server.wait(timeout=30)
        served = [json.loads(line) for line in first.output().splitlines()]
        assert sum(e["event"] == "rpc" for e in served) == 20

    def test_the_container_default_binds_every_interface(self) -> None:
        """The documented default is for a pod; a workstation sets TIERGATE_HOST=127.0.0.1."""
        assert Settings().host == "0.0.0.0"
        assert from_env({"TIERGATE_HOST": "127.0.0.1"}).host == "127.0.0.1"
