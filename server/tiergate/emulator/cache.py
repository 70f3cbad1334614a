"""A real prefix cache with the Messages API's rules.

A segment's identity is the sha256 of the model and the canonical JSON of every segment up to it
(without ``cache_control``), so a hit needs a byte-exact prefix. Breakpoints mark where entries may
be written; reads look up to :data:`LOOKBACK_SEGMENTS` segments before each breakpoint. Planning and
committing are separate because an entry becomes readable only once the response that wrote it has
begun: concurrent identical first requests all pay the write.

    >>> cache = PrefixCache()
    >>> plan = cache.plan("claude-sonnet-4-6", prompt.segments)  # doctest: +SKIP
    >>> cache.commit(plan)  # when the response begins  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .models import MODELS, resolve_model
from .prompt import Segment, Ttl

DEFAULT_MIN_CACHEABLE_TOKENS: Mapping[str, int] = MappingProxyType(
    {model: limits.min_cacheable_tokens for model, limits in MODELS.items()}
)
"""Minimum cacheable prefix per model, from the emulator's own model table
(:mod:`tiergate.emulator.models`)."""

LOOKBACK_SEGMENTS = 20
"""How many segments before a breakpoint a read may find an entry."""

TTL_SECONDS: Mapping[Ttl, float] = MappingProxyType({"5m": 300.0, "1h": 3600.0})


@dataclass
class _Entry:
    ttl: Ttl
    expires_at: float


@dataclass(frozen=True)
class CacheWrite:
    """An entry a response will create when it begins."""

    key: str
    ttl: Ttl
    tokens: int
    """Cache-creation tokens attributed to this breakpoint (from the previous boundary)."""


@dataclass(frozen=True)
class CachePlan:
    """How one request's prompt splits into uncached, written and read tokens."""

    total_tokens: int
    read_tokens: int
    writes: tuple[CacheWrite, ...]

    @property
    def creation_5m_tokens(self) -> int:
        """Tokens written to 5-minute entries."""
        return sum(w.tokens for w in self.writes if w.ttl == "5m")

    @property
    def creation_1h_tokens(self) -> int:
        """Tokens written to 1-hour entries."""
        return sum(w.tokens for w in self.writes if w.ttl == "1h")

    @property
    def creation_tokens(self) -> int:
        """All cache-creation tokens; the two TTL buckets sum to this."""
        return sum(w.tokens for w in self.writes)

    @property
    def input_tokens(self) -> int:
        """Uncached input: total minus read minus written, so the three always sum to the total."""
        return self.total_tokens - self.read_tokens - self.creation_tokens


class PrefixCache:
    """Prefix entries keyed by segment identity, with TTLs on an injectable clock."""

    def __init__(
        self,
        min_cacheable_tokens: Mapping[str, int] = DEFAULT_MIN_CACHEABLE_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_tokens = dict(min_cacheable_tokens)
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def min_cacheable_tokens(self, model: str) -> int:
        """The minimum prefix length ``model`` caches; 404 ``ApiError`` for unknown models."""
        return self._min_tokens[resolve_model(model, self._min_tokens)]

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    @staticmethod
    def prefix_keys(model: str, segments: Sequence[Segment]) -> list[str]:
        """The identity of every prefix: sha256(model, segment 0, ..., segment i)."""
        digest = hashlib.sha256(model.encode())
        keys = []
        for segment in segments:
            # A record separator keeps segment boundaries unambiguous in the hashed stream.
            digest.update(b"\x1e" + segment.identity.encode())
            keys.append(digest.copy().hexdigest())
        return keys

    def plan(self, model: str, segments: Sequence[Segment]) -> CachePlan:
        """Find the longest live prefix, refresh it, and plan the writes beyond it."""
        minimum = self.min_cacheable_tokens(model)
        model_id = resolve_model(model, self._min_tokens)
        now = self._clock()
        self._purge(now)
        keys = self.prefix_keys(model_id, segments)
        cumulative = []
        running = 0
        for segment in segments:
            running += segment.tokens
            cumulative.append(running)
        breakpoints = [i for i, segment in enumerate(segments) if segment.ttl is not None]

        read_index = -1
        for bp in breakpoints:
            for j in range(bp, max(-1, bp - LOOKBACK_SEGMENTS - 1), -1):
                if j <= read_index:
                    break
                if keys[j] in self._entries:
                    read_index = j
                    break
        if read_index >= 0:
            hit = self._entries[keys[read_index]]
            hit.expires_at = now + TTL_SECONDS[hit.ttl]  # a hit refreshes the TTL for free

        writes = []
        boundary_tokens = cumulative[read_index] if read_index >= 0 else 0
        for bp in breakpoints:
            ttl = segments[bp].ttl
            if bp <= read_index or ttl is None or cumulative[bp] < minimum:
                continue
            writes.append(CacheWrite(keys[bp], ttl, cumulative[bp] - boundary_tokens))
            boundary_tokens = cumulative[bp]
        read_tokens = cumulative[read_index] if read_index >= 0 else 0
        return CachePlan(running, read_tokens, tuple(writes))

    def commit(self, plan: CachePlan) -> None:
        """Make a plan's writes readable: call when the response that wrote them begins."""
        now = self._clock()
        for write in plan.writes:
            expires_at = now + TTL_SECONDS[write.ttl]
            existing = self._entries.get(write.key)
            if existing is not None and existing.expires_at > expires_at:
                continue  # a concurrent writer already stored a longer-lived entry
            self._entries[write.key] = _Entry(write.ttl, expires_at)

    def _purge(self, now: float) -> None:
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            del self._entries[key]
