"""An error event in a stream, after its 200, as the HTTP error it stands for.

The SDK raises an ``error`` event as an ``APIStatusError`` with the stream's status, 200, and
the event as its body; the retry rule and the mapping to the service's errors
(:mod:`tiergate.upstream.errors`) read statuses. Each road names the error in its own way:

- the Messages API's ``error`` event (the Claude API, Bedrock's Messages API endpoint, Vertex AI,
  Foundry) carries one of the API's error types, each documented with its HTTP status;
- Bedrock InvokeModel's event stream carries a ``ResponseStream`` exception, which the SDK hands
  on as an ``error`` event of that exception's name; AWS documents a status for each, and calls
  ``modelStreamErrorException`` (a 424) retryable, which the rebuilt response says with
  ``x-should-retry: true``.

    >>> status_of("overloaded_error"), status_of("throttlingException")
    ((529, None), (429, None))
"""

from __future__ import annotations

from collections.abc import Mapping

import anthropic
import httpx2

from tiergate.upstream.errors import SHOULD_RETRY_HEADER

# Anthropic's "Errors" page: the HTTP status of each error type.
_API_ERRORS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# AWS's Bedrock Runtime "ResponseStream" reference: the status of each stream exception.
_BEDROCK_EXCEPTIONS: Mapping[str, int] = {
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "modelTimeoutException": 408,
    "serviceUnavailableException": 503,
    "throttlingException": 429,
    "validationException": 400,
}
_RETRY_DOCUMENTED = frozenset({"modelStreamErrorException"})
"""Exceptions whose status the retry rule does not retry but AWS says to retry."""

_CLASSES: Mapping[int, type[anthropic.APIStatusError]] = {
    400: anthropic.BadRequestError,
    401: anthropic.AuthenticationError,
    403: anthropic.PermissionDeniedError,
    404: anthropic.NotFoundError,
    429: anthropic.RateLimitError,
}


def status_of(kind: str) -> tuple[int, bool | None]:
    """The HTTP status an error event of type ``kind`` stands for (500 for an unknown one),
    and the retry verdict its documentation adds (None: the status decides)."""
    status = _API_ERRORS.get(kind) or _BEDROCK_EXCEPTIONS.get(kind) or 500
    return status, (True if kind in _RETRY_DOCUMENTED else None)


def as_status(exc: anthropic.APIStatusError) -> anthropic.APIStatusError:
    """A stream's error event (status 200) as the error response it stands for, so it is
    retried and reported as one; any other error as it is."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    if exc.status_code != 200 or not isinstance(kind, str):
        return exc
    status, verdict = status_of(kind)
    headers = {} if verdict is None else {SHOULD_RETRY_HEADER: "true"}
    response = httpx2.Response(status, json=body, headers=headers, request=exc.response.request)
    error_class = _CLASSES.get(status) or (
        anthropic.InternalServerError if status >= 500 else anthropic.APIStatusError
    )
    return error_class(exc.message, response=response, body=body)
