"""The Messages API core every road shares, once a route has the request's body.

In order: validation, recording the body, error faults, rate limits, then the answer (an
answering fault, a script or the heuristic reply, :mod:`.reply`) after the first-token delay,
whole or streamed in the road's framing (:mod:`.streaming`). Fault and script entries are
peeked and only consumed once they decide the request; a road's own faults come before the
ones for every road. Message batches take the same path without latency or rate limits.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from .cache import CachePlan, PrefixCache
from .config import EmulatorConfig
from .edge import EMULATOR_HEADER, drop_connection
from .errors import ApiError
from .eventstream import EVENT_STREAM
from .faults import FaultQueue, reshaped_response, rewritten_usage
from .latency import LatencyModel
from .models import resolve_model
from .queues import CountedQueue
from .ratelimits import RateLimiter
from .reply import Reply, message_body, reply_for
from .roads import Road
from .scripts import Script
from .streaming import SSE, STREAM_FAULTS, StreamFault, stream_message
from .validation import validate_request

# Faults that let the normal answer (scripted or heuristic) through, delayed or broken off.
_PASSING_FAULTS = frozenset({"slow", *STREAM_FAULTS})


class Answering(Protocol):
    """What the answer path reaches in the emulator."""

    config: EmulatorConfig
    cache: PrefixCache
    rate_limiter: RateLimiter
    latency: LatencyModel
    requests: list[dict[str, Any]]
    faults: FaultQueue
    road_faults: dict[Road, FaultQueue]
    scripts: CountedQueue[Script]
    abandoned: int


def _record(emulator: Answering, body: Any) -> None:
    emulator.requests.append(body)
    if len(emulator.requests) > emulator.config.max_recorded_requests:
        del emulator.requests[0]


async def serve_message(
    emulator: Answering,
    request: web.Request,
    request_id: str,
    body: Any,
    road: Road,
    wire_model: str | None,
) -> web.StreamResponse:
    """Answer one ``/v1/messages`` call of ``road``; ``wire_model`` is the model as the road's
    caller named it (the response names it so), None on the Claude API."""
    message = validate_request(body, models=emulator.config.models)
    _record(emulator, body)
    model_id = resolve_model(message.model, emulator.config.models)
    # Order: error faults, then rate limits, then the answer (fault, script or heuristic);
    # entries are peeked and only consumed once they decide the request. A road's own
    # faults come before the ones for every road.
    faults = emulator.road_faults[road]
    if faults.peek(message.model) is None:
        faults = emulator.faults
    fault = faults.peek(message.model)
    if fault is not None:
        error = fault.error()
        if error is not None:
            faults.take(message.model)
            error.headers.update(emulator.rate_limiter.headers(model_id))
            raise error  # error faults bill nothing and touch no cache
        if fault.kind == "disconnect":
            faults.take(message.model)
            return drop_connection(request)
        if fault.kind == "raw_body":
            faults.take(message.model)
            limits = emulator.rate_limiter.headers(model_id)
            return fault.raw_response({"request-id": request_id, **limits})
    # A fault that answers (a broken output) leaves the script for the next request.
    answering_fault = fault is not None and fault.kind not in _PASSING_FAULTS
    script = None if answering_fault else emulator.scripts.peek(message.model)
    prompt = message.prompt
    if script is not None and script.overrides_input_usage:
        plan = CachePlan(prompt.total_tokens, 0, ())  # no read, no write
    else:
        plan = emulator.cache.plan(message.model, prompt.segments)
    emulator.rate_limiter.admit(
        model_id,
        input_tokens=plan.input_tokens + plan.creation_tokens,
        max_tokens=message.max_tokens,
    )
    if fault is not None:
        faults.take(message.model)
    if script is not None:
        emulator.scripts.take(message.model)
    reply = reply_for(message, fault, script)
    if message.forced_tool is not None:
        reply = reply.as_tool_use(message.forced_tool)
    delays = emulator.latency.plan(message.model, reply.output_tokens)
    first_token_s = delays.first_token_s + (fault.delay_s if fault and fault.kind == "slow" else 0)
    body = message_body(message, plan, reply, emulator.config.default_inference_geo)
    if wire_model is not None:
        body["model"] = wire_model
    try:
        if first_token_s > 0:
            await asyncio.sleep(first_token_s)
        # The response has begun: only now do its cache writes become readable.
        emulator.cache.commit(plan)
        if message.stream:
            broken = None
            if fault is not None and fault.kind in STREAM_FAULTS:
                broken = StreamFault(fault.kind, fault.after_deltas, fault.stream_error_type)
            # A stream's headers go first: its rate limits as reserved at the start.
            headers = _headers(emulator, request_id, model_id, reply)
            return await stream_message(
                request,
                rewritten_usage(fault, body),
                headers,
                generation_s=delays.generation_s,
                fault=broken,
                framing=EVENT_STREAM if road == "bedrock-invoke" else SSE,
            )
        if delays.generation_s > 0:
            await asyncio.sleep(delays.generation_s)
    except (asyncio.CancelledError, ConnectionResetError):
        # The client hung up (a cancelled call, a passed deadline): generation stops.
        emulator.abandoned += 1
        raise
    finally:
        # The output reservation shrinks to what was generated once the answer ends.
        used = reply.output_tokens
        emulator.rate_limiter.settle(model_id, reserved=message.max_tokens, used=used)
    return reshaped_response(fault, body, _headers(emulator, request_id, model_id, reply))


def _headers(emulator: Answering, request_id: str, model_id: str, reply: Reply) -> dict[str, str]:
    return {
        "request-id": request_id,
        EMULATOR_HEADER: "1",
        **emulator.rate_limiter.headers(model_id),
        **reply.headers,
    }


def answer_batched(emulator: Answering, params: Any) -> dict[str, Any]:
    """One batch request's message: validation, faults, scripts and the prefix cache as
    ``POST /v1/messages``, without latency or rate limits; raises ``ApiError``."""
    message = validate_request(params, models=emulator.config.models)
    _record(emulator, params)
    fault = emulator.faults.peek(message.model)
    if fault is not None:
        emulator.faults.take(message.model)
        error = fault.error()
        if error is not None:
            raise error
        if fault.kind in ("disconnect", "raw_body"):
            raise ApiError(500, "api_error", "Internal server error")
    answering_fault = fault is not None and fault.kind not in _PASSING_FAULTS
    script = None if answering_fault else emulator.scripts.peek(message.model)
    if script is not None:
        emulator.scripts.take(message.model)
    if script is not None and script.overrides_input_usage:
        plan = CachePlan(message.prompt.total_tokens, 0, ())
    else:
        plan = emulator.cache.plan(message.model, message.prompt.segments)
    emulator.cache.commit(plan)
    reply = reply_for(message, fault, script)
    return message_body(message, plan, reply, emulator.config.default_inference_geo)
