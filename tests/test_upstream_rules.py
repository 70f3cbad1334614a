"""The API's retry rules: spend limits and ``x-should-retry: false`` are never retried and get
their own reasons, ``x-should-retry: true`` overrides the status, ``retry-after`` may be a date;
every ErrorReason has its error class and its documentation."""

from __future__ import annotations

import email.utils
import inspect
from pathlib import Path

import anthropic
import grpc
import httpx2
import pytest
from failures import Stub, classify_fails

from harness import Upstream
from samples import CLASSIFY
from tiergate import errors
from tiergate.emulator import Fault
from tiergate.emulator.faults import FaultKind
from tiergate.serving import status
from tiergate.upstream import errors as upstream_errors
from tiergate.v1 import task_service_pb2 as pb

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
NOW = 1_800_000_000.0


def status_error(
    code: int, *, headers: dict[str, str] | None = None, body: object = None
) -> anthropic.APIStatusError:
    """The SDK's own exception for a response, built as the SDK builds it."""
    request = httpx2.Request("POST", "http://upstream.invalid/v1/messages")
    response = httpx2.Response(code, request=request, headers=headers or {})
    client = anthropic.Anthropic(api_key="k", base_url="http://upstream.invalid")
    err = client._make_status_error("failed", body=body, response=response)
    assert isinstance(err, anthropic.APIStatusError)
    return err


def spend_limit_body(code: str) -> dict[str, object]:
    return {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "limit", "details": {"error_code": code}},
    }


class TestRetryAfter:
    def test_milliseconds_win_over_seconds(self) -> None:
        """``retry-after-ms`` is the precise hint when both are sent."""
        err = status_error(429, headers={"retry-after-ms": "1500", "retry-after": "2"})
        assert upstream_errors.retry_after_s(err) == 1.5

    def test_seconds(self) -> None:
        """``retry-after`` as a number of seconds."""
        assert upstream_errors.retry_after_s(status_error(429, headers={"retry-after": "7"})) == 7

    def test_http_date_is_the_time_until_it(self) -> None:
        """``retry-after`` as an HTTP date: the seconds from now until that date."""
        date = email.utils.formatdate(NOW + 42, usegmt=True)
        err = status_error(429, headers={"retry-after": date})
        assert upstream_errors.retry_after_s(err, now=NOW) == 42

    def test_http_date_in_the_past_is_clamped_at_zero(self) -> None:
        """A date already past means now, never a negative wait."""
        date = email.utils.formatdate(NOW - 300, usegmt=True)
        err = status_error(429, headers={"retry-after": date})
        assert upstream_errors.retry_after_s(err, now=NOW) == 0.0

    def test_garbage_is_no_hint(self) -> None:
        """An unreadable value gives no hint (the default backoff applies)."""
        assert (
            upstream_errors.retry_after_s(status_error(429, headers={"retry-after": "soon"}))
            is None
        )


class TestRetryVerdicts:
    @pytest.mark.parametrize(
        "code",
        [
            "enforced_spend_limit_reached",
            "contract_spend_limit_reached",
            "linked_organization_spend_limit_reached",
        ],
    )
    def test_a_spend_limit_429_is_not_retryable(self, code: str) -> None:
        """The SDK exposes ``error.details.error_code`` as ``error_code``: a spend limit maps to
        FAILED_PRECONDITION UPSTREAM_SPEND_LIMIT without RetryInfo, even with x-should-retry."""
        err = status_error(429, headers={"x-should-retry": "true"}, body=spend_limit_body(code))
        assert err.error_code == code
        assert not upstream_errors.is_retryable_upstream(err)
        mapped = upstream_errors.from_upstream(err, size_field="text")
        assert isinstance(mapped, errors.UpstreamSpendLimit)
        assert (status.grpc_code(mapped), mapped.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "UPSTREAM_SPEND_LIMIT",
        )
        assert mapped.metadata["error_code"] == code
        assert mapped.retry_after_s is None

    def test_an_unknown_error_code_is_a_plain_rate_limit(self) -> None:
        """An error code the service does not know leaves the 429 a rate limit."""
        err = status_error(429, body=spend_limit_body("something_new"))
        assert upstream_errors.is_retryable_upstream(err)
        assert upstream_errors.from_upstream(err, size_field="text").reason == (
            "UPSTREAM_RATE_LIMITED"
        )

    @pytest.mark.parametrize("code", [408, 409, 429, 499, 500, 529])
    def test_should_retry_false_stops_retries(self, code: int) -> None:
        """``x-should-retry: false`` on a status normally retried: not retried, its own reason,
        no RetryInfo."""
        err = status_error(code, headers={"x-should-retry": "false", "retry-after": "1"})
        assert not upstream_errors.is_retryable_upstream(err)
        mapped = upstream_errors.from_upstream(err, size_field="text")
        assert (status.grpc_code(mapped), mapped.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "UPSTREAM_NOT_RETRYABLE",
        )
        assert mapped.retry_after_s is None

    @pytest.mark.parametrize("code", [400, 401, 404, 422])
    def test_should_retry_true_makes_a_status_retryable(self, code: int) -> None:
        """``x-should-retry: true`` on a status never retried otherwise: retried, and when
        attempts run out, UNAVAILABLE with RetryInfo."""
        err = status_error(code, headers={"x-should-retry": "true"})
        assert upstream_errors.is_retryable_upstream(err)
        mapped = upstream_errors.from_upstream(err, size_field="text")
        assert (status.grpc_code(mapped), mapped.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "UPSTREAM_UNAVAILABLE",
        )
        assert mapped.retry_after_s is not None

    def test_prompt_too_long_names_the_field_it_is_given(self) -> None:
        """The API's 400 "prompt is too long" names the task's field, never ``*``."""
        body = {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": ("prompt is too long: 210000 tokens > 200000 maximum"),
            },
        }
        mapped = upstream_errors.from_upstream(status_error(400, body=body), size_field="context")
        assert isinstance(mapped, errors.RequestTooLarge)
        assert [v.field for v in mapped.violations] == ["context"]


