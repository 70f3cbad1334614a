"""The organisation's rate limits, as the upstream reports them, shared by every replica.

Every upstream response (a 429 too) carries ``anthropic-ratelimit-{requests,input-tokens,
output-tokens}-{limit,remaining,reset}``. The newest reading per model goes to the shared
store; between readings each bucket refills in a straight line from ``remaining`` at the
reading to ``limit`` at ``reset`` (:mod:`tiergate.shared.buckets`), and every call admitted
since takes its share, checked and taken in one atomic store operation. A call that would not
fit waits until it does, within its deadline; when the deadline comes first it is refused with
RESOURCE_EXHAUSTED and RetryInfo, before any upstream request. So N replicas send what the
organisation's limit allows, not N times it, and do not each retry a 429.

A reading past its ``reset`` says the bucket is full: pacing stops until the next reading.
Calls admitted but not yet seen by the upstream when a new reading lands are not counted in
it; the upstream's 429 (retried after ``retry-after``) covers that small window.

    pacer = Pacer(store)
    await pacer.observe("claude-haiku-4-5", response.headers)
    await pacer.pace("claude-haiku-4-5", input_tokens=900, output_tokens=64, wait_until=t)
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import structlog

from tiergate import errors
from tiergate.shared.backends import Store, StoreUnavailable

log = structlog.get_logger("tiergate.ratelimits")

PREFIX = "anthropic-ratelimit-"
BUCKETS = ("requests", "input-tokens", "output-tokens")
_READING_TTL_S = 120.0
_MAX_SLEEP_S = 1.0
"""A paced call looks again at least this often: newer readings may free it sooner."""


def parse_reading(headers: Mapping[str, str], now: float) -> dict[str, float]:
    """The buckets the headers describe: ``{bucket}:{limit,remaining,reset,at,taken}``."""
    reading: dict[str, float] = {}
    # One pass over the headers: every lookup in an HTTP client's header map scans them all.
    ours = {key.lower(): value for key, value in headers.items() if key.lower().startswith(PREFIX)}
    for bucket in BUCKETS:
        try:
            limit = float(ours[f"{PREFIX}{bucket}-limit"])
            remaining = float(ours[f"{PREFIX}{bucket}-remaining"])
            reset = _epoch(ours[f"{PREFIX}{bucket}-reset"])
        except (KeyError, ValueError):
            continue
        if limit <= 0 or remaining < 0:
            continue
        reading.update(
            {
                f"{bucket}:limit": limit,
                f"{bucket}:remaining": min(remaining, limit),
                f"{bucket}:reset": reset,
                f"{bucket}:at": now,
                f"{bucket}:taken": 0.0,
            }
        )
    return reading


@functools.lru_cache(maxsize=256)
def _epoch(text: str) -> float:
    # Reset instants repeat from one response to the next (whole seconds): parsed once each.
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Pacer:
    """Keeps calls under the organisation's limits by the last shared reading."""

    def __init__(self, store: Store, *, on_paced: Callable[[str], None] | None = None) -> None:
        self._store = store
        self._on_paced = on_paced or (lambda _outcome: None)
        self.paced = 0
        """Calls that waited for room, since start."""
        self.refused = 0
        """Calls refused because room would not come within their deadline."""

    async def observe(self, model: str, headers: Mapping[str, str]) -> None:
        reading = parse_reading(headers, time.time())
        if not reading:
            return
        try:
            await self._store.reading_put(_key(model), reading, ttl_s=_READING_TTL_S)
        except StoreUnavailable as exc:
            log.warning("ratelimits.unavailable", error=str(exc))

    async def pace(
        self, model: str, *, input_tokens: int, output_tokens: int, wait_until: float
    ) -> None:
        """Return when the call fits; raise UpstreamRateLimited when it would not in time."""
        loop = asyncio.get_running_loop()
        needs = {
            "requests": 1.0,
            "input-tokens": float(input_tokens),
            "output-tokens": float(output_tokens),
        }
        waited = False
        while True:
            try:
                wait = await self._store.reading_pace(_key(model), needs)
            except StoreUnavailable as exc:
                log.warning("ratelimits.unavailable", error=str(exc))
                return  # without readings, the upstream's own 429s pace us
            if wait <= 0:
                break
            if loop.time() + wait > wait_until:
                self.refused += 1
                self._on_paced("refused")
                raise errors.UpstreamRateLimited(
                    f"the organisation's rate limit for {model} has no room for this call"
                    f" before its deadline; room in about {wait:.1f} s",
                    retry_after_s=max(wait, 0.001),
                )
            waited = True
            await asyncio.sleep(min(wait, _MAX_SLEEP_S))
        if waited:
            self.paced += 1
            self._on_paced("waited")


def _key(model: str) -> str:
    return model
