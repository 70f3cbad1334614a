"""How a service error is encoded for gRPC, in process: the status code, the message, the
details in their order, every bound that keeps them under gRPC's trailer limit, and the retry
pushback trailer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tiergate.errors import (
    BudgetExceeded,
    DeadlineExceeded,
    FieldViolation,
    InvalidRequest,
    ModelRefused,
    OutputInvalid,
    Overloaded,
    QuotaViolation,
    RequestTooLarge,
    TiergateError,
)
from tiergate.serving import status

Detail: TypeAlias = (
    error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.QuotaFailure
    | error_details_pb2.RetryInfo
)
KINDS: tuple[type[Detail], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.QuotaFailure,
    error_details_pb2.RetryInfo,
)


def unpacked(encoded: status_pb2.Status) -> list[Detail]:
    """The details of ``encoded`` in order, each unpacked to its own type."""
    found: list[Detail] = []
    for detail in encoded.details:
        [kind] = [k for k in KINDS if detail.Is(k.DESCRIPTOR)]
        message = kind()
        assert detail.Unpack(message)
        found.append(message)
    return found


def violations(n: int) -> list[FieldViolation]:
    return [FieldViolation(f"labels[{i}].name", "must not be empty or blank") for i in range(n)]


@dataclass
class _Billed:
    billed_calls: int


class TestCut:
    def test_text_within_the_limit_is_kept_as_is(self) -> None:
        """Exactly ``limit`` bytes is not cut."""
        assert status._cut("x" * 128, 128) == "x" * 128

    def test_longer_text_ends_with_an_ellipsis_within_the_limit(self) -> None:
        """One byte over: the text keeps limit - 3 bytes and the 3-byte ellipsis."""
        cut = status._cut("x" * 129, 128)
        assert cut == "x" * 125 + "\u2026"
        assert len(cut.encode()) == 128

    def test_a_character_split_by_the_cut_is_dropped_whole(self) -> None:
        """Bytes are counted, not characters, and no broken character remains."""
        cut = status._cut("\u00e9" * 100, 128)  # 2 bytes each: byte 125 splits one
        assert cut == "\u00e9" * 62 + "\u2026"
        assert len(cut.encode()) == 127


class TestBoundedViolations:
    def test_up_to_the_bound_every_violation_is_sent(self) -> None:
        """Sixteen violations travel as they are, with no counting entry."""
        assert status.bounded_violations(violations(16)) == violations(16)

    @pytest.mark.parametrize(
        ("n", "counted"), [(17, "and 1 more violation"), (18, "and 2 more violations")]
    )
    def test_the_rest_are_counted_in_one_violation_without_a_field(
        self, n: int, counted: str
    ) -> None:
        """Past sixteen, the first sixteen and one entry with no field counting the rest."""
        assert status.bounded_violations(violations(n)) == [
            *violations(16),
            FieldViolation("", counted),
        ]

    def test_field_and_description_are_cut_to_their_own_bounds(self) -> None:
        """A field path is cut at 128 bytes, a description at 160."""
        [kept] = status.bounded_violations([FieldViolation("f" * 200, "d" * 200)])
        assert kept == FieldViolation("f" * 125 + "\u2026", "d" * 157 + "\u2026")


class TestToStatus:
    def test_an_invalid_request_carries_error_info_then_bad_request(self) -> None:
        """INVALID_ARGUMENT; ErrorInfo (reason, domain), then BadRequest with each violation;
        the message lists them, a violation without a field by its description alone."""
        short = [FieldViolation(f"x{i}", "bad") for i in range(16)]
        err = InvalidRequest([FieldViolation("text", "must not be empty"), *short])
        encoded = status.to_status(err)
        assert encoded.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        info, bad = unpacked(encoded)
        assert info == error_details_pb2.ErrorInfo(reason="INVALID_REQUEST", domain="tiergate")
        assert isinstance(bad, error_details_pb2.BadRequest)
        assert [(v.field, v.description) for v in bad.field_violations] == [
            ("text", "must not be empty"),
            *((v.field, v.description) for v in short[:15]),
            ("", "and 1 more violation"),
        ]
        listed = "; ".join(f"x{i}: bad" for i in range(15))
        assert encoded.message == (
            f"invalid request: text: must not be empty; {listed}; and 1 more violation"
        )

    def test_a_long_message_is_cut_at_512_bytes(self) -> None:
        """However many long violations, the message stays within 512 bytes."""
        err = InvalidRequest([FieldViolation("f" * 100, "d" * 100)] * 10)
        message = status.to_status(err).message
        assert len(message.encode()) == 512
        assert message.endswith("\u2026")
        plain = status.to_status(TiergateError("m" * 600)).message
        assert plain == "m" * 509 + "\u2026"

    def test_request_too_large_keeps_its_own_reason(self) -> None:
        """A subclass of InvalidRequest sends its own reason with the same BadRequest."""
        encoded = status.to_status(RequestTooLarge([FieldViolation("text", "too long")]))
        info, bad = unpacked(encoded)
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert info.reason == "REQUEST_TOO_LARGE"
        assert isinstance(bad, error_details_pb2.BadRequest)
        assert encoded.message == "invalid request: text: too long"

    def test_other_errors_send_their_message_and_metadata(self) -> None:
        """Any other error: its code, its own message, and its metadata in ErrorInfo, keys
        and values cut at 128 bytes; no BadRequest, no RetryInfo without a retry delay."""
        err = ModelRefused("the model refused", metadata={"category": "c" * 200, "k" * 200: "v"})
        encoded = status.to_status(err)
        assert encoded.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert encoded.message == "the model refused"
        [info] = unpacked(encoded)
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert info.reason == "MODEL_REFUSED"
        assert info.domain == "tiergate"
        assert dict(info.metadata) == {"category": "c" * 125 + "\u2026", "k" * 125 + "\u2026": "v"}

    @pytest.mark.parametrize(("seconds", "millis"), [(0.0, 0), (1.5, 1500), (0.0004, 0)])
    def test_a_retry_delay_is_retry_info_in_milliseconds(self, seconds: float, millis: int) -> None:
        """A retry delay, even zero, travels as RetryInfo, the last detail, rounded to ms."""
        info, retry = unpacked(status.to_status(Overloaded("busy", retry_after_s=seconds)))
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToMilliseconds() == millis

    def test_budget_exceeded_carries_at_most_four_quota_violations(self) -> None:
        """QuotaFailure after ErrorInfo, then RetryInfo; four violations at most (a caller and
        a task scope, each by day and month), subject and description cut at 128 bytes."""
        quota = [QuotaViolation(f"caller:{i}", f"day limit {i}") for i in range(5)]
        quota[0] = QuotaViolation("s" * 200, "d" * 200)
        err = BudgetExceeded("over budget", violations=quota, retry_after_s=60)
        encoded = status.to_status(err)
        assert encoded.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        info, failure, retry = unpacked(encoded)
        assert isinstance(info, error_details_pb2.ErrorInfo)
        assert info.reason == "BUDGET_EXCEEDED"
        assert isinstance(failure, error_details_pb2.QuotaFailure)
        assert [(v.subject, v.description) for v in failure.violations] == [
            ("s" * 125 + "\u2026", "d" * 125 + "\u2026"),
            ("caller:1", "day limit 1"),
            ("caller:2", "day limit 2"),
            ("caller:3", "day limit 3"),
        ]
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToMilliseconds() == 60_000


class TestGrpcStatus:
    def test_the_status_travels_as_code_message_and_details_trailer(self) -> None:
        """The gRPC status code, the message, and the encoded Status in its trailer."""
        err = DeadlineExceeded("the deadline passed")
        encoded = status.grpc_status(err)
        assert encoded.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert encoded.details == "the deadline passed"
        trailers = dict(encoded.trailing_metadata)
        details = trailers["grpc-status-details-bin"]
        assert isinstance(details, bytes)
        assert status_pb2.Status.FromString(details) == status.to_status(err)

    def test_a_retryable_error_asks_clients_to_wait_its_delay(self) -> None:
        """With a retry delay and nothing billed, the pushback is the delay in ms."""
        encoded = status.grpc_status(Overloaded("busy", retry_after_s=1.25))
        assert dict(encoded.trailing_metadata)[status.PUSHBACK_TRAILER] == "1250"

    def test_a_delay_the_deadline_cuts_short_means_do_not_retry(self) -> None:
        """A budget that resets in 20 hours, or any delay not shorter than the caller's time
        left, says "do not retry": the caller gets the error and its reason now, never a bare
        DEADLINE_EXCEEDED after waiting; RetryInfo still carries the delay."""
        budget = BudgetExceeded("over budget", violations=[], retry_after_s=72_318.628)
        for err, time_left_s in (
            (budget, 30.0),
            (budget, None),
            (Overloaded("busy", retry_after_s=5.0), 5.0),
        ):
            encoded = status.grpc_status(err, time_left_s=time_left_s)
            assert dict(encoded.trailing_metadata)[status.PUSHBACK_TRAILER] == "-1"
        retry = unpacked(status.to_status(budget))[-1]
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.ToMilliseconds() == 72_318_628

    def test_a_delay_within_the_deadline_is_pushed_back(self) -> None:
        """A delay shorter than the time left (and than a minute, without a deadline) is the
        pushback: the automatic retry still has time to run."""
        busy = Overloaded("busy", retry_after_s=1.25)
        for time_left_s in (1.3, 30.0, None):
            encoded = status.grpc_status(busy, time_left_s=time_left_s)
            assert dict(encoded.trailing_metadata)[status.PUSHBACK_TRAILER] == "1250"
        slow = Overloaded("busy", retry_after_s=status.MAX_PUSHBACK_S)
        for time_left_s in (3600.0, None):
            encoded = status.grpc_status(slow, time_left_s=time_left_s)
            assert dict(encoded.trailing_metadata)[status.PUSHBACK_TRAILER] == "-1"

    def test_no_retry_delay_means_do_not_retry(self) -> None:
        """Without RetryInfo, gRPC's automatic retries are told not to retry."""
        encoded = status.grpc_status(ModelRefused("no"))
        assert dict(encoded.trailing_metadata)[status.PUSHBACK_TRAILER] == "-1"

    def test_a_failure_that_billed_is_never_retried_automatically(self) -> None:
        """A retry delay on a failure that billed calls still says "do not retry": automatic
        retries must not multiply billed calls; the RetryInfo stays for the caller."""
        err = OutputInvalid("bad output twice", retry_after_s=1.0)
        err.completion = _Billed(billed_calls=2)
        encoded = status.grpc_status(err)
        assert dict(encoded.trailing_metadata)[status.PUSHBACK_TRAILER] == "-1"
        assert isinstance(unpacked(status.to_status(err))[-1], error_details_pb2.RetryInfo)
