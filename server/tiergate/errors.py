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
    +-- UpstreamInvalidResponse [UNAVAILABLE, UPSTREAM_INVALID_RESPONSE] + RetryInfo
    +-- OutputInvalid         [UNAVAILABLE, OUTPUT_INVALID]           + RetryInfo
    +-- DeadlineExceeded      [DEADLINE_EXCEEDED, DEADLINE_EXCEEDED]
    +-- ModelRefused          [FAILED_PRECONDITION, MODEL_REFUSED]    metadata: category
    +-- UpstreamNotRetryable  [FAILED_PRECONDITION, UPSTREAM_NOT_RETRYABLE]
    |   +-- UpstreamSpendLimit [FAILED_PRECONDITION, UPSTREAM_SPEND_LIMIT] metadata: error_code
    +-- ServiceDisabled       [FAILED_PRECONDITION, SERVICE_DISABLED] metadata: setting
    +-- UpstreamAuthFailed    [INTERNAL, UPSTREAM_AUTH_FAILED]
    +-- UpstreamRejected      [INTERNAL, UPSTREAM_REJECTED]

OutputInvalid carries RetryInfo only when another try may help (see ``model_client``).
:mod:`tiergate.upstream.errors` maps every ``anthropic`` exception to the most specific of
these; :mod:`tiergate.serving.status` encodes one as the ``google.rpc.Status`` gRPC sends. Messages
never quote the caller's text, the model's output or the API key. Nothing here needs grpc: the
codes are :class:`Code`, which :mod:`tiergate.serving.status` turns into ``grpc.StatusCode``, so
the pure layers (validation, the schema compiler) raise these without loading a transport.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DOMAIN = "tiergate"


class Code(enum.Enum):
    """The status codes the service answers with, by their ``google.rpc.Code`` numbers (the
    same names and numbers as ``grpc.StatusCode``)."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


@dataclass(frozen=True)
class FieldViolation:
    """Why a request field is invalid; ``field`` is a dotted path such as ``labels[2].name``."""

    field: str
    description: str


class TiergateError(Exception):
    """Base of every error the service returns on purpose."""

    code: Code = Code.INTERNAL
    reason: str = "INTERNAL"
    completion: object | None = None
    """What the model calls billed before the failure (a ``model_client.Completion``), if any."""
    retry_budget_spent: bool = False
    """The upstream's retry budget refused a retry: it is failing for most calls, so no client
    retries automatically (that would multiply an outage's load); RetryInfo still tells the
    caller's own code when to try again."""
    answer_begun: bool = False
    """A stream had already sent part of its answer: an automatic retry would write a
    different answer over it, so the client's policy is told not to retry."""

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
        return (
            self.retry_after_s is not None
            and not self.billed
            and not self.retry_budget_spent
            and not self.answer_begun
        )


class InvalidRequest(TiergateError):
    code = Code.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        problems = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {problems}")
        self.violations = list(violations)


class RequestTooLarge(InvalidRequest):
    reason = "REQUEST_TOO_LARGE"


class Unauthenticated(TiergateError):
    code = Code.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Overloaded(TiergateError):
    code = Code.RESOURCE_EXHAUSTED
    reason = "OVERLOADED"


class UpstreamRateLimited(TiergateError):
    code = Code.RESOURCE_EXHAUSTED
    reason = "UPSTREAM_RATE_LIMITED"


@dataclass(frozen=True)
class QuotaViolation:
    """One exhausted limit, as ``google.rpc.QuotaFailure`` names it."""

    subject: str
    description: str


class BudgetExceeded(TiergateError):
    """The caller's spend limit leaves no room for this call's worst case."""

    code = Code.RESOURCE_EXHAUSTED
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

    code = Code.UNAVAILABLE
    reason = "SHARED_STATE_UNAVAILABLE"


class UpstreamUnavailable(TiergateError):
    code = Code.UNAVAILABLE
    reason = "UPSTREAM_UNAVAILABLE"


class UpstreamInvalidResponse(TiergateError):
    """The upstream answered with something that cannot be a Messages API bill: its fault,
    never ours (so not INTERNAL)."""

    code = Code.UNAVAILABLE
    reason = "UPSTREAM_INVALID_RESPONSE"


class OutputInvalid(TiergateError):
    code = Code.UNAVAILABLE
    reason = "OUTPUT_INVALID"


class DeadlineExceeded(TiergateError):
    code = Code.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class ModelRefused(TiergateError):
    code = Code.FAILED_PRECONDITION
    reason = "MODEL_REFUSED"


class UpstreamNotRetryable(TiergateError):
    """The upstream said a retry cannot help (``x-should-retry: false``): an operator acts."""

    code = Code.FAILED_PRECONDITION
    reason = "UPSTREAM_NOT_RETRYABLE"


class UpstreamSpendLimit(UpstreamNotRetryable):
    """The organisation's spend limit upstream is reached; no retry helps until it is raised."""

    reason = "UPSTREAM_SPEND_LIMIT"


class ServiceDisabled(TiergateError):
    """The service called is off on this server; ``metadata['setting']`` turns it on."""

    code = Code.FAILED_PRECONDITION
    reason = "SERVICE_DISABLED"


class UpstreamAuthFailed(TiergateError):
    code = Code.INTERNAL
    reason = "UPSTREAM_AUTH_FAILED"


class UpstreamRejected(TiergateError):
    code = Code.INTERNAL
    reason = "UPSTREAM_REJECTED"


# Seconds to suggest when a retryable upstream error carries no retry-after of its own.
DEFAULT_RETRY_AFTER_S = 1.0
