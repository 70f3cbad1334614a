"""Errors the service returns, and the one mapping from upstream failures to them.

The tree (status code and ``ErrorInfo.reason`` in brackets)::

    TiergateError
    +-- InvalidRequest        [INVALID_ARGUMENT, INVALID_REQUEST]     + BadRequest
    +-- RequestTooLarge       [INVALID_ARGUMENT, REQUEST_TOO_LARGE]   + BadRequest
    +-- Unauthenticated       [UNAUTHENTICATED, UNAUTHENTICATED]
    +-- Overloaded            [RESOURCE_EXHAUSTED, OVERLOADED]        + RetryInfo
    +-- UpstreamRateLimited   [RESOURCE_EXHAUSTED, UPSTREAM_RATE_LIMITED] + RetryInfo
    +-- UpstreamUnavailable   [UNAVAILABLE, UPSTREAM_UNAVAILABLE]     + RetryInfo
    +-- OutputInvalid         [UNAVAILABLE, OUTPUT_INVALID]           + RetryInfo
    +-- Draining              [UNAVAILABLE, DRAINING]                 + RetryInfo
    +-- DeadlineExceeded      [DEADLINE_EXCEEDED, DEADLINE_EXCEEDED]
    +-- ModelRefused          [FAILED_PRECONDITION, MODEL_REFUSED]    metadata: category
    +-- UpstreamAuthFailed    [INTERNAL, UPSTREAM_AUTH_FAILED]
    +-- UpstreamRejected      [INTERNAL, UPSTREAM_REJECTED]

:func:`from_upstream` maps every ``anthropic`` exception to the most specific of these;
:func:`to_status` turns one into a ``google.rpc.Status`` with its details. Messages never
quote the caller's text or the API key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import anthropic
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "tiergate"


@dataclass(frozen=True)
class FieldViolation:
    """Why a request field is invalid; ``field`` is a dotted path such as ``labels[2].name``."""

    field: str
    description: str


class TiergateError(Exception):
    """Base of every error the service returns on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"
    completion: object | None = None
    """What the model calls billed before the failure (a ``model_client.Completion``), if any."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s
        self.metadata = dict(metadata or {})


class InvalidRequest(TiergateError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        problems = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {problems}")
        self.violations = list(violations)


class RequestTooLarge(InvalidRequest):
    reason = "REQUEST_TOO_LARGE"


class Unauthenticated(TiergateError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Overloaded(TiergateError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "OVERLOADED"


class UpstreamRateLimited(TiergateError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "UPSTREAM_RATE_LIMITED"


class UpstreamUnavailable(TiergateError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UPSTREAM_UNAVAILABLE"


class OutputInvalid(TiergateError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "OUTPUT_INVALID"


class Draining(TiergateError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DRAINING"


class DeadlineExceeded(TiergateError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class ModelRefused(TiergateError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "MODEL_REFUSED"


class UpstreamAuthFailed(TiergateError):
    code = grpc.StatusCode.INTERNAL
    reason = "UPSTREAM_AUTH_FAILED"


class UpstreamRejected(TiergateError):
    code = grpc.StatusCode.INTERNAL
    reason = "UPSTREAM_REJECTED"


# Seconds to suggest when a retryable upstream error carries no retry-after of its own.
DEFAULT_RETRY_AFTER_S = 1.0


def retry_after_s(exc: anthropic.APIStatusError) -> float | None:
    """The upstream's own wait hint (``retry-after-ms`` or ``retry-after`` seconds), if any."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            continue
    return None


def from_upstream(exc: anthropic.AnthropicError) -> TiergateError:
    """Map an ``anthropic`` SDK exception to the service error the caller receives."""
    upstream = {"upstream_error": type(exc).__name__}
    if isinstance(exc, anthropic.CredentialsError):
        return UpstreamAuthFailed(
            "the service could not load its model API credentials; operators have been told",
            metadata=upstream,
        )
    if isinstance(exc, anthropic.RetryableError):
        return UpstreamUnavailable(
            "the model API call failed and may succeed on retry",
            retry_after_s=DEFAULT_RETRY_AFTER_S,
            metadata=upstream,
        )
    if isinstance(exc, anthropic.APITimeoutError):
        return UpstreamUnavailable(
            "the model API did not answer in time",
            retry_after_s=DEFAULT_RETRY_AFTER_S,
            metadata=upstream,
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return UpstreamUnavailable(
            "the model API could not be reached",
            retry_after_s=DEFAULT_RETRY_AFTER_S,
            metadata=upstream,
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        hint = retry_after_s(exc)
        upstream["upstream_status"] = str(status)
        if status == 429:
            return UpstreamRateLimited(
                "the model API rate-limited this call",
                retry_after_s=hint if hint is not None else DEFAULT_RETRY_AFTER_S,
                metadata=upstream,
            )
        if status in (401, 402, 403):
            return UpstreamAuthFailed(
                "the service's model API credentials were refused; operators have been told",
                metadata=upstream,
            )
        if status == 413 or (status == 400 and "prompt is too long" in exc.message):
            return RequestTooLarge(
                [FieldViolation("*", "the prompt is too large for the model's context window")]
            )
        if status in (408, 409, 499) or status >= 500:
            return UpstreamUnavailable(
                f"the model API failed with HTTP {status}",
                retry_after_s=hint if hint is not None else DEFAULT_RETRY_AFTER_S,
                metadata=upstream,
            )
        return UpstreamRejected(
            f"the model API rejected the call with HTTP {status}", metadata=upstream
        )
    # Response validation, credential loading and other SDK-side failures: our bug or setup.
    return UpstreamRejected(
        "the model API client failed before a usable answer arrived", metadata=upstream
    )


def is_retryable_upstream(exc: anthropic.AnthropicError) -> bool:
    """Whether another upstream attempt may succeed (rate limits, overloads, 5xx, network)."""
    if isinstance(exc, anthropic.APIConnectionError):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        return exc.status_code in (408, 409, 429, 499) or exc.status_code >= 500
    return isinstance(exc, anthropic.RetryableError)


def to_status(err: TiergateError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``err``: one ErrorInfo, plus BadRequest or RetryInfo."""
    details: list[any_pb2.Any] = []
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    details.append(_pack(info))
    if isinstance(err, InvalidRequest):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in err.violations
            ]
        )
        details.append(_pack(bad))
    if err.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(round(err.retry_after_s * 1000))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=err.code.value[0], message=err.message, details=details)


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class GrpcStatus(_Status, grpc.Status):  # type: ignore[misc]
    """A ``grpc.Status`` for ``ServicerContext.abort_with_status``."""


# gRPC's built-in client retries read this trailer: with it they wait as long as we ask.
PUSHBACK_TRAILER = "grpc-retry-pushback-ms"


def grpc_status(err: TiergateError) -> grpc.Status:
    """``err`` as gRPC sends it: rich details, plus the retry pushback when it is retryable."""
    status = rpc_status.to_status(to_status(err))
    trailers: tuple[tuple[str, str | bytes], ...] = tuple(status.trailing_metadata)
    if err.retry_after_s is not None:
        trailers += ((PUSHBACK_TRAILER, str(round(err.retry_after_s * 1000))),)
    return GrpcStatus(status.code, status.details, trailers)


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.RetryInfo,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
