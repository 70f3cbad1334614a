"""The one mapping from ``anthropic`` SDK failures to the service's errors.

try:
    await client.messages.create(...)
except anthropic.AnthropicError as exc:
    raise from_upstream(exc) from exc
"""

from __future__ import annotations

import anthropic

from tiergate.errors import (
    DEFAULT_RETRY_AFTER_S,
    FieldViolation,
    RequestTooLarge,
    TiergateError,
    UpstreamAuthFailed,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)


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
