"""Admission control: a bounded number of model calls in flight per tier, a bounded wait.

Beyond the limit a caller waits at most ``queue_timeout_s`` for a free slot, then gets
RESOURCE_EXHAUSTED with a RetryInfo: queues never grow without bound, and a slow upstream
pushes back on callers instead of piling up memory.

    gate = Admission(limit=256, queue_timeout_s=0.5)
    async with gate.slot(Tier.FAST):
        ...  # the model call
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tiergate.errors import Overloaded
from tiergate.tiers import Tier


class Admission:
    """One semaphore per tier, so a burst of Reason calls cannot starve the fast tier."""

    def __init__(self, *, limit: int, queue_timeout_s: float) -> None:
        self.limit = limit
        self._queue_timeout_s = queue_timeout_s
        self._slots = {tier: asyncio.Semaphore(limit) for tier in Tier}
        self._in_flight = dict.fromkeys(Tier, 0)

    def in_flight(self, tier: Tier) -> int:
        return self._in_flight[tier]

    @asynccontextmanager
    async def slot(self, tier: Tier) -> AsyncIterator[None]:
        slots = self._slots[tier]
        try:
            async with asyncio.timeout(self._queue_timeout_s):
                await slots.acquire()
        except TimeoutError:
            raise Overloaded(
                f"too many {tier.label}-tier calls in flight on this replica ({self.limit});"
                " retry shortly",
                retry_after_s=max(self._queue_timeout_s, 0.1),
            ) from None
        self._in_flight[tier] += 1
        try:
            yield
        finally:
            self._in_flight[tier] -= 1
            slots.release()
