"""Test harness: a background event loop and the emulator as tests drive it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

import grpc
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tiergate.client import health_check
from tiergate.emulator import Emulator, Fault, Script
from tiergate.telemetry.instruments import RPC_DURATION
from tiergate.telemetry.spans import STATUS

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop on its own thread, so sync tests can drive async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def eventually(probe: Callable[[], T | None], what: str) -> T:
    """What ``probe`` returns once it is not None: the server finishes its span (and records its
    metrics, starts its mirrors) just after the caller has the answer. The bound is a failure,
    not a timing."""
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.01)
    raise AssertionError(f"never saw {what}")


def metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of the metric ``name`` that ``reader`` collects now."""
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def refusals(reader: InMemoryMetricReader, loop: BackgroundLoop) -> int:
    """RPCs a server on ``loop`` whose metrics ``reader`` reads answered RESOURCE_EXHAUSTED,
    so far. An RPC's metrics are written just after its answer leaves, by a callback queued
    before it did: a turn of the server's loop first lets every such callback run."""
    loop.run(asyncio.sleep(0))
    return sum(
        point.count
        for point in metric_points(reader, RPC_DURATION)
        if point.attributes.get(STATUS) == "RESOURCE_EXHAUSTED"
    )


class Upstream:
    """The emulator as the tests see it: faults to inject, requests it received."""

    def __init__(self, emulator: Emulator, loop: BackgroundLoop) -> None:
        self.emulator = emulator
        self._loop = loop

    @property
    def url(self) -> str:
        return self.emulator.base_url

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.emulator.requests)

    def inject(self, *faults: Fault) -> None:
        async def inject() -> None:
            self.emulator.inject(*faults)

        self._loop.run(inject())

    def script(self, *scripts: Script) -> None:
        """Queue exact replies for the next matching upstream calls."""

        async def script() -> None:
            self.emulator.script(*scripts)

        self._loop.run(script())

    def reset(self) -> None:
        async def reset() -> None:
            self.emulator.reset()

        self._loop.run(reset())


Trailers = tuple[tuple[str, str | bytes], ...]


def rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` a failed call carries, if any."""
    # A failed sync call's error is also its grpc.Call, which is what from_call reads.
    assert isinstance(error, grpc.Call)
    found: status_pb2.Status | None = rpc_status.from_call(error)
    return found


def trailers(error: grpc.RpcError) -> Trailers:
    """The trailing metadata of a failed call, as (key, value) pairs."""
    # The stubs type the entries as objects with .key and .value; grpc returns 2-tuples.
    return cast(Trailers, error.trailing_metadata() or ())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_serving(port: int, timeout_s: float = 20) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = health_check(channel)
        until = time.monotonic() + timeout_s
        while True:
            try:
                reply = check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > until:
                raise TimeoutError(f"no SERVING on port {port}")
            time.sleep(0.1)


class Processes:
    """A standalone emulator and a ``tiergate serve`` pointed at it, as real processes."""

    def __init__(self, *, emulator_args: tuple[str, ...] = (), **env: str) -> None:
        self.emulator_port = free_port()
        self.port = free_port()
        self.emulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tiergate.emulator",
                "--port",
                str(self.emulator_port),
                *emulator_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OTEL_"))}
        environ.update(
            ANTHROPIC_API_KEY="sk-ant-test-key-do-not-log",
            ANTHROPIC_BASE_URL=self.emulator_url,
            TIERGATE_HOST="127.0.0.1",
            TIERGATE_PORT=str(self.port),
            # As in conftest.start_app: tests count the upstream calls of repeated requests.
            TIERGATE_RESPONSE_CACHE_TTL_S="0",
        )
        # "{emulator}" in a value is this emulator's address (the roads' base URLs).
        environ.update({k: v.replace("{emulator}", self.emulator_url) for k, v in env.items()})
        self._environ = environ
        self.server = self.start_server()

    def start_server(self) -> subprocess.Popen[str]:
        """A ``tiergate serve`` with this harness's environment (again, after a kill)."""
        return subprocess.Popen(
            [sys.executable, "-m", "tiergate.cli", "serve"],
            env=self._environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def upstream_requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.emulator_url}/_emulator/requests") as reply:
            body: dict[str, Any] = json.load(reply)
        return list(body["requests"])

    def inject(self, *faults: Fault) -> None:
        self._post("/_emulator/faults", [fault.to_json() for fault in faults])

    def inject_road(self, road: str, *faults: Fault) -> None:
        """Faults for the requests of one road only."""
        self._post(f"/_emulator/faults?road={road}", [fault.to_json() for fault in faults])

    def script(self, *scripts: Script) -> None:
        """Queue exact replies for the next matching upstream calls."""
        self._post("/_emulator/script", [script.to_json() for script in scripts])

    def _post(self, path: str, payload: Any) -> None:
        data = json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.emulator_url}{path}", data=data)
        request.add_header("content-type", "application/json")
        urllib.request.urlopen(request).close()

    def output(self) -> str:
        """The server's whole log, once it has exited."""
        assert self.server.stdout is not None
        return self.server.stdout.read()

    def close(self) -> None:
        for process in (self.server, self.emulator):
            if process.poll() is None:
                process.kill()
            process.wait()
