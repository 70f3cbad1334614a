"""Cache lifetime per stable prefix, chosen from how often the prefix comes back.

A 5-minute cache entry is written at 1.25x the input price and refreshed free by every read; a
1-hour entry costs 2x to write. A prefix reused every few seconds stays warm either way, so 5m
is cheaper. A prefix reused every 8 minutes finds its 5-minute entry gone each time and pays
1.25x again and again, while one 1-hour write at 2x turns every later call into a read at 0.1x.
Past an hour neither lifetime is reused, so the cheaper write (5m) loses least.

:class:`ReuseTracker` remembers, per prefix key, when it was last sent and a smoothed gap
between sends, for a bounded number of prefixes (least recently sent forgotten first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

Ttl = Literal["5m", "1h"]

FIVE_MINUTES_S = 300.0
ONE_HOUR_S = 3600.0
DEFAULT_CAPACITY = 4096
"""Prefixes remembered; each costs about 200 bytes, so the tracker stays under a megabyte."""


class ReuseTracker:
    """Observed reuse intervals per prefix key; picks the TTL that costs least for each."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._clock = clock
        # key -> (last sent, smoothed gap or None before the second send)
        self._seen: OrderedDict[bytes, tuple[float, float | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, key: bytes) -> Ttl:
        """Record a send of ``key`` now; the TTL its breakpoints should carry."""
        now = self._clock()
        seen = self._seen.pop(key, None)
        gap: float | None = None
        if seen is not None:
            last, smoothed = seen
            latest = now - last
            # Smoothed (new gap weighs a quarter): one odd gap moves the choice only when it
            # repeats. Lagging costs little: a live 1h entry is refreshed by reads like a 5m one.
            gap = latest if smoothed is None else 0.75 * smoothed + 0.25 * latest
        self._seen[key] = (now, gap)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return choose(gap)


def choose(gap_s: float | None) -> Ttl:
    """5m unless the typical gap between sends is past five minutes and within an hour."""
    if gap_s is not None and FIVE_MINUTES_S < gap_s <= ONE_HOUR_S:
        return "1h"
    return "5m"
