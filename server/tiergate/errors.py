"""Errors the service returns, and the one mapping from upstream failures to them.

The tree (status code and ``ErrorInfo.reason`` in brackets)::

    TiergateError
    +-- InvalidRequest        [INVALID_ARGUMENT, INVALID_REQUEST]     + BadRequest
    +-- RequestTooLarge       [INVALID_ARGUMENT, REQUEST_TOO_LARGE]   + BadRequest
    +-- Unauthenticated       [UNAUTHENTICATED, UNAUTHENTICATED]
    +-- Overloaded            [RESOURCE_EXHAUSTED, OVERLOADED]        + RetryInfo
    +-- UpstreamRateLimited   [RESOURCE_EXHAUSTED, UPSTREAM_RATE_LIMITED] + RetryInfo
    +-- BudgetExceeded        [RESOURCE_EXHAUSTED, BUDGET_EXCEEDED]   + QuotaFailure, RetryInfo
    +-- SharedStateUnavailable [UNAVAILABLE, SHARED_STATE_UNAVAILABLE] + RetryInfo
    +-- UpstreamUnavailable   [UNAVAILABLE, UPSTREAM_UNAVAILABLE]     + RetryInfo
    +-- OutputInvalid         [UNAVAILABLE, OUTPUT_INVALID]           + RetryInfo
    +-- DeadlineExceeded      [DEADLINE_EXCEEDED, DEADLINE_EXCEEDED]
    +-- ModelRefused          [FAILED_PRECONDITION, MODEL_REFUSED]    metadata: category
    +-- UpstreamNotRetryable  [FAILED_PRECONDITION, UPSTREAM_NOT_RETRYABLE]
    |   +-- UpstreamSpendLimit [FAILED_PRECONDITION, UPSTREAM_SPEND_LIMIT] metadata: error_code
    +-- ServiceDisabled       [FAILED_PRECONDITION, SERVICE_DISABLED] metadata: setting
    +-- UpstreamAuthFailed    [INTERNAL, UPSTREAM_AUTH_FAILED]
    +-- UpstreamRejected      [INTERNAL, UPSTREAM_REJECTED]

OutputInvalid carries RetryInfo only when another try may help (see ``model_client``).
:mod:`tiergate.upstream_errors` maps every ``anthropic`` exception to the most specific of
these; :mod:`tiergate.status` encodes one as the ``google.rpc.Status`` gRPC sends. Messages
never quote the caller's text, the model's output or the API key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

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

    @property
    def billed(self) -> bool:
        """Whether the failed RPC paid for model calls before failing."""
        return bool(getattr(self.completion, "billed_calls", 0))

    @property
    def client_may_retry(self) -> bool:
        """Whether a client's automatic retry policy may repeat the RPC: only when a retry may
        help (RetryInfo) and the failure billed nothing, so automatic retries never multiply
        billed calls; the caller's own code still sees RetryInfo and decides."""
        return self.retry_after_s is not None and not self.billed


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


@dataclass(frozen=True)
class QuotaViolation:
    """One exhausted limit, as ``google.rpc.QuotaFailure`` names it."""

    subject: str
    description: str


class BudgetExceeded(TiergateError):
    """The caller's spend limit leaves no room for this call's worst case."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "BUDGET_EXCEEDED"

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[QuotaViolation],
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.quota_violations = list(violations)


class SharedStateUnavailable(TiergateError):
    """The store shared by the replicas (budgets) is unreachable and budgets fail closed."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "SHARED_STATE_UNAVAILABLE"


class UpstreamUnavailable(TiergateError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UPSTREAM_UNAVAILABLE"


class OutputInvalid(TiergateError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "OUTPUT_INVALID"


class DeadlineExceeded(TiergateError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class ModelRefused(TiergateError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "MODEL_REFUSED"


class UpstreamNotRetryable(TiergateError):
    """The upstream said a retry cannot help (``x-should-retry: false``): an operator acts."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "UPSTREAM_NOT_RETRYABLE"


class UpstreamSpendLimit(UpstreamNotRetryable):
    """The organisation's spend limit upstream is reached; no retry helps until it is raised."""

    reason = "UPSTREAM_SPEND_LIMIT"


class ServiceDisabled(TiergateError):
    """The service called is off on this server; ``metadata['setting']`` turns it on."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "SERVICE_DISABLED"


class UpstreamAuthFailed(TiergateError):
    code = grpc.StatusCode.INTERNAL
    reason = "UPSTREAM_AUTH_FAILED"


class UpstreamRejected(TiergateError):
    code = grpc.StatusCode.INTERNAL
    reason = "UPSTREAM_REJECTED"


# Seconds to suggest when a retryable upstream error carries no retry-after of its own.
DEFAULT_RETRY_AFTER_S = 1.0
