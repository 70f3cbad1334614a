"""In-flight coalescing: identical concurrent requests, on any replica, cost one upstream call.

On one replica the first call for a key leads and the others await its future. Across
replicas the local leaders race for a lock in the shared store; the winner calls the model and
stores the output in the response cache, the others poll the cache until it appears (or the
lock is gone, when the leader failed: then one of them leads). Everyone waits within its own
deadline.

    outcome = await coalescer.join(key, wait_until=loop.time() + 5, lock_ttl_s=60)
    if isinstance(outcome, Lead):
        ...  # call the model, cache the output, then outcome.release(output)
    else:
        output = outcome  # what the leader got
"""

from __future__ import annotations

import asyncio
import uuid

import structlog

from tiergate import errors
from tiergate.calls.prompt import JsonObject
from tiergate.shared.backends import Store, StoreUnavailable
from tiergate.shared.response_cache import ResponseCache

log = structlog.get_logger("tiergate.coalescing")

_POLL_S = 0.02
"""How often a follower on another replica looks for the leader's result."""


class Lead:
    """This call leads for its key: release it exactly once, with the output or None."""

    def __init__(
        self,
        coalescer: Coalescer,
        key: str,
        token: str | None,
        future: asyncio.Future[JsonObject | None],
    ) -> None:
        self._coalescer = coalescer
        self.key = key
        self._token = token
        self._future = future

    async def release(self, output: JsonObject | None) -> None:
        await self._coalescer._release(self.key, self._token, self._future, output)


class Coalescer:
    """The calls in flight by key on this replica, and the cross-replica lock."""

    def __init__(self, store: Store, cache: ResponseCache) -> None:
        self._store = store
        self._cache = cache
        self._local: dict[str, asyncio.Future[JsonObject | None]] = {}
        self.coalesced = 0
        """Calls answered by another call's upstream request, since start."""

    async def join(self, key: str, *, wait_until: float, lock_ttl_s: float) -> Lead | JsonObject:
        """Lead for ``key``, or the output of the call that led; DeadlineExceeded when
        ``wait_until`` (a ``loop.time()``) passes first."""
        loop = asyncio.get_running_loop()
        while True:
            running = self._local.get(key)
            if running is not None:
                try:
                    async with asyncio.timeout_at(wait_until):
                        output = await asyncio.shield(running)
                except TimeoutError:
                    raise _waited_too_long() from None
                if output is not None:
                    self.coalesced += 1
                    return output
                continue  # the leader failed: lead or follow anew
            future: asyncio.Future[JsonObject | None] = loop.create_future()
            self._local[key] = future
            try:
                return await self._lead_or_poll(key, future, wait_until, lock_ttl_s)
            except BaseException:
                await self._release(key, None, future, None)
                raise

    async def _lead_or_poll(
        self,
        key: str,
        future: asyncio.Future[JsonObject | None],
        wait_until: float,
        lock_ttl_s: float,
    ) -> Lead | JsonObject:
        loop = asyncio.get_running_loop()
        token = uuid.uuid4().hex
        while True:
            try:
                won = await self._store.lock(key, token, ttl_s=lock_ttl_s)
                locked = won or await self._store.locked(key)
            except StoreUnavailable as exc:
                # Without the store, coalesce on this replica only.
                log.warning("coalescing.unavailable", error=str(exc))
                return Lead(self, key, None, future)
            # Looked at after taking the lock too: a leader elsewhere may have stored its
            # output and let go just before.
            output = await self._cache.get(key)
            if output is not None:
                self.coalesced += 1
                await self._release(key, token if won else None, future, output)
                return output
            if won:
                return Lead(self, key, token, future)
            if not locked:
                continue
            if loop.time() + _POLL_S >= wait_until:
                raise _waited_too_long()
            await asyncio.sleep(_POLL_S)

    async def _release(
        self,
        key: str,
        token: str | None,
        future: asyncio.Future[JsonObject | None],
        output: JsonObject | None,
    ) -> None:
        if self._local.get(key) is future:
            del self._local[key]
        if not future.done():
            future.set_result(output)
        if token is not None:
            try:
                await self._store.unlock(key, token)
            except StoreUnavailable as exc:
                log.warning("coalescing.unavailable", error=str(exc))


def _waited_too_long() -> errors.DeadlineExceeded:
    return errors.DeadlineExceeded(
        "the deadline passed while an identical request in flight was being answered"
    )
