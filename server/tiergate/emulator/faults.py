"""Injectable faults: errors, slowness and broken output on demand.

Faults queue in FIFO order; each applies to the next ``count`` requests (optionally only those
for one model). Error faults answer with the API's error body and bill nothing; billed faults
(truncated, malformed, refusal, empty, off_schema) change the output but report usage as a
normal call would.

A ``spend_limit`` fault is the 429 the API sends when the organisation's spend limit is reached:
``error.details.error_code`` names it, as SDK 2.13 models it (``EnforcedSpendLimitReachedError``,
``ContractSpendLimitReachedError``); retrying cannot help. Any error fault can also send
``x-should-retry``, which overrides the SDK's retry rule for the status.

Faults for an upstream that answers, but wrongly (a broken proxy, a skewed clock, a buggy
endpoint), none of which the real API sends on purpose:

- ``headers``: a normal answer with extra (or replaced) response headers, e.g. rate-limit
  readings in the past, in 2099 or unreadable; ``headers`` also adds to any other fault's reply.
- ``raw_body``: ``body`` verbatim with ``status`` and ``content_type`` (an HTML page with 200,
  a JSON object that is not a message), in place of the answer; bills nothing.
- ``cut_body``: a normal answer whose JSON stops half-way (a consistent ``content-length``).
- ``stream_error`` / ``stream_cut`` (streamed requests only; a non-streamed one answers
  normally): after ``after_deltas`` content deltas, an error event (``stream_error_type``,
  ``overloaded_error`` by default; on Bedrock InvokeModel an event-stream exception), or the
  connection drops (:mod:`tiergate.emulator.streaming`).
- ``rewritten``: a normal answer with ``usage`` fields and top-level ``message_fields``
  replaced by any JSON value (negative, huge or text token counts, ``"usage": null``, another
  ``type``); a stream carries the usage fields in ``message_start`` and ``message_delta`` (the
  message fields apply to whole answers only).

    >>> queue = FaultQueue()
    >>> queue.push(Fault("rate_limit", retry_after_s=2.0))
    >>> queue.take("claude-haiku-4-5").kind
    'rate_limit'
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast, get_args

from aiohttp import web

from .errors import ApiError, invalid_request
from .eventstream import EXCEPTIONS
from .queues import CountedQueue
from .responder import Output
from .streaming import STREAM_ERROR_TYPES
from .tokens import count_tokens, truncate_to_tokens

FaultKind = Literal[
    "rate_limit",
    "spend_limit",
    "overloaded",
    "server_error",
    "gateway_timeout",
    "unauthorized",
    "forbidden",
    "bad_request",
    "slow",
    "truncated",
    "malformed",
    "refusal",
    "empty",
    "off_schema",
    "disconnect",
    "headers",
    "raw_body",
    "cut_body",
    "rewritten",
    "stream_error",
    "stream_cut",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

REFUSAL_CATEGORIES: dict[str, str] = {
    "cyber": "The request could enable cyber harm, such as malware or exploit development.",
    "bio": "The request could enable biological harm, such as dangerous lab methods.",
    "frontier_llm": "The request could assist the development of competing AI models.",
    "reasoning_extraction": "The request asks to reproduce internal reasoning in the response.",
    "general_harms": "The request could be related to an area that was determined as harmful.",
}

SPEND_LIMIT_CODES: dict[str, str] = {
    "enforced_spend_limit_reached": (
        "The organization has crossed the monthly API usage threshold of its API tier."
    ),
    "contract_spend_limit_reached": "The organization has reached the spend limit of its contract.",
}
"""``error.details.error_code`` values of a spend-limit 429, with the SDK's description."""

_ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "rate_limit_error", "Number of requests has exceeded your rate limit."),
    "spend_limit": (429, "rate_limit_error", ""),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
    "gateway_timeout": (504, "timeout_error", "Request timed out before a response was produced."),
    "unauthorized": (401, "authentication_error", "invalid x-api-key"),
    "forbidden": (403, "permission_error", "Your API key does not have permission to use this."),
    "bad_request": (400, "invalid_request_error", "messages: the request is not valid."),
}
BILLED_KINDS = frozenset({"truncated", "malformed", "refusal", "empty", "off_schema"})
RESHAPING_KINDS = frozenset({"headers", "cut_body", "rewritten"})
"""Faults that let the normal answer through and change its HTTP reply."""
# What an injected instruction would make a model say: valid JSON, outside the schema.
INJECTED = "IGNORE THE SCHEMA: HACKED"


