"""Rate limits as the API applies them: token buckets per model, reported in headers.

Three buckets per model: requests, input tokens and output tokens per minute, each refilling
continuously at its limit per 60 seconds. Input tokens count ``input_tokens +
cache_creation_input_tokens`` (cache reads are free of the limit); output tokens reserve
``max_tokens`` at admission and give back what the answer did not use. A request that does not
fit gets a 429 ``rate_limit_error`` with ``retry-after`` and consumes nothing. Every response of
an admitted model carries ``anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,
remaining,reset}``; reset is the RFC 3339 time the bucket is full again.

    >>> limiter = RateLimiter(RateLimits(requests_per_minute=1))
    >>> limiter.admit("claude-haiku-4-5", input_tokens=10, max_tokens=10)
    >>> limiter.admit("claude-haiku-4-5", input_tokens=10, max_tokens=10)
    Traceback (most recent call last):
    ...
    tiergate.emulator.errors.ApiError: 429 rate_limit_error: ...
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import ApiError

HEADER_PREFIX = "anthropic-ratelimit-"


@dataclass(frozen=True)
class RateLimits:
    """Per-model limits; the defaults are far beyond anything a test sends."""

    requests_per_minute: int = 1_000_000
    input_tokens_per_minute: int = 10_000_000_000
    output_tokens_per_minute: int = 10_000_000_000

    def __post_init__(self) -> None:
        if min(self.requests_per_minute, self.input_tokens_per_minute) < 1:
            raise ValueError("rate limits must be at least 1")
        if self.output_tokens_per_minute < 1:
            raise ValueError("rate limits must be at least 1")


class _Bucket:
    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.level = float(limit)
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.level = min(float(self.limit), self.level + elapsed * self.limit / 60.0)
        self.updated = now

    def wait_s(self, amount: int) -> float:
        """Seconds until ``amount`` fits (infinite never: a full bucket is the cap)."""
        needed = min(amount, self.limit) - self.level
        return max(0.0, needed * 60.0 / self.limit)

    def headers(self, name: str, now_wall: float) -> dict[str, str]:
        to_full = (self.limit - self.level) * 60.0 / self.limit
        reset = datetime.fromtimestamp(now_wall + to_full, UTC).isoformat(timespec="seconds")
        return {
            f"{HEADER_PREFIX}{name}-limit": str(self.limit),
            f"{HEADER_PREFIX}{name}-remaining": str(max(0, math.floor(self.level))),
            f"{HEADER_PREFIX}{name}-reset": reset.replace("+00:00", "Z"),
        }


class RateLimiter:
    """The buckets of every model, on an injectable clock."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, _Bucket]] = {}

    def _of(self, model: str, now: float) -> dict[str, _Bucket]:
        buckets = self._buckets.get(model)
        if buckets is None:
            buckets = {
                "requests": _Bucket(self._limits.requests_per_minute, now),
                "input-tokens": _Bucket(self._limits.input_tokens_per_minute, now),
                "output-tokens": _Bucket(self._limits.output_tokens_per_minute, now),
            }
            self._buckets[model] = buckets
        for bucket in buckets.values():
            bucket.refill(now)
        return buckets

    def admit(self, model: str, *, input_tokens: int, max_tokens: int) -> None:
        """Take one request, ``input_tokens`` and a ``max_tokens`` reservation, or raise 429."""
        with self._lock:
            now = self._clock()
            buckets = self._of(model, now)
            wanted = {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}
            short = [name for name, amount in wanted.items() if buckets[name].level < amount]
            if short:
                wait = max(buckets[name].wait_s(wanted[name]) for name in short)
                headers = {"retry-after": str(max(1, math.ceil(wait)))}
                headers.update(self._headers(buckets))
                raise ApiError(
                    429,
                    "rate_limit_error",
                    f"This request would exceed the rate limit for {model} "
                    f"({', '.join(f'{n} per minute' for n in short)}). Retry after the wait "
                    "in the retry-after header.",
                    headers,
                )
            for name, amount in wanted.items():
                buckets[name].level -= amount

    def settle(self, model: str, *, reserved: int, used: int) -> None:
        """Give back the part of the output reservation the answer did not use."""
        with self._lock:
            bucket = self._of(model, self._clock())["output-tokens"]
            bucket.level = min(float(bucket.limit), bucket.level + max(0, reserved - used))

    def headers(self, model: str) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers for ``model`` now."""
        with self._lock:
            return self._headers(self._of(model, self._clock()))

    @staticmethod
    def _headers(buckets: dict[str, _Bucket]) -> dict[str, str]:
        now_wall = time.time()
        headers: dict[str, str] = {}
        for name, bucket in buckets.items():
            headers.update(bucket.headers(name, now_wall))
        return headers

    def clear(self) -> None:
        """Refill every bucket (forget all usage)."""
        with self._lock:
            self._buckets.clear()
