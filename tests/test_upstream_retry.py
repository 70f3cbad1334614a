"""Upstream failures: when another attempt may help, how long to wait, what the caller is told."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from tiergate.errors import (
    DEFAULT_RETRY_AFTER_S,
    TiergateError,
    UpstreamAuthFailed,
    UpstreamUnavailable,
)
from tiergate.upstream_errors import from_upstream, is_retryable_upstream, retry_after_s

REQUEST = httpx2.Request("POST", "http://upstream/v1/messages")


def status_error(status: int, **headers: str) -> anthropic.APIStatusError:
    response = httpx2.Response(status, headers=headers, request=REQUEST)
    return anthropic.APIStatusError("upstream said no", response=response, body=None)


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("headers", "seconds"),
        [
            ({"retry-after-ms": "1500"}, 1.5),
            ({"retry-after": "3"}, 3.0),
            ({"retry-after": "0.2"}, 0.2),
            ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
            ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
            ({"retry-after": "-5"}, 0.0),
        ],
    )
    def test_hint_in_seconds(self, headers: dict[str, str], seconds: float) -> None:
        """retry-after-ms wins over retry-after; an unreadable one falls back; never negative."""
        assert retry_after_s(status_error(429, **headers)) == pytest.approx(seconds)

    def test_no_hint(self) -> None:
        """Without either header there is no hint."""
        assert retry_after_s(status_error(429)) is None


class TestRetryable:
    @pytest.mark.parametrize(
        ("status", "retryable"),
        [(408, True), (409, True), (429, True), (499, True), (500, True), (529, True),
         (400, False), (404, False), (410, False), (413, False)],
    )  # fmt: skip
    def test_by_status(self, status: int, retryable: bool) -> None:
        """Timeouts, conflicts, rate limits, client-closed and every 5xx may succeed again."""
        assert is_retryable_upstream(status_error(status)) is retryable

    def test_connection_errors_are_retryable(self) -> None:
        """A call that never reached the upstream may reach it next time."""
        assert is_retryable_upstream(anthropic.APIConnectionError(request=REQUEST)) is True


class TestFailuresBeforeAnAnswer:
    @pytest.mark.parametrize(
        ("exc", "kind", "message"),
        [
            (
                anthropic.CredentialsError("no key"),
                UpstreamAuthFailed,
                "the service could not load its model API credentials; operators have been told",
            ),
            (
                anthropic.RetryableError("try again"),
                UpstreamUnavailable,
                "the model API call failed and may succeed on retry",
            ),
            (
                anthropic.APITimeoutError(request=REQUEST),
                UpstreamUnavailable,
                "the model API did not answer in time",
            ),
            (
                anthropic.APIConnectionError(request=REQUEST),
                UpstreamUnavailable,
                "the model API could not be reached",
            ),
        ],
        ids=["credentials", "retryable", "timeout", "connection"],
    )
    def test_mapped_with_its_message_and_the_sdk_error_named(
        self, exc: anthropic.AnthropicError, kind: type[TiergateError], message: str
    ) -> None:
        """Each SDK failure maps to one service error that says what happened and names it."""
        mapped = from_upstream(exc, size_field="text")
        assert type(mapped) is kind
        assert mapped.message == message
        assert mapped.metadata == {"upstream_error": type(exc).__name__}

    @pytest.mark.parametrize(
        "exc",
        [
            anthropic.RetryableError("try again"),
            anthropic.APITimeoutError(request=REQUEST),
            anthropic.APIConnectionError(request=REQUEST),
        ],
    )
    def test_transient_failures_say_when_to_retry(self, exc: anthropic.AnthropicError) -> None:
        """A failure another try may fix carries the default retry delay."""
        assert from_upstream(exc, size_field="text").retry_after_s == DEFAULT_RETRY_AFTER_S