class TestUpstreamRulesEndToEnd:
    @pytest.mark.parametrize(
        "code", ["enforced_spend_limit_reached", "contract_spend_limit_reached"]
    )
    def test_spend_limit_is_failed_once_without_retry_info(
        self, stub: Stub, upstream: Upstream, code: str
    ) -> None:
        """A spend-limit 429: one upstream request, FAILED_PRECONDITION UPSTREAM_SPEND_LIMIT
        with the code in metadata, no RetryInfo, and a pushback that stops client retries."""
        upstream.inject(Fault("spend_limit", error_code=code, count=3))
        found = classify_fails(stub)
        assert (found.code, found.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "UPSTREAM_SPEND_LIMIT",
        )
        assert found.metadata["error_code"] == code
        assert found.metadata["upstream_status"] == "429"
        assert found.retry_after_ms is None
        assert found.trailers[status.PUSHBACK_TRAILER] == status.NO_RETRY_PUSHBACK
        assert len(upstream.requests) == 1

    @pytest.mark.parametrize("kind", ["rate_limit", "overloaded", "server_error"])
    def test_should_retry_false_is_not_retried(
        self, stub: Stub, upstream: Upstream, kind: FaultKind
    ) -> None:
        """``x-should-retry: false``: one request, UPSTREAM_NOT_RETRYABLE, no RetryInfo."""
        upstream.inject(Fault(kind, should_retry=False, count=3))
        found = classify_fails(stub)
        assert found.reason == "UPSTREAM_NOT_RETRYABLE"
        assert found.retry_after_ms is None
        assert len(upstream.requests) == 1

    def test_should_retry_true_retries_a_401(self, stub: Stub, upstream: Upstream) -> None:
        """``x-should-retry: true`` on a 401: retried, and the second attempt is served."""
        upstream.inject(Fault("unauthorized", should_retry=True))
        usage = stub.Classify(CLASSIFY, timeout=10).usage
        assert (usage.attempts, usage.billed_calls) == (2, 1)
        assert len(upstream.requests) == 2

    def test_http_date_retry_after_within_the_deadline_is_waited(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A ``retry-after`` HTTP date one second ahead is honoured and the retry served."""
        upstream.inject(Fault("rate_limit", retry_after_s=1, retry_after_http_date=True))
        usage = stub.Classify(CLASSIFY, timeout=20).usage
        assert (usage.attempts, usage.billed_calls) == (2, 1)

    def test_http_date_retry_after_beyond_the_deadline_is_reported(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A date 30 s ahead and a 5 s deadline: RESOURCE_EXHAUSTED at once, RetryInfo carrying
        the wait until that date (whole seconds, so 29 to 30 s)."""
        upstream.inject(Fault("rate_limit", retry_after_s=30, retry_after_http_date=True))
        found = classify_fails(stub, timeout=5)
        assert found.reason == "UPSTREAM_RATE_LIMITED"
        assert found.retry_after_ms is not None
        assert 28_000 <= found.retry_after_ms <= 30_000
        assert len(upstream.requests) == 1


# Reasons the proto keeps for compatibility but the service no longer sends.
RETIRED_REASONS = {"DRAINING"}


def error_classes() -> dict[str, type[errors.TiergateError]]:
    found = {
        cls.reason: cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.TiergateError) and cls is not errors.TiergateError
    }
    return found


class TestErrorReasons:
    def test_every_reason_in_the_proto_has_an_error_class(self) -> None:
        """The proto's ``ErrorReason`` values and the error tree name the same reasons."""
        declared = {
            name.removeprefix("ERROR_REASON_")
            for name in pb.ErrorReason.DESCRIPTOR.values_by_name
            if name != "ERROR_REASON_UNSPECIFIED"
        }
        assert declared - RETIRED_REASONS == set(error_classes())

    def test_every_reason_is_documented(self) -> None:
        """docs/errors.md names every reason the service can send."""
        text = DOCS.read_text(encoding="utf-8")
        missing = [reason for reason in error_classes() if f"`{reason}`" not in text]
        assert missing == []

    def test_spend_limit_can_be_caught_as_not_retryable(self) -> None:
        """Callers of the tree catch both upstream refusals of a retry in one ``except``."""
        assert issubclass(errors.UpstreamSpendLimit, errors.UpstreamNotRetryable)
