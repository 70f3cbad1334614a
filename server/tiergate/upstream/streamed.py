"""One streamed attempt, read as the model writes it: the SDK's events to the final message.

The SDK's ``messages.stream`` decodes the events (server-sent events, or AWS event-stream
frames on Bedrock's InvokeModel). Of them, ``message_start`` carries the input as billed, so
from then on the attempt owes at most that input and its whole ``max_tokens`` of output: the
bound a cancelled stream settles at (:attr:`Attempt.bound`). Each ``text_delta`` or
``input_json_delta`` (the answer tool's input, where a road asks by forced tool use) goes to
:class:`~tiergate.upstream.written.Written`, and what it reads goes to the caller's sink. The
final message, whose usage ``message_delta`` completed, is the exact bill.

    attempt = Attempt()
    found = await read(stream, facts=facts, max_tokens=1024, on_partial=sink, attempt=attempt)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anthropic
import httpx2
from anthropic.lib.streaming import AsyncMessageStream
from anthropic.types import Message

from tiergate.calls.prompt import JsonObject
from tiergate.ledger import ModelFacts, TokenUsage
from tiergate.upstream.answers import checked_bill
from tiergate.upstream.written import Written

PartialSink = Callable[[JsonObject, JsonObject], Awaitable[bool]]
"""Receives a streamed output as far as it is written (:class:`Written`'s ``growing``, then
``complete``); says whether it sent the caller anything."""


@dataclass
class Attempt:
    """What one streamed attempt has shown the caller and may owe so far."""

    forwarded: int = 0
    """Partials that reached the caller: after one, no other attempt may follow."""
    bound: TokenUsage | None = None
    """From ``message_start`` on: the input as billed and ``max_tokens`` of output."""


async def read(
    stream: AsyncMessageStream,
    *,
    facts: ModelFacts,
    max_tokens: int,
    on_partial: PartialSink,
    attempt: Attempt,
) -> Message:
    """Read ``stream`` to its final message, handing its answer to ``on_partial`` as it is
    written. A ``message_start`` that cannot be a bill is ``InvalidAnswer``, as a whole
    answer would be; an error event arrives as the SDK's ``APIStatusError``."""
    written = Written()
    try:
        async for event in stream:
            if event.type == "message_start":
                _, started = checked_bill(event.message, facts)
                attempt.bound = dataclasses.replace(started, output_tokens=max_tokens)
            elif event.type == "content_block_delta":
                if event.delta.type == "text_delta":
                    piece = event.delta.text
                elif event.delta.type == "input_json_delta":
                    piece = event.delta.partial_json
                else:
                    continue
                if written.feed(piece):
                    attempt.forwarded += await on_partial(written.growing, written.complete)
    except httpx2.TransportError as exc:
        # Mid-stream the SDK lets its HTTP client's errors through unwrapped.
        raise anthropic.APIConnectionError(
            message=f"the stream broke off ({type(exc).__name__})",
            request=stream.response.request,
        ) from exc
    return await stream.get_final_message()
