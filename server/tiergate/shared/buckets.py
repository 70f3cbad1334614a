"""One rate-limit bucket between two readings of the upstream's headers.

A reading says: ``remaining`` of ``limit`` at time ``at``, full again at ``reset``. In between
the bucket refills in a straight line, and every call admitted since the reading has taken its
share (``taken``). The stores evaluate this same rule (Redis in Lua, with the same arithmetic).

    >>> wait_s({"r:limit": 60, "r:remaining": 0, "r:reset": 60, "r:at": 0}, "r", 1, now=0)
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping


def wait_s(reading: Mapping[str, float], bucket: str, need: float, *, now: float) -> float:
    """Seconds until ``need`` fits in ``bucket`` by ``reading`` (0: now, or no reading)."""
    if f"{bucket}:limit" not in reading or need <= 0:
        return 0.0
    limit = reading[f"{bucket}:limit"]
    remaining = reading[f"{bucket}:remaining"]
    reset = reading[f"{bucket}:reset"]
    at = reading[f"{bucket}:at"]
    taken = reading.get(f"{bucket}:taken", 0.0)
    if now >= reset:
        return 0.0  # the API said the bucket is full by now
    need = min(need, limit)
    rate = (limit - remaining) / max(reset - at, 1e-3)
    available = remaining + rate * max(0.0, now - at) - taken
    if available >= need:
        return 0.0
    if rate <= 0:
        return reset - now
    return min(reset - now, (need - available) / rate)
