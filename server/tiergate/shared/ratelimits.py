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

Readings are advice, never a lock. Each bucket's three headers are checked
(:func:`parse_reading`): ``limit`` and ``remaining`` are non-negative integers, the limit
positive, remaining within it, and ``reset`` an RFC 3339 instant within :data:`HORIZON_S` of
now. A bucket that fails is ignored (each kind of failure logged once, all counted), so no
reading holds a call longer than the horizon. And while a reading says there is no room, one
call per :data:`PROBE_EVERY_S` per model (across replicas: the store decides, atomically) goes
to the upstream anyway: its answer, a newer reading or a 429 with ``retry-after``, replaces
what may be a stale or wrong reading.

    pacer = Pacer(store)
    await pacer.observe("claude-haiku-4-5", response.headers)
    await pacer.pace("claude-haiku-4-5", input_tokens=900, output_tokens=64, wait_until=t)
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import structlog

from tiergate import errors
from tiergate.shared.backends import Store, StoreUnavailable

log = structlog.get_logger("tiergate.ratelimits")

PREFIX = "anthropic-ratelimit-"
BUCKETS = ("requests", "input-tokens", "output-tokens")
HORIZON_S = 120.0
"""The furthest from now a ``reset`` may be: the API's limits refill within a minute, so a
reset beyond it (a skewed clock, a date in 2099) is no reading. Twice the minute leaves room
for clock skew."""
PROBE_EVERY_S = 1.0
"""While a reading says there is no room, one call per model goes to the upstream this often."""
_READING_TTL_S = HORIZON_S
_MAX_SLEEP_S = 1.0
"""A paced call looks again at least this often: newer readings may free it sooner."""
# Token and request counts as the API writes them: digits only, up to 10^15 (no sign, no
# fraction, no exponent, no NaN).
_COUNT = re.compile(r"[0-9]{1,15}")


class InvalidReading(ValueError):
    """One bucket's headers cannot be a reading; ``kind`` names the rule it broke."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def parse_reading(
    headers: Mapping[str, str], now: float, *, problems: list[str] | None = None
) -> dict[str, float]:
    """The buckets the headers describe: ``{bucket}:{limit,remaining,reset,at,taken}``. A
    bucket whose headers break a rule is left out, and the rule's kind appended to
    ``problems``; a bucket without headers is simply absent."""
    reading: dict[str, float] = {}
    # One pass over the headers: every lookup in an HTTP client's header map scans them all.
    ours = {key.lower(): value for key, value in headers.items() if key.lower().startswith(PREFIX)}
    for bucket in BUCKETS:
        try:
            found = (
                ours[f"{PREFIX}{bucket}-limit"],
                ours[f"{PREFIX}{bucket}-remaining"],
                ours[f"{PREFIX}{bucket}-reset"],
            )
        except KeyError:
            continue
        try:
            limit, remaining, reset = _checked(*found, now=now)
        except InvalidReading as bad:
            if problems is not None:
                problems.append(bad.kind)
            continue
        reading.update(
            {
                f"{bucket}:limit": limit,
                f"{bucket}:remaining": remaining,
                f"{bucket}:reset": reset,
                f"{bucket}:at": now,
                f"{bucket}:taken": 0.0,
            }
        )
    return reading


def _checked(limit: str, remaining: str, reset: str, *, now: float) -> tuple[float, float, float]:
    if not (_COUNT.fullmatch(limit.strip()) and _COUNT.fullmatch(remaining.strip())):
        raise InvalidReading("not_a_count")
    if int(limit) <= 0:
        raise InvalidReading("limit_not_positive")
    if int(remaining) > int(limit):
        raise InvalidReading("remaining_over_limit")
    try:
        at = _epoch(reset.strip())
    except (ValueError, OverflowError):
        raise InvalidReading("reset_unreadable") from None
    if abs(at - now) > HORIZON_S:
        raise InvalidReading("reset_beyond_horizon")
    return float(limit), float(remaining), at


@functools.lru_cache(maxsize=256)
def _epoch(text: str) -> float:
    # Reset instants repeat from one response to the next (whole seconds): parsed once each.
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Pacer:
    """Keeps calls under the organisation's limits by the last shared reading."""

    def __init__(
        self,
        store: Store,
        *,
        on_paced: Callable[[str], None] | None = None,
        on_invalid: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_paced = on_paced or (lambda _outcome: None)
        self._on_invalid = on_invalid or (lambda _kind: None)
        self._logged: set[str] = set()
        self.invalid = 0
        """Buckets of readings ignored because they broke a rule, since start."""
        self.probed = 0
        """Calls sent while a reading said there was no room, to ask the upstream again."""
        self.paced = 0
        """Calls that waited for room, since start."""
        self.refused = 0
        """Calls refused because room would not come within their deadline."""

    async def observe(self, model: str, headers: Mapping[str, str]) -> None:
        problems: list[str] = []
        reading = parse_reading(headers, time.time(), problems=problems)
        for kind in problems:
            self.invalid += 1
            self._on_invalid(kind)
            if kind not in self._logged:  # once per kind: a broken upstream repeats itself
                self._logged.add(kind)
                log.warning("ratelimits.invalid_reading", model=model, kind=kind)
        if not reading:
            return
        try:
            await self._store.reading_put(_key(model), reading, ttl_s=_READING_TTL_S)
        except StoreUnavailable as exc:
            log.warning("ratelimits.unavailable", error=str(exc))

    async def pace(
        self, model: str, *, input_tokens: int, output_tokens: int, wait_until: float
    ) -> None:
        """Return when the call fits or is the probe; raise UpstreamRateLimited when neither
        room nor a probe's turn would come in time."""
        loop = asyncio.get_running_loop()
        needs = {
            "requests": 1.0,
            "input-tokens": float(input_tokens),
            "output-tokens": float(output_tokens),
        }
        waited = False
        while True:
            try:
                wait = await self._store.reading_pace(
                    _key(model), needs, probe_every_s=PROBE_EVERY_S
                )
            except StoreUnavailable as exc:
                log.warning("ratelimits.unavailable", error=str(exc))
                return  # without readings, the upstream's own 429s pace us
            if wait < 0:
                # No room by the reading, but this call is the probe: the upstream's own
                # answer is newer than any reading.
                self.probed += 1
                self._on_paced("probed")
                return
            if wait == 0:
                break
            # Neither room nor the next probe comes before the deadline: refuse now.
            if loop.time() + min(wait, PROBE_EVERY_S) > wait_until:
                self.refused += 1
                self._on_paced("refused")
                raise errors.UpstreamRateLimited(
                    f"the organisation's rate limit for {model} has no room for this call"
                    f" before its deadline; room in about {wait:.1f} s",
                    retry_after_s=max(wait, 0.001),
                )
            waited = True
            await asyncio.sleep(min(wait, _MAX_SLEEP_S, PROBE_EVERY_S))
        if waited:
            self.paced += 1
            self._on_paced("waited")


def _key(model: str) -> str:
    return model
