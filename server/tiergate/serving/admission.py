"""Admission control: a bounded number of model calls in flight per tier, a bounded queue.

Beyond the limit a call queues for a slot, as long as its caller's deadline allows (at most
``max_wait_s`` when the caller set none). When ``max_queue`` calls already wait, a call is
refused at once with RESOURCE_EXHAUSTED and a RetryInfo: the queue never grows without bound,
and a slow upstream pushes back on callers instead of piling up memory.

    gate = Admission(limit=1024, max_queue=4096, max_wait_s=30)
    async with gate.slot(Tier.FAST, deadline=rpc.deadline):
        ...  # the model call
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tiergate.errors import DeadlineExceeded, Overloaded
from tiergate.tiers import Tier

RETRY_AFTER_S = 1.0
"""What a refused caller is told to wait: about one upstream call's time for a slot to free."""


class Admission:
    """One semaphore and one queue bound per tier, so a burst of Reason calls cannot starve
    the fast tier."""

    def __init__(self, *, limit: int, max_queue: int, max_wait_s: float) -> None:
        self.max_queue = max_queue
        self._max_wait_s = max_wait_s
        self._slots = {tier: asyncio.Semaphore(limit) for tier in Tier}
        self._queued = dict.fromkeys(Tier, 0)

    @asynccontextmanager
    async def slot(self, tier: Tier, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Hold one of ``tier``'s slots; ``deadline`` is a ``time.monotonic()`` instant."""
        slots = self._slots[tier]
        if slots.locked() and self._queued[tier] >= self.max_queue:
            raise Overloaded(
                f"too many {tier.label}-tier calls in flight and queued on this replica;"
                " retry shortly",
                retry_after_s=RETRY_AFTER_S,
            )
        wait_s = self._max_wait_s
        if deadline is not None:
            wait_s = min(wait_s, deadline - time.monotonic())
        self._queued[tier] += 1
        try:
            async with asyncio.timeout(max(wait_s, 0.0)):
                await slots.acquire()
        except TimeoutError:
            if deadline is not None and wait_s < self._max_wait_s:
                raise DeadlineExceeded(
                    f"the deadline passed while waiting for a {tier.label}-tier slot"
                ) from None
            raise Overloaded(
                f"no {tier.label}-tier slot came free within {self._max_wait_s:g} s; retry shortly",
                retry_after_s=RETRY_AFTER_S,
            ) from None
        finally:
            self._queued[tier] -= 1
        try:
            yield
        finally:
            slots.release()
