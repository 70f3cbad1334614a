"""The HTTP client under every road's SDK client, and the hook that sees each response.

The SDK's aiohttp transport (aiohttp's C parser and simpler pool cost about a third less CPU
per call than the default httpx transport, by ``make bench``'s profile), with a pool that
holds every call the concurrency limit admits, so the limit, not the pool, decides what
waits. Every response, 429s too, goes to the response hook with the model its request named,
for the rate-limit pacing of shared state::

    client = upstream_client(api_key=key, base_url=url, settings=settings, on_response=hook)
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable

import anthropic
import httpx2

from tiergate.config import Settings
from tiergate.tiers import Tier

ResponseHook = Callable[[httpx2.Response, str], Awaitable[None]]
"""Sees every upstream response, with the model its request named ("" when not known)."""

REQUESTED_MODEL: contextvars.ContextVar[str] = contextvars.ContextVar(
    "tiergate_requested_model", default=""
)
"""The model of the ``messages.create`` in progress: the response hook runs inside it, and
need not parse a request body (up to megabytes) again to learn it."""


def upstream_client(
    *,
    api_key: str,
    base_url: str | None,
    settings: Settings,
    on_response: ResponseHook | None = None,
) -> anthropic.AsyncAnthropic:
    """The SDK client for the Messages API, on :func:`upstream_http_client`."""
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        # Each attempt already has our CLIENT span (``chat {model}``); the SDK's own span would
        # repeat it, and its trace context means nothing to the API. Off, they cost nothing.
        open_telemetry={"traces": False, "propagation": False},
        http_client=upstream_http_client(settings, on_response),
    )


def upstream_http_client(
    settings: Settings, on_response: ResponseHook | None = None
) -> anthropic.DefaultAioHttpClient:
    """The HTTP client every road's SDK client uses (see :func:`upstream_client`)."""
    limits = httpx2.Limits(
        max_connections=settings.max_concurrency * len(Tier),
        max_keepalive_connections=settings.max_concurrency * len(Tier),
    )
    return anthropic.DefaultAioHttpClient(
        limits=limits,
        # Every response's headers (429s too) reach the rate-limit pacing of shared state.
        event_hooks={"response": [_with_model(on_response)]} if on_response else None,
    )


def _with_model(hook: ResponseHook) -> Callable[[httpx2.Response], Awaitable[None]]:
    async def observe(response: httpx2.Response) -> None:
        await hook(response, REQUESTED_MODEL.get())

    return observe
