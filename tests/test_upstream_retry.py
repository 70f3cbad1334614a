"""When another upstream attempt may help, and how long the upstream asks us to wait."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from tiergate.upstream_errors import is_retryable_upstream, retry_after_s

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
