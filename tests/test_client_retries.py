"""The project's Python client, with its own channel options and retry policy, never multiplies
billed calls: what the server refuses to have retried costs exactly the server's billed calls,
while unbilled retryable failures are still retried after the server's pushback."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from harness import Upstream
from samples import CLASSIFY
from tiergate.client import TaskClient, TiergateError
from tiergate.client._channel import SERVICE_CONFIG
from tiergate.emulator import Fault
from tiergate.serving.app import App


@pytest.fixture
def client(app: App) -> Iterator[TaskClient]:
    with TaskClient(f"127.0.0.1:{app.port}", timeout_s=30) as task_client:
        yield task_client


def classify_error(client: TaskClient) -> TiergateError:
    with pytest.raises(TiergateError) as caught:
        client.classify(CLASSIFY)
    return caught.value


class TestNoMultipliedBilling:
    def test_the_client_policy_retries_unavailable(self) -> None:
        """The policy under test does retry OUTPUT_INVALID's status code: only the server's
        pushback can stop it."""
        policy = SERVICE_CONFIG["methodConfig"][0]["retryPolicy"]
        assert "UNAVAILABLE" in policy["retryableStatusCodes"]
        assert policy["maxAttempts"] > 1

    def test_non_retryable_output_invalid_costs_the_servers_billed_calls(
        self, client: TaskClient, upstream: Upstream
    ) -> None:
        """The same bad output twice: UNAVAILABLE OUTPUT_INVALID without RetryInfo, and the
        upstream sees exactly the server's two billed calls, not one set per client attempt."""
        upstream.inject(Fault("malformed", count=6))
        err = classify_error(client)
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "OUTPUT_INVALID")
        assert err.retry_after_s is None
        assert len(upstream.requests) == 2

    def test_billed_output_invalid_with_retry_info_is_left_to_the_caller(
        self, client: TaskClient, upstream: Upstream
    ) -> None:
        """Two different bad outputs: RetryInfo for the caller's code, yet no automatic retry,
        because the failure already billed two calls."""
        upstream.inject(Fault("malformed"), Fault("off_schema"), Fault("malformed", count=4))
        err = classify_error(client)
        assert err.reason == "OUTPUT_INVALID"
        assert err.retry_after_s == 1.0
        assert len(upstream.requests) == 2

    def test_spend_limit_is_asked_once(self, client: TaskClient, upstream: Upstream) -> None:
        """A spend limit reaches the upstream once: neither the server nor the client retries."""
        upstream.inject(Fault("spend_limit", count=6))
        err = classify_error(client)
        assert err.reason == "UPSTREAM_SPEND_LIMIT"
        assert len(upstream.requests) == 1

    def test_unbilled_overload_is_still_retried_by_the_client(
        self, client: TaskClient, upstream: Upstream
    ) -> None:
        """Three overloads exhaust the server's attempts; nothing was billed, so the client's
        policy retries after the pushback and the fourth upstream attempt serves the call."""
        upstream.inject(Fault("overloaded", count=3))
        reply = client.classify(CLASSIFY)
        assert reply.label
        assert reply.usage.billed_calls == 1
        assert len(upstream.requests) == 4
