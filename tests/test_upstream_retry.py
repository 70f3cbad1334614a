"""Upstream failures: when another attempt may help, how long to wait, what the caller is told."""

from __future__ import annotations

import email.utils
import time

import anthropic
import httpx2
import pytest

from tiergate.errors import (
    DEFAULT_RETRY_AFTER_S,
    FieldViolation,
    RequestTooLarge,
    TiergateError,
    UpstreamAuthFailed,
    UpstreamNotRetryable,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamSpendLimit,
    UpstreamUnavailable,
)
from tiergate.upstream.errors import (
    RETRY_AFTER_HORIZON_S,
    from_upstream,
    is_retryable_upstream,
    retry_after_s,
)

REQUEST = httpx2.Request("POST", "http://upstream/v1/messages")


def status_error(status: int, **headers: str) -> anthropic.APIStatusError:
    response = httpx2.Response(status, headers=headers, request=REQUEST)
    return anthropic.APIStatusError("upstream said no", response=response, body=None)


def api_error(status: int, message: str, **details: str) -> anthropic.APIStatusError:
    """A status error with the API's JSON error body, as the SDK builds it."""
    error: dict[str, object] = {"type": "api_error", "message": message}
    if details:
        error["details"] = details
    body = {"type": "error", "error": error}
    response = httpx2.Response(status, json=body, request=REQUEST)
    return anthropic.APIStatusError(f"Error code: {status}", response=response, body=body)


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


class TestFailuresWithAStatus:
    def test_rate_limit_passes_the_upstream_wait_on(self) -> None:
        """A 429 is RATE_LIMITED with the upstream's own wait and the status in the metadata."""
        mapped = from_upstream(status_error(429, **{"retry-after": "7"}), size_field="text")
        assert type(mapped) is UpstreamRateLimited
        assert mapped.message == "the model API rate-limited this call"
        assert mapped.retry_after_s == 7.0
        assert mapped.metadata == {"upstream_error": "APIStatusError", "upstream_status": "429"}

    def test_rate_limit_without_a_hint_waits_the_default(self) -> None:
        """A 429 without retry-after asks the caller for the default wait."""
        mapped = from_upstream(status_error(429), size_field="text")
        assert type(mapped) is UpstreamRateLimited
        assert mapped.retry_after_s == DEFAULT_RETRY_AFTER_S

    def test_spend_limit_is_not_a_rate_limit(self) -> None:
        """A 429 naming a spend limit is SPEND_LIMIT with its code, never retryable."""
        exc = api_error(429, "spend", error_code="enforced_spend_limit_reached")
        mapped = from_upstream(exc, size_field="text")
        assert type(mapped) is UpstreamSpendLimit
        assert mapped.message == (
            "the service reached its spend limit at the model API; operators have been told"
        )
        assert mapped.metadata == {
            "upstream_error": "APIStatusError",
            "upstream_status": "429",
            "error_code": "enforced_spend_limit_reached",
        }
        assert mapped.retry_after_s is None
        assert is_retryable_upstream(exc) is False

    @pytest.mark.parametrize("status", [500, 529, 408])
    def test_server_failures_are_unavailable(self, status: int) -> None:
        """5xx and timeouts are UNAVAILABLE naming the status, with the upstream's wait."""
        mapped = from_upstream(status_error(status, **{"retry-after-ms": "2500"}), size_field="t")
        assert type(mapped) is UpstreamUnavailable
        assert mapped.message == f"the model API failed with HTTP {status}"
        assert mapped.retry_after_s == 2.5
        assert mapped.metadata == {
            "upstream_error": "APIStatusError",
            "upstream_status": str(status),
        }

    def test_should_retry_true_makes_any_status_unavailable(self) -> None:
        """``x-should-retry: true`` on a 400 is UNAVAILABLE with the default wait."""
        exc = status_error(400, **{"x-should-retry": "true"})
        mapped = from_upstream(exc, size_field="text")
        assert type(mapped) is UpstreamUnavailable
        assert mapped.retry_after_s == DEFAULT_RETRY_AFTER_S
        assert is_retryable_upstream(exc) is True

    def test_should_retry_false_on_a_retried_status_is_final(self) -> None:
        """``x-should-retry: false`` on a 503 is NOT_RETRYABLE: the upstream said so."""
        exc = status_error(503, **{"x-should-retry": "false"})
        mapped = from_upstream(exc, size_field="text")
        assert type(mapped) is UpstreamNotRetryable
        assert mapped.message == "the model API failed with HTTP 503 and said a retry cannot help"
        assert mapped.metadata == {"upstream_error": "APIStatusError", "upstream_status": "503"}
        assert mapped.retry_after_s is None
        assert is_retryable_upstream(exc) is False

    @pytest.mark.parametrize("status", [401, 402, 403])
    def test_refused_credentials(self, status: int) -> None:
        """401, 402 and 403 are AUTH_FAILED, telling operators, naming the status."""
        mapped = from_upstream(status_error(status), size_field="text")
        assert type(mapped) is UpstreamAuthFailed
        assert mapped.message == (
            "the service's model API credentials were refused; operators have been told"
        )
        assert mapped.metadata == {
            "upstream_error": "APIStatusError",
            "upstream_status": str(status),
        }
        assert mapped.retry_after_s is None

    @pytest.mark.parametrize(
        "exc",
        [
            status_error(413),
            api_error(400, "prompt is too long: 212000 tokens > 200000 maximum"),
            anthropic.APIStatusError(
                "prompt is too long",
                response=httpx2.Response(400, request=REQUEST),
                body=None,
            ),
        ],
        ids=["413", "400-api-message", "400-sdk-message"],
    )
    def test_too_large_names_the_size_field(self, exc: anthropic.APIStatusError) -> None:
        """A prompt over the context window is REQUEST_TOO_LARGE on the field that sized it."""
        mapped = from_upstream(exc, size_field="documents[0].text")
        assert type(mapped) is RequestTooLarge
        assert mapped.violations == [
            FieldViolation(
                "documents[0].text", "the prompt is too large for the model's context window"
            )
        ]

    @pytest.mark.parametrize("status", [400, 404, 422])
    def test_other_rejections(self, status: int) -> None:
        """Any other 4xx is REJECTED naming the status: our request was wrong, not the caller's."""
        mapped = from_upstream(api_error(status, "messages: bad"), size_field="text")
        assert type(mapped) is UpstreamRejected
        assert mapped.message == f"the model API rejected the call with HTTP {status}"
        assert mapped.metadata == {
            "upstream_error": "APIStatusError",
            "upstream_status": str(status),
        }
        assert mapped.retry_after_s is None

    def test_sdk_side_failures_are_rejected(self) -> None:
        """A failure inside the SDK with no status is REJECTED, naming the SDK error."""
        mapped = from_upstream(anthropic.AnthropicError("bad response"), size_field="text")
        assert type(mapped) is UpstreamRejected
        assert mapped.message == "the model API client failed before a usable answer arrived"
        assert mapped.metadata == {"upstream_error": "AnthropicError"}


