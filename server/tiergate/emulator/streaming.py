"""Streamed answers: a message as the API's server-sent events, paced by the latency model.

A ``stream: true`` request is answered with ``200 text/event-stream``: ``message_start`` (the
message with no content, its input usage and ``output_tokens`` so far), a ``ping``, per content
block ``content_block_start``, its deltas (``text_delta``, ``input_json_delta``,
``thinking_delta``) and ``content_block_stop``, then ``message_delta`` (``stop_reason`` and the
cumulative usage) and ``message_stop``. The first event waits the time to first token; the
deltas spread the generation time evenly, so a reader sees text at the seed's output rate.

Mid-stream faults (the stream has already answered 200, so an error cannot be a status):

- ``stream_error``: after ``after_deltas`` deltas, an ``error`` event (``overloaded_error`` by
  default, the one the API documents for streams) and the stream ends;
- ``stream_cut``: after ``after_deltas`` deltas the connection drops without another byte.

Every road that streams writes the same events, paced alike, with the same faults; only the
framing differs (:class:`Framing`): server-sent events on the Claude API, Bedrock's Messages
API endpoint, Vertex AI's ``:streamRawPredict`` and Foundry; AWS event-stream frames on Bedrock
InvokeModel (:mod:`tiergate.emulator.eventstream`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

STREAM_FAULTS = frozenset({"stream_error", "stream_cut"})
STREAM_ERROR_TYPES = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "invalid_request_error"}
)
"""Messages API error types a ``stream_error`` fault may send (each road in its own form)."""

# A delta carries a few words at a time, as the API's do (a handful of tokens each).
_PIECE_RE = re.compile(r"\S+\s*|\s+")
_WORDS_PER_DELTA = 3


@dataclass(frozen=True)
class StreamFault:
    """What goes wrong in a stream, and after how many deltas."""

    kind: str
    after_deltas: int
    error_type: str = "overloaded_error"


def pieces(text: str) -> list[str]:
    """``text`` cut into the deltas that carry it (joined, they are ``text`` again)."""
    words = _PIECE_RE.findall(text)
    return [
        "".join(words[i : i + _WORDS_PER_DELTA]) for i in range(0, len(words), _WORDS_PER_DELTA)
    ] or ([text] if text else [])


def _block_events(index: int, block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """The events of one content block: (name, data, carries output)."""
    kind = block.get("type")
    if kind == "text":
        start = {**block, "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        encoded = json.dumps(block.get("input", {}))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces(encoded)]
    elif kind == "thinking":
        start = {**block, "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"])]
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    else:  # redacted thinking and any other block arrive whole in their start
        start, deltas = block, []
    opened = {"type": "content_block_start", "index": index, "content_block": start}
    yield "content_block_start", opened, False
    for delta in deltas:
        moved = {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_delta", moved, True
    yield "content_block_stop", {"type": "content_block_stop", "index": index}, False


def events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """Every event of ``message`` (a whole Messages API response body), in order."""
    usage = dict(message["usage"])
    started = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    started.pop("stop_details", None)
    # message_start reports the input as billed and the output so far (one token, as the API).
    started["usage"] = {**usage, "output_tokens": min(1, usage.get("output_tokens", 0))}
    out: list[tuple[str, dict[str, Any], bool]] = [
        ("message_start", {"type": "message_start", "message": started}, False),
        ("ping", {"type": "ping"}, False),
    ]
    for index, block in enumerate(message["content"]):
        out.extend(_block_events(index, block))
    delta: dict[str, Any] = {
        "stop_reason": message["stop_reason"],
        "stop_sequence": message.get("stop_sequence"),
    }
    if message.get("stop_details") is not None:
        delta["stop_details"] = message["stop_details"]
    # message_delta's usage is cumulative: the whole bill of the message.
    out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}, False))
    out.append(("message_stop", {"type": "message_stop"}, False))
    return out


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


_MESSAGES = {
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "rate_limit_error": "Number of requests has exceeded your rate limit.",
    "invalid_request_error": "The request is not valid.",
}


def _sse_error(fault: StreamFault) -> bytes:
    # A Bedrock exception name is InvokeModel's own; the Messages API knows it as api_error.
    kind = fault.error_type if fault.error_type in _MESSAGES else "api_error"
    return _sse("error", {"type": "error", "error": {"type": kind, "message": _MESSAGES[kind]}})


@dataclass(frozen=True)
class Framing:
    """How a road writes its stream: the content type, an event, and a fault's error."""

    content_type: str
    event: Callable[[str, dict[str, Any]], bytes]
    error: Callable[[StreamFault], bytes]


SSE = Framing("text/event-stream", _sse, _sse_error)
"""Server-sent events, as the Messages API streams."""


async def stream_message(
    request: web.Request,
    message: dict[str, Any],
    headers: dict[str, str],
    *,
    generation_s: float,
    fault: StreamFault | None = None,
    framing: Framing = SSE,
) -> web.StreamResponse:
    """Write ``message`` to ``request`` as its road's events over ``generation_s`` seconds
    (the time to first token is the caller's to wait before)."""
    response = web.StreamResponse(
        status=200,
        headers={**headers, "content-type": framing.content_type, "cache-control": "no-cache"},
    )
    await response.prepare(request)
    planned = events(message)
    outputs = sum(1 for _, _, carries in planned if carries) or 1
    pause = generation_s / outputs
    sent = 0
    for name, data, carries in planned:
        if carries:
            if fault is not None and sent >= fault.after_deltas:
                if fault.kind == "stream_cut":
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(framing.error(fault))
                await response.write_eof()
                return response
            if pause > 0:
                await asyncio.sleep(pause)
            sent += 1
        await response.write(framing.event(name, data))
    await response.write_eof()
    return response
