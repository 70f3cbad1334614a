"""The Go and TypeScript clients' examples, built and run against a live server: a repeat says
it came from the response cache, money prints as the CLI prints it, and a failure prints its
code and only the details the service sent (never ``reason , retry after undefined ms``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import OVER_BUDGET_TOKEN as TOKEN
from conftest import start_app, start_over_budget
from harness import BackgroundLoop, Upstream, free_port, refusals
from tiergate.serving.app import App
from tiergate.telemetry import Telemetry

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
GO_DIR = ROOT / "clients" / "go"
TS_DIR = ROOT / "clients" / "typescript"
# Offline, from the module cache `make client-tools` / `make clients-test` filled.
GO_ENV = {
    "GOMODCACHE": str(TOOLS / "go" / "mod"),
    "GOCACHE": str(TOOLS / "go" / "cache"),
    "GOFLAGS": "-modcacherw",
    "GOPROXY": "off",
}
CACHE_LINE = "answered from the response cache, no model call, $0.00"


def go_example(target: str, token: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["go", "run", "./example"],
        cwd=GO_DIR,
        env={**os.environ, **GO_ENV, "TIERGATE_TARGET": target, "TIERGATE_TOKEN": token},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def ts_example(target: str, token: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "dist/example/classify.js"],
        cwd=TS_DIR,
        env={**os.environ, "TIERGATE_TARGET": target, "TIERGATE_TOKEN": token},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def cached(background: BackgroundLoop, upstream: Upstream) -> Iterator[str]:
    """A fresh server with the response cache on: its first answer is a model call."""
    app: App = start_app(background, upstream, response_cache_ttl_s=600.0)
    yield f"127.0.0.1:{app.port}"
    background.run(app.stop(grace=1))


@pytest.fixture(scope="module")
def over_budget_metrics() -> InMemoryMetricReader:
    """The metrics of the ``over_budget`` server: each refusal is one RPC in them."""
    return InMemoryMetricReader()


@pytest.fixture(scope="module")
def over_budget(
    background: BackgroundLoop,
    upstream: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
    over_budget_metrics: InMemoryMetricReader,
) -> Iterator[str]:
    """A server with bearer tokens whose caller ``billing-service`` has a budget no call fits:
    BUDGET_EXCEEDED with a retry delay until the month ends, far past the 30 s deadline."""
    app = start_over_budget(
        background,
        upstream,
        tmp_path_factory.mktemp("over-budget"),
        telemetry=Telemetry(meter_provider=MeterProvider(metric_readers=[over_budget_metrics])),
    )
    yield f"127.0.0.1:{app.port}"
    background.run(app.stop(grace=1))


@pytest.mark.skipif(
    shutil.which("go") is None or not (TOOLS / "go" / "mod").is_dir(),
    reason="needs Go and the module cache in .tools (make client-tools)",
)
class TestGoExample:
    def test_a_repeat_says_it_came_from_the_response_cache(self, cached: str) -> None:
        first, second = go_example(cached), go_example(cached)
        assert first.returncode == 0, first.stderr
        label, usage = first.stdout.splitlines()
        assert label == "label billing"
        assert usage.startswith("claude-haiku-4-5: ")
        assert " output tokens, $0.0" in usage
        assert second.stdout.splitlines()[1] == f"claude-haiku-4-5: {CACHE_LINE}"

    def test_over_budget_fails_at_once_with_its_reason(
        self,
        over_budget: str,
        over_budget_metrics: InMemoryMetricReader,
        background: BackgroundLoop,
    ) -> None:
        """TIERGATE_TOKEN is sent; the refusal arrives with its reason and its wait, not as a
        DEADLINE_EXCEEDED 30 s later, after the one call."""
        before = refusals(over_budget_metrics, background)
        done = go_example(over_budget, TOKEN)
        assert done.returncode == 1
        assert "tiergate: ResourceExhausted (BUDGET_EXCEEDED): " in done.stderr
        assert "; retry after " in done.stderr
        assert "DeadlineExceeded" not in done.stderr
        assert refusals(over_budget_metrics, background) - before == 1

    def test_a_failure_prints_only_what_the_service_sent(self) -> None:
        done = go_example(f"127.0.0.1:{free_port()}")
        assert done.returncode == 1
        assert "Unavailable" in done.stderr
        assert "reason" not in done.stderr
        assert "retry after" not in done.stderr


@pytest.fixture(scope="module")
def ts_built() -> None:
    subprocess.run(
        ["node", "node_modules/typescript/bin/tsc", "-p", "."],
        cwd=TS_DIR, check=True, capture_output=True, timeout=300,
    )  # fmt: skip


@pytest.mark.skipif(
    shutil.which("node") is None or not (TS_DIR / "node_modules").is_dir(),
    reason="needs Node and the TypeScript client's node_modules (make client-tools)",
)
@pytest.mark.usefixtures("ts_built")
class TestTypeScriptExample:
    def test_a_repeat_says_it_came_from_the_response_cache(self, cached: str) -> None:
        first, second = ts_example(cached), ts_example(cached)
        assert first.returncode == 0, first.stderr
        label, usage = first.stdout.splitlines()
        assert label == "label billing"
        assert " output tokens, $0.0" in usage
        assert second.stdout.splitlines()[1] == f"claude-haiku-4-5: {CACHE_LINE}"

    def test_over_budget_fails_at_once_with_its_reason(
        self,
        over_budget: str,
        over_budget_metrics: InMemoryMetricReader,
        background: BackgroundLoop,
    ) -> None:
        before = refusals(over_budget_metrics, background)
        done = ts_example(over_budget, TOKEN)
        assert done.returncode == 1
        assert done.stderr.startswith("tiergate: RESOURCE_EXHAUSTED (BUDGET_EXCEEDED): ")
        assert "; retry after " in done.stderr
        assert (
            refusals(over_budget_metrics, background) - before == 1
        )  # no retry within the deadline

    def test_a_failure_prints_only_what_the_service_sent(self) -> None:
        done = ts_example(f"127.0.0.1:{free_port()}")
        assert done.returncode == 1
        assert done.stderr.startswith("tiergate: UNAVAILABLE: ")
        assert "undefined" not in done.stderr
        assert "retry after" not in done.stderr
