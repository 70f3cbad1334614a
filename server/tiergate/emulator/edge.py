"""What every emulator route does at the HTTP edge: the header that tags its responses, the
guard that turns ``ApiError`` into the API's error body, the JSON body within the size limit,
and the dropped connection of a road that is down (or of a ``disconnect`` fault)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .errors import ApiError, invalid_request, new_request_id
from .files import MAX_REQUEST_BYTES

EMULATOR_HEADER = "x-tiergate-emulator"
"""Tags every response as the emulator's (value ``1``)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ApiHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
"""A route's handler, given the request id it answers under."""
Guard = Callable[[ApiHandler], Handler]
_log = logging.getLogger(__name__)


def guarded(handler: ApiHandler) -> Handler:
    """Turn ``ApiError`` into the API's error body; tag every response."""

    async def guard(request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        try:
            response = await handler(request, request_id)
        except ApiError as error:
            return error_response(error, request_id)
        except Exception:
            # A bug in a heuristic must still look like the API's 500, not an HTML page.
            _log.exception("emulator failed on %s %s", request.method, request.path)
            return error_response(ApiError(500, "api_error", "Internal server error"), request_id)
        if not response.prepared:  # a stream set its headers before its first byte
            response.headers.setdefault("request-id", request_id)
            response.headers.setdefault(EMULATOR_HEADER, "1")
        return response

    return guard


def error_response(error: ApiError, request_id: str) -> web.StreamResponse:
    """The API's error body for ``error``, with its headers."""
    headers = {"request-id": request_id, EMULATOR_HEADER: "1", **error.headers}
    return web.json_response(error.body(request_id), status=error.status, headers=headers)


async def read_body(request: web.Request) -> Any:
    """The request's JSON body; 413 beyond the API's size limit, 400 when it is not JSON."""
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        # Drained first (bounded by client_max_size): a client still sending would
        # otherwise stall, and read a reset instead of the answer.
        await request.read()
        raise ApiError(
            413, "request_too_large", "Request exceeds the maximum allowed number of bytes."
        )
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}") from exc


def drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection without a response, as an endpoint that is down."""
    transport = request.transport
    if transport is not None:
        transport.abort()  # the client sees the connection close without a response
    # aiohttp cannot write to an aborted transport and skips this response quietly.
    return web.Response(status=500)