class TestRetryAfterDates:
    def test_an_http_date_is_seconds_from_now(self) -> None:
        """``retry-after`` as an HTTP date is the seconds from now until then."""
        exc = status_error(429, **{"retry-after": "Wed, 25 Nov 2026 03:00:10 GMT"})
        now = 1795575600.0  # 2026-11-25 03:00:00 UTC
        assert retry_after_s(exc, now=now) == pytest.approx(10.0)

    def test_a_past_date_is_now(self) -> None:
        """A date in the past means no wait, never a negative one."""
        exc = status_error(429, **{"retry-after": "Wed, 25 Nov 2026 03:00:10 GMT"})
        assert retry_after_s(exc, now=1795575700.0) == 0.0

    def test_an_unreadable_date_is_no_hint(self) -> None:
        """A retry-after that is neither a number nor a date gives no hint."""
        assert retry_after_s(status_error(429, **{"retry-after": "later"})) is None

    def test_a_date_in_retry_after_ms_is_ignored(self) -> None:
        """Only retry-after may be a date; a date in retry-after-ms falls through to none."""
        exc = status_error(429, **{"retry-after-ms": "Wed, 25 Nov 2026 03:00:10 GMT"})
        assert retry_after_s(exc, now=1795575600.0) is None

    def test_a_date_counts_from_the_clock_by_default(self) -> None:
        """Without an explicit now, the wait counts from the wall clock: a minute ahead is
        about 60 s."""
        when = email.utils.formatdate(time.time() + 60, usegmt=True)
        hint = retry_after_s(status_error(429, **{"retry-after": when}))
        assert hint is not None
        assert 55 < hint <= 60


class TestRetryAfterHorizon:
    @pytest.mark.parametrize(
        "headers",
        [
            {"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT"},
            {"retry-after": "1e400"},
            {"retry-after-ms": "inf"},
            {"retry-after": "86400"},
        ],
    )
    def test_a_wait_beyond_the_horizon_is_cut_to_it(self, headers: dict[str, str]) -> None:
        """A hint in 2099, infinite or a day long holds no call beyond the horizon."""
        assert retry_after_s(status_error(429, **headers)) == RETRY_AFTER_HORIZON_S

    @pytest.mark.parametrize("value", ["NaN", "nan", "-nan"])
    def test_nan_is_no_hint(self, value: str) -> None:
        """NaN is not a wait: no hint (the backoff decides)."""
        assert retry_after_s(status_error(429, **{"retry-after": value})) is None
