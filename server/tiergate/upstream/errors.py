"""The one mapping from ``anthropic`` SDK failures to the service's errors, and the retry rule.

try:
    await client.messages.create(...)
except anthropic.AnthropicError as exc:
    if not is_retryable_upstream(exc):
        raise from_upstream(exc, size_field="text") from exc

The retry rule is the API's: 408, 409, 429, 499, 5xx and connection errors are retried, unless
the response says otherwise (``x-should-retry``) or names a spend limit, which no retry helps.
"""

from __future__ import annotations

import email.utils
import math
import time

import anthropic

from tiergate.errors import (
    DEFAULT_RETRY_AFTER_S,
    FieldViolation,
    RequestTooLarge,
    TiergateError,
    UpstreamAuthFailed,
    UpstreamInvalidResponse,
    UpstreamNotRetryable,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamSpendLimit,
    UpstreamUnavailable,
)

SPEND_LIMIT_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)
"""``error.details.error_code`` values (SDK 2.13) of a 429 that is a spend limit, not a rate."""

SHOULD_RETRY_HEADER = "x-should-retry"
RETRY_AFTER_HORIZON_S = 120.0
"""The longest wait an upstream hint may ask for: a longer one (a skewed clock, a date in
2099) is cut to it, so no reading holds a call or a caller for longer."""


def retry_after_s(exc: anthropic.APIStatusError, *, now: float | None = None) -> float | None:
    """The upstream's own wait hint, if any: ``retry-after-ms``, or ``retry-after`` as seconds
    or as an HTTP date (a date in the past means now: 0), at most
    :data:`RETRY_AFTER_HORIZON_S`."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw) * scale
        except ValueError:
            seconds = math.nan
        if name == "retry-after" and math.isnan(seconds):
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                seconds = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        if not math.isnan(seconds):  # NaN is no hint; infinity is cut to the horizon
            return min(max(0.0, seconds), RETRY_AFTER_HORIZON_S)
    return None


def should_retry(exc: anthropic.APIStatusError) -> bool | None:
    """The response's explicit ``x-should-retry`` verdict, or None when it gives none."""
    return {"true": True, "false": False}.get(exc.response.headers.get(SHOULD_RETRY_HEADER, ""))


def is_spend_limit(exc: anthropic.APIStatusError) -> bool:
    return exc.error_code in SPEND_LIMIT_CODES


def _retried_status(status: int) -> bool:
    return status in (408, 409, 429, 499) or status >= 500


def is_retryable_upstream(exc: anthropic.AnthropicError) -> bool:
    """Whether another upstream attempt may succeed (rate limits, overloads, 5xx, network),
    as the response's ``x-should-retry`` overrides; a spend limit never is."""
    if isinstance(exc, anthropic.APIConnectionError | anthropic.APIResponseValidationError):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        if is_spend_limit(exc):
            return False
        verdict = should_retry(exc)
        return _retried_status(exc.status_code) if verdict is None else verdict
    return isinstance(exc, anthropic.RetryableError)


def from_upstream(exc: anthropic.AnthropicError, *, size_field: str) -> TiergateError:
    """Map an ``anthropic`` SDK exception to the service error the caller receives.

    ``size_field`` is the request field path named when the upstream finds the prompt too large.
    """
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
    if isinstance(exc, anthropic.APIResponseValidationError):
        # A 200 that is not a Messages API response: the upstream's fault, never ours.
        return UpstreamInvalidResponse(
            "the model API answered with something that is not a valid response",
            retry_after_s=DEFAULT_RETRY_AFTER_S,
            metadata=upstream,
        )
    if isinstance(exc, anthropic.APIStatusError):
        return _from_status(exc, upstream, size_field)
    # Response validation, credential loading and other SDK-side failures: our bug or setup.
    return UpstreamRejected(
        "the model API client failed before a usable answer arrived", metadata=upstream
    )


def _from_status(
    exc: anthropic.APIStatusError, upstream: dict[str, str], size_field: str
) -> TiergateError:
    status = exc.status_code
    upstream["upstream_status"] = str(status)
    if is_spend_limit(exc):
        return UpstreamSpendLimit(
            "the service reached its spend limit at the model API; operators have been told",
            metadata={**upstream, "error_code": str(exc.error_code)},
        )
    verdict = should_retry(exc)
    if verdict is False and _retried_status(status):
        return UpstreamNotRetryable(
            f"the model API failed with HTTP {status} and said a retry cannot help",
            metadata=upstream,
        )
    hint = retry_after_s(exc)
    retry_after = hint if hint is not None else DEFAULT_RETRY_AFTER_S
    if status == 429:
        return UpstreamRateLimited(
            "the model API rate-limited this call", retry_after_s=retry_after, metadata=upstream
        )
    if verdict is True or _retried_status(status):
        return UpstreamUnavailable(
            f"the model API failed with HTTP {status}", retry_after_s=retry_after, metadata=upstream
        )
    if status in (401, 402, 403):
        return UpstreamAuthFailed(
            "the service's model API credentials were refused; operators have been told",
            metadata=upstream,
        )
    # Recognised by its wording, the only sign the API gives (the SDK warns it may change).
    too_long = "prompt is too long" in (exc.api_message or exc.message)
    if status == 413 or (status == 400 and too_long):
        return RequestTooLarge(
            [FieldViolation(size_field, "the prompt is too large for the model's context window")]
        )
    return UpstreamRejected(
        f"the model API rejected the call with HTTP {status}", metadata=upstream
    )
