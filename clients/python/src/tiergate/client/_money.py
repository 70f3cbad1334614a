"""Money as tiergate prints it: exact US dollars from integer nano-dollars."""

from __future__ import annotations

NANOS_PER_DOLLAR = 1_000_000_000


def dollars(nanos: int) -> str:
    """An amount of nano-dollars (a ``Cost`` field) exactly, trailing zeros trimmed down to
    cents: 557000 -> '$0.000557', 25_000_000_000 -> '$25.00', -5 -> '-$0.000000005'."""
    if nanos < 0:
        return f"-{dollars(-nanos)}"
    whole, frac = divmod(nanos, NANOS_PER_DOLLAR)
    digits = f"{frac:09d}".rstrip("0")
    return f"${whole}.{digits.ljust(2, '0')}"
