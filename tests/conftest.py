"""Shared fixtures: a real emulator and a real tiergate server on loopback, in one background
event loop, called over real gRPC channels."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import grpc
import pytest
import redis

from harness import BackgroundLoop, Upstream, free_port
from tiergate.config import Settings
from tiergate.emulator import Emulator
from tiergate.emulator.testing import ThreadedEmulator
from tiergate.serving.app import App
from tiergate.telemetry import Telemetry
from tiergate.v1 import task_service_pb2_grpc


@pytest.fixture(scope="session")
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def upstream(background: BackgroundLoop) -> Iterator[Upstream]:
    emulator = Emulator()
    background.run(emulator.start())
    yield Upstream(emulator, background)
    background.run(emulator.stop())


def start_app(
    background: BackgroundLoop,
    upstream: Upstream,
    *,
    telemetry: Telemetry | None = None,
    **settings: Any,
) -> App:
    """A server on a free loopback port whose upstream is the shared emulator, chosen
    explicitly (the default upstream is the real API)."""
    settings.setdefault("upstream", "emulator")
    # Tests repeat identical requests and count the upstream calls each one makes: the shared
    # response cache is off unless a test turns it on (tests/test_shared_*.py).
    settings.setdefault("response_cache_ttl_s", 0.0)
    app = App(
        Settings(host="127.0.0.1", port=0, **settings),
        emulator_url=upstream.url,
        telemetry=telemetry,
    )
    background.run(app.start())
    _STARTED.append(app)
    return app


_STARTED: list[App] = []
"""Every server ``start_app`` started: a long-lived one is shared by many tests."""


OVER_BUDGET_CALLER = "billing-service"
OVER_BUDGET_TOKEN = "s3cret-billing"


def start_over_budget(
    background: BackgroundLoop, upstream: Upstream, folder: Path, **settings: Any
) -> App:
    """A server with bearer tokens (``billing-service`` and ``rich``, token ``s3cret-rich``)
    where billing-service's budget fits no call (a nano-dollar a month): every call of it is
    refused BUDGET_EXCEEDED with a retry delay until the month ends."""
    (folder / "tokens").write_text(f"{OVER_BUDGET_CALLER}={OVER_BUDGET_TOKEN}\nrich=s3cret-rich\n")
    (folder / "budgets.toml").write_text(
        f'[callers.{OVER_BUDGET_CALLER}]\nmonthly_usd = "0.000000001"\n'
    )
    return start_app(
        background,
        upstream,
        auth_tokens_file=str(folder / "tokens"),
        budgets_file=str(folder / "budgets.toml"),
        **settings,
    )


@pytest.fixture(scope="session")
def app(background: BackgroundLoop, upstream: Upstream) -> Iterator[App]:
    app = start_app(background, upstream)
    yield app
    background.run(app.stop(grace=1))


@pytest.fixture(scope="session")
def channel(app: App) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> task_service_pb2_grpc.TaskServiceStub:
    return task_service_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture(autouse=True)
def fresh_upstream(request: pytest.FixtureRequest) -> None:
    """Every test that uses the emulator starts with an empty cache, log and fault queue, and
    every server shared between tests with a full retry budget (one test's injected outage
    must not hold back the next test's retries)."""
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()
    for app in _STARTED:
        for budget in app.retry_budgets.values():
            budget.tokens = budget.max_tokens


# The emulator alone, for the tests that drive it directly with the SDK (test_emulator*.py).
@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator() as running:
        yield running


@pytest.fixture
def emulator(served: ThreadedEmulator) -> Emulator:
    served.emulator.reset()
    return served.emulator


@pytest.fixture
def client(served: ThreadedEmulator, emulator: Emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.base_url, api_key="any-key", max_retries=0)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port, without persistence."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    give_up = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < give_up, "redis-server never answered"
            time.sleep(0.02)
    client.close()
    yield url
    process.terminate()
    process.wait()


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus' promtool, which checks and tests rule files (Debian's ``prometheus``)."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is missing: apt-get install prometheus (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