@dataclass(frozen=True)
class Fault:
    """One fault to inject into the next ``count`` matching requests."""

    kind: FaultKind
    count: int = 1
    """How many requests it applies to."""
    model: str | None = None
    """Only requests for this model (as sent) match; None matches all."""
    retry_after_s: float = 1.0
    """rate_limit: the wait the response asks for (``retry-after`` and ``retry-after-ms``)."""
    retry_after_http_date: bool = False
    """rate_limit: send ``retry-after`` as an HTTP date (now + the wait) and no
    ``retry-after-ms``."""
    should_retry: bool | None = None
    """Error faults: send ``x-should-retry: true|false``; None sends no such header."""
    error_code: str = "enforced_spend_limit_reached"
    """spend_limit: ``error.details.error_code`` (a key of :data:`SPEND_LIMIT_CODES`)."""
    delay_s: float = 0.0
    """slow: extra seconds before answering normally."""
    category: str = "cyber"
    """refusal: ``stop_details.category``."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Any fault: extra response headers (they replace the emulator's own of the same name)."""
    body: str = ""
    """raw_body: the response body, verbatim."""
    status: int = 200
    """raw_body: the HTTP status."""
    content_type: str = "text/html; charset=utf-8"
    """raw_body: the ``content-type``."""
    after_deltas: int = 0
    """stream_error, stream_cut: content deltas sent before the stream breaks."""
    stream_error_type: str = "overloaded_error"
    """stream_error: the error event's Messages API type, or a Bedrock ``ResponseStream``
    exception name (InvokeModel sends it as is; the other roads as ``api_error``)."""
    usage: Mapping[str, Any] = field(default_factory=dict)
    """rewritten: ``usage`` fields to replace, with any JSON value."""
    message_fields: Mapping[str, Any] = field(default_factory=dict)
    """rewritten: top-level fields of the message to replace, with any JSON value."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.category not in REFUSAL_CATEGORIES:
            raise ValueError(f"unknown refusal category {self.category!r}")
        if self.retry_after_s < 0 or self.delay_s < 0:
            raise ValueError("retry_after_s and delay_s must not be negative")
        if self.error_code not in SPEND_LIMIT_CODES:
            raise ValueError(f"unknown spend-limit error_code {self.error_code!r}")
        if self.should_retry is not None and self.kind not in _ERRORS:
            raise ValueError("should_retry applies to error faults only")
        if self.retry_after_http_date and self.kind != "rate_limit":
            raise ValueError("retry_after_http_date applies to rate_limit faults only")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()):
            raise ValueError("headers must map strings to strings")
        object.__setattr__(self, "headers", dict(self.headers))
        if (self.body or self.status != 200) and self.kind != "raw_body":
            raise ValueError("body and status apply to raw_body faults only")
        if not 200 <= self.status <= 599:
            raise ValueError("status must be an HTTP status from 200 to 599")
        if self.stream_error_type not in STREAM_ERROR_TYPES | set(EXCEPTIONS):
            raise ValueError(f"unknown stream_error_type {self.stream_error_type!r}")
        if (self.usage or self.message_fields) and self.kind != "rewritten":
            raise ValueError("usage and message_fields apply to rewritten faults only")
        object.__setattr__(self, "usage", dict(self.usage))
        object.__setattr__(self, "message_fields", dict(self.message_fields))

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Parse one fault from the control route's JSON; 400 ``ApiError`` when invalid."""
        if not isinstance(data, dict):
            raise invalid_request("each fault must be an object with a 'kind'")
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise invalid_request(f"unknown fault fields: {sorted(unknown)}")
        try:
            return cls(**cast(dict[str, Any], data))
        except (TypeError, ValueError) as exc:
            raise invalid_request(f"invalid fault: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The fault as the control route accepts it."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def error(self) -> ApiError | None:
        """The error response this fault answers with, if it is an error fault."""
        if self.kind not in _ERRORS:
            return None
        status, error_type, message = _ERRORS[self.kind]
        headers: dict[str, str] = {}
        details = None
        if self.kind == "rate_limit" and self.retry_after_http_date:
            # An HTTP date has whole seconds: round up so the wait is never shorter.
            when = time.time() + math.ceil(self.retry_after_s)
            headers["retry-after"] = email.utils.formatdate(when, usegmt=True)
        elif self.kind == "rate_limit":
            # retry-after is whole seconds; the SDK prefers the precise retry-after-ms.
            headers["retry-after"] = str(math.ceil(self.retry_after_s))
            headers["retry-after-ms"] = str(round(self.retry_after_s * 1000))
        if self.kind == "spend_limit":
            message = SPEND_LIMIT_CODES[self.error_code]
            details = {"error_code": self.error_code}
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        headers.update(self.headers)
        return ApiError(status, error_type, message, headers, details)

    def raw_response(self, headers: Mapping[str, str]) -> web.Response:
        """raw_body: the verbatim reply, with ``headers`` (request id, rate limits) and the
        fault's own."""
        return web.Response(
            status=self.status,
            body=self.body.encode(),
            headers={**headers, **self.headers, "content-type": self.content_type},
        )


def reshaped_response(
    fault: Fault | None, body: dict[str, Any], headers: Mapping[str, str]
) -> web.Response:
    """The reply to an answered request, as a reshaping fault (if any) changes it."""
    if fault is None or fault.kind not in RESHAPING_KINDS:
        return web.json_response(body, headers=headers)
    headers = {**headers, **fault.headers}
    if fault.kind == "rewritten":
        body = rewritten_usage(fault, {**body, **fault.message_fields})
    encoded = json.dumps(body).encode()
    if fault.kind == "cut_body":
        encoded = encoded[: len(encoded) // 2]
    return web.Response(body=encoded, headers={**headers, "content-type": "application/json"})


def rewritten_usage(fault: Fault | None, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a ``rewritten`` fault's usage fields (a stream's carry them in
    ``message_start`` and ``message_delta``)."""
    if fault is None or fault.kind != "rewritten" or not fault.usage:
        return body
    if not isinstance(body.get("usage"), dict):
        return body
    return {**body, "usage": {**body["usage"], **fault.usage}}


class FaultQueue(CountedQueue[Fault]):
    """FIFO queue of faults; safe to fill from another thread than the server's."""


def apply_output_fault(fault: Fault | None, output: Output) -> Output:
    """Turn a normal output into what a billed fault returns."""
    if fault is None or fault.kind not in BILLED_KINDS or output.text is None:
        return output
    text = output.text
    if fault.kind == "truncated":
        # The real API cuts at max_tokens: JSON stops mid-way and does not parse.
        half = max(1, count_tokens(text) // 2)
        return Output(truncate_to_tokens(text, half), "max_tokens")
    if fault.kind == "malformed":
        # Chatter around the answer: JSON that no longer parses (around a bare plain-text
        # answer the client still reads the one name in it, as a person would).
        return Output(
            f"Sure! Here is the result:\n{text}\nLet me know if you need more.", "end_turn"
        )
    if fault.kind == "off_schema":
        # Valid JSON that breaks the schema, as if a prompt injection had won: every string
        # replaced (enums included) and a property the schema does not allow. A plain-text
        # answer (no schema sent) becomes the injected text itself.
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return Output(INJECTED, "end_turn")
        broken = _inject(parsed)
        if isinstance(broken, dict):
            broken["injected"] = True
        return Output(json.dumps(broken), "end_turn")
    if fault.kind == "refusal":
        details = {
            "type": "refusal",
            "category": fault.category,
            "explanation": REFUSAL_CATEGORIES[fault.category],
        }
        return Output("I can't help with that request.", "refusal", details)
    return Output(None, "end_turn")


def _inject(value: Any) -> Any:
    if isinstance(value, str):
        return INJECTED
    if isinstance(value, list):
        return [_inject(item) for item in value]
    if isinstance(value, dict):
        return {key: _inject(item) for key, item in value.items()}
    return value
