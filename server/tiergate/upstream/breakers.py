"""A circuit breaker per road, so callers do not pay the timeouts of a provider that is down.

A road's breaker opens after ``failures`` failures in a row that another road could fix (429,
529, 5xx, network, an attempt's timeout). While open the road is skipped; after ``cooldown_s``
it is half-open: one call at a time probes it, and the first success closes it (traffic returns
to it, as it comes first in the order), a failure opens it for another cool-down::

    breaker = Breaker("bedrock", failures=5, cooldown_s=10.0)
    if breaker.allows():
        try:
            ... # the call on the road
        except ...:
            breaker.failed()
        else:
            breaker.succeeded()

Each replica keeps its own breakers; with a shared store (``TIERGATE_REDIS_URL``),
:class:`SharedBreakers` tells the others when one opens, so every replica skips a road that one
found down instead of paying its timeouts too. Every transition is a log line and the
``tiergate.upstream.breaker_state`` gauge (0 closed, 1 half-open, 2 open).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Literal

import structlog
from opentelemetry.metrics import Meter

from tiergate.shared.backends import Store, StoreUnavailable

log = structlog.get_logger("tiergate.breaker")

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}
Observer = Callable[[str, State], None]
"""Told every transition: the road and its new state (the breaker-state gauge)."""


class Breaker:
    """One road's breaker; safe on one event loop (no await inside its methods)."""

    def __init__(
        self,
        road: str,
        *,
        failures: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown_s > 0")
        self.road = road
        self._threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._observer = observer
        self.state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.closed_at = -float("inf")
        self.probes = 0
        """Calls let through while not closed (half-open probes), since start."""
        if observer is not None:
            observer(road, "closed")

    def allows(self) -> bool:
        """Whether a call may take this road now; a half-open road admits one probe at a time."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._move("half_open")
        if self._probing:
            return False
        self._probing = True
        self.probes += 1
        return True

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self.state != "closed":
            self.closed_at = self._clock()
            self._move("closed")

    def trip(self) -> None:
        """Open now, on another replica's word that the road is down."""
        if self.state == "closed":
            self._opened_at = self._clock()
            self._move("open")

    def heard_recently_closed(self) -> bool:
        """Closed by a probe of its own within the last cool-down: a peer's older word that
        the road is down is stale."""
        return self._clock() - self.closed_at < self.cooldown_s

    def failed(self) -> None:
        self._failures += 1
        self._probing = False
        if self.state == "half_open" or self._failures >= self._threshold:
            self._opened_at = self._clock()
            if self.state != "open":
                self._move("open")

    def released(self) -> None:
        """The call ended with no verdict on the road (the caller's fault, or cancelled)."""
        self._probing = False

    def _move(self, state: State) -> None:
        if state == "closed":
            log.info("breaker.closed", road=self.road, was=self.state)
        else:
            log.warning("breaker." + state, road=self.road, failures=self._failures, was=self.state)
        self.state = state
        if self._observer is not None:
            self._observer(self.road, state)


class SharedBreakers:
    """Breaker openings shared through the store every replica uses.

    An opening is a key that lives for the cool-down (the store's ``lock``); a replica whose
    breaker for that road is closed opens it on reading the key, at most every ``refresh_s``
    per road, so the store costs no round trip on most calls. A store that does not answer
    leaves each replica with its own view.
    """

    def __init__(self, store: Store, *, replica: str, refresh_s: float = 1.0) -> None:
        self._store = store
        self._token = replica
        self._refresh_s = refresh_s
        self._checked: dict[str, float] = {}
        self._reading: dict[str, asyncio.Future[bool]] = {}
        """The store read in flight per road: calls arriving meanwhile wait for its answer
        instead of taking the road unchecked."""

    @staticmethod
    def _key(road: str) -> str:
        return f"breaker:{road}"

    async def check(self, breaker: Breaker) -> None:
        """Open ``breaker`` when another replica has opened its road."""
        if breaker.state != "closed":
            return
        road = breaker.road
        reading = self._reading.get(road)
        if reading is None:
            now = time.monotonic()
            if now - self._checked.get(road, -1e9) < self._refresh_s:
                return
            self._checked[road] = now
            reading = asyncio.ensure_future(self._locked(road))
            self._reading[road] = reading
            reading.add_done_callback(lambda _: self._reading.pop(road, None))
        # Shielded: a caller cancelled while waiting must not cancel the others' read.
        if await asyncio.shield(reading) and not breaker.heard_recently_closed():
            breaker.trip()

    async def _locked(self, road: str) -> bool:
        try:
            return await self._store.locked(self._key(road))
        except StoreUnavailable:
            return False

    async def opened(self, breaker: Breaker) -> None:
        """Tell the other replicas that ``breaker``'s road is down, for one cool-down."""
        try:
            await self._store.lock(self._key(breaker.road), self._token, ttl_s=breaker.cooldown_s)
        except StoreUnavailable:
            log.warning("breaker.unshared", road=breaker.road)

    async def closed(self, breaker: Breaker) -> None:
        """Withdraw this replica's word that the road is down (a peer's stays until it ends)."""
        with contextlib.suppress(StoreUnavailable):
            await self._store.unlock(self._key(breaker.road), self._token)


def breaker_gauge(meter: Meter) -> Observer:
    """An observer that keeps ``tiergate.upstream.breaker_state`` per road."""
    gauge = meter.create_gauge(
        "tiergate.upstream.breaker_state",
        unit="1",
        description="A road's breaker: 0 closed, 1 half-open (probing), 2 open (skipped).",
    )

    def observe(road: str, state: State) -> None:
        gauge.set(STATE_VALUES[state], {"road": road})

    return observe
