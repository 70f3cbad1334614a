"""How a service error travels: a ``google.rpc.Status`` with its details, as gRPC sends it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tiergate.errors import (
    DOMAIN,
    BudgetExceeded,
    FieldViolation,
    InvalidRequest,
    TiergateError,
)

# gRPC refuses trailers over 16 KiB (the caller then gets a bare RESOURCE_EXHAUSTED), and the
# message travels twice: percent-encoded in grpc-message (up to 3x) and inside the details in
# grpc-status-details-bin (base64, 4/3). Bounds in UTF-8 bytes keep the worst case near 9 KiB,
# whatever the request held.
MAX_VIOLATIONS = 16
"""Field violations sent in full; the rest are counted in one more violation."""
MAX_FIELD_BYTES = 128
MAX_DESCRIPTION_BYTES = 160
MAX_MESSAGE_BYTES = 512
MAX_METADATA_BYTES = 128
MAX_QUOTA_VIOLATIONS = 4
"""A call is bounded by at most a caller and a task scope, each with a day and a month."""


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes, marked with an ellipsis when cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "\u2026"


def bounded_violations(violations: Sequence[FieldViolation]) -> list[FieldViolation]:
    """At most :data:`MAX_VIOLATIONS` violations, cut to size, plus one counting the rest."""
    kept = [
        FieldViolation(_cut(v.field, MAX_FIELD_BYTES), _cut(v.description, MAX_DESCRIPTION_BYTES))
        for v in violations[:MAX_VIOLATIONS]
    ]
    rest = len(violations) - len(kept)
    if rest:
        # Names no field of its own: it stands for the request's further violations.
        kept.append(FieldViolation("", f"and {rest} more violation{'s' if rest > 1 else ''}"))
    return kept


def _message(err: TiergateError, violations: Sequence[FieldViolation]) -> str:
    if isinstance(err, InvalidRequest):
        # Built from the bounded violations, not the error's own message, which lists all.
        problems = "; ".join(
            f"{v.field}: {v.description}" if v.field else v.description for v in violations
        )
        return _cut(f"invalid request: {problems}", MAX_MESSAGE_BYTES)
    return _cut(err.message, MAX_MESSAGE_BYTES)


def to_status(err: TiergateError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``err``: one ErrorInfo, plus BadRequest or RetryInfo,
    always small enough for gRPC's trailers."""
    details: list[any_pb2.Any] = []
    metadata = {
        _cut(k, MAX_METADATA_BYTES): _cut(v, MAX_METADATA_BYTES) for k, v in err.metadata.items()
    }
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=metadata)
    details.append(_pack(info))
    violations: list[FieldViolation] = []
    if isinstance(err, InvalidRequest):
        violations = bounded_violations(err.violations)
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in violations
            ]
        )
        details.append(_pack(bad))
    if isinstance(err, BudgetExceeded):
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=_cut(v.subject, MAX_METADATA_BYTES),
                    description=_cut(v.description, MAX_METADATA_BYTES),
                )
                for v in err.quota_violations[:MAX_QUOTA_VIOLATIONS]
            ]
        )
        details.append(_pack(quota))
    if err.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(round(err.retry_after_s * 1000))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(
        code=err.code.value, message=_message(err, violations), details=details
    )


def grpc_code(err: TiergateError) -> grpc.StatusCode:
    """``err``'s code as gRPC names it."""
    return grpc.StatusCode[err.code.name]


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class GrpcStatus(_Status, grpc.Status):
    """A ``grpc.Status`` for ``ServicerContext.abort_with_status``."""


# gRPC's built-in client retries read this trailer: with it they wait as long as we ask, and
# a negative value tells them not to retry at all (gRFC A6), whatever their status codes.
PUSHBACK_TRAILER = "grpc-retry-pushback-ms"
NO_RETRY_PUSHBACK = "-1"
MAX_PUSHBACK_S = 60.0
"""Longest wait a client's automatic retry is asked for when the caller set no deadline. A
longer one (a budget that resets tomorrow) is the caller's decision: RetryInfo still says it."""


def grpc_status(err: TiergateError, *, time_left_s: float | None = None) -> grpc.Status:
    """``err`` as gRPC sends it: rich details, plus the retry pushback: the delay when a
    client may retry it automatically within the caller's deadline (``time_left_s``), else
    "do not retry"."""
    status = rpc_status.to_status(to_status(err))
    trailers: tuple[tuple[str, str | bytes], ...] = tuple(status.trailing_metadata)
    if _retry_fits(err, time_left_s):
        assert err.retry_after_s is not None  # _retry_fits checked it
        trailers += ((PUSHBACK_TRAILER, str(round(err.retry_after_s * 1000))),)
    else:
        trailers += ((PUSHBACK_TRAILER, NO_RETRY_PUSHBACK),)
    return GrpcStatus(status.code, status.details, trailers)


def _retry_fits(err: TiergateError, time_left_s: float | None) -> bool:
    """Whether an automatic retry may wait ``retry_after_s``: a wait the deadline cuts short
    would leave the caller a bare DEADLINE_EXCEEDED instead of this error and its reason."""
    if not err.client_may_retry or err.retry_after_s is None:
        return False
    limit = MAX_PUSHBACK_S if time_left_s is None else min(time_left_s, MAX_PUSHBACK_S)
    return err.retry_after_s < limit


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo
    | error_details_pb2.QuotaFailure,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
