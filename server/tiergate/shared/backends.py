"""Where shared state lives: this process (one replica) or Redis (every replica).

Both stores keep the same four kinds of record with the same semantics, so the layers above
(budgets, response cache, coalescing, rate limits) never ask which one they have:

- budget periods: ``spent`` and ``reserved`` nano-dollars per key, reservations by id with an
  expiry (a replica that dies holding one does not block its caller for ever);
- cached responses: bytes with a TTL, the oldest evicted beyond a count;
- locks: a key held by one token for a while (in-flight coalescing);
- rate-limit readings: what the upstream's headers last said is left, per model, and the
  shares calls took since (checked and taken in one step); while a reading says there is no
  room, one call per ``probe_every_s`` is let through as a probe (``reading_pace`` < 0).

Redis runs each reservation and settlement as one Lua script: check-and-reserve across a day
and a month key cannot interleave with another replica's.

    store = store_for(settings)          # InProcessStore, or RedisStore with redis_url
    verdict = await store.reserve(keys, limits, amount=1_000, reservation="r1", expires_at=t)
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
import redis.exceptions

from tiergate.shared.buckets import wait_s

SETTLED_TTL_S = 3 * 24 * 3600
"""How long a settled reservation's id is remembered, so a retried settlement counts once."""
PREFIX = "tiergate:"


class StoreUnavailable(Exception):
    """The shared store could not be reached or did not answer."""


class Verdict(enum.IntEnum):
    """What a reservation attempt found."""

    RESERVED = 0
    WAIT = 1
    """Does not fit now, but would once the outstanding reservations settle."""
    EXCEEDED = 2
    """Does not fit even with no reservation outstanding."""


@dataclass(frozen=True)
class PeriodState:
    key: str
    spent: int
    reserved: int


class Store(Protocol):
    """The operations every backend offers; each one is atomic."""

    async def reserve(
        self,
        keys: Sequence[str],
        limits: Sequence[int],
        *,
        amount: int,
        reservation: str,
        expires_at: float,
        ttl_s: int,
    ) -> Verdict: ...

    async def settle(
        self, keys: Sequence[str], *, reservation: str, actual: int, ttl_s: int
    ) -> None: ...

    async def periods(self, keys: Sequence[str]) -> list[PeriodState]: ...

    async def cache_get(self, key: str) -> bytes | None: ...

    async def cache_put(
        self, key: str, value: bytes, *, ttl_s: float, max_entries: int
    ) -> None: ...

    async def lock(self, key: str, token: str, *, ttl_s: float) -> bool: ...

    async def unlock(self, key: str, token: str) -> None: ...

    async def locked(self, key: str) -> bool: ...

    async def reading_put(self, key: str, fields: dict[str, float], *, ttl_s: float) -> None: ...

    async def reading_pace(
        self, key: str, needs: Mapping[str, float], *, probe_every_s: float
    ) -> float: ...

    async def close(self) -> None: ...


class InProcessStore:
    """Everything in this process's memory: exact for one replica, nothing to install."""

    def __init__(self) -> None:
        self._periods: dict[str, dict[str, int]] = {}
        self._holds: dict[str, dict[str, tuple[int, float]]] = {}
        self._settled: dict[str, float] = {}
        self._cache: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._locks: dict[str, tuple[str, float]] = {}
        self._readings: dict[str, dict[str, float]] = {}
        self._probes: dict[str, float] = {}

    def _purge(self, key: str, now: float) -> dict[str, int]:
        period = self._periods.setdefault(key, {"spent": 0, "reserved": 0})
        holds = self._holds.setdefault(key, {})
        for rid, (amount, expires_at) in list(holds.items()):
            if expires_at <= now:
                period["reserved"] -= amount
                del holds[rid]
        return period

    async def reserve(
        self,
        keys: Sequence[str],
        limits: Sequence[int],
        *,
        amount: int,
        reservation: str,
        expires_at: float,
        ttl_s: int,
    ) -> Verdict:
        now = time.time()
        verdict = Verdict.RESERVED
        for key, limit in zip(keys, limits, strict=True):
            period = self._purge(key, now)
            if period["spent"] + period["reserved"] + amount > limit:
                worse = Verdict.EXCEEDED if period["spent"] + amount > limit else Verdict.WAIT
                verdict = max(verdict, worse)
        if verdict is not Verdict.RESERVED:
            return verdict
        for key in keys:
            self._periods[key]["reserved"] += amount
            self._holds[key][reservation] = (amount, expires_at)
        return verdict

    async def settle(
        self, keys: Sequence[str], *, reservation: str, actual: int, ttl_s: int
    ) -> None:
        now = time.time()
        if self._settled.get(reservation, 0.0) > now:
            return
        self._settled[reservation] = now + SETTLED_TTL_S
        for key in keys:
            period = self._purge(key, now)
            held = self._holds[key].pop(reservation, None)
            if held is not None:
                period["reserved"] -= held[0]
            period["spent"] += actual

    async def periods(self, keys: Sequence[str]) -> list[PeriodState]:
        now = time.time()
        states = []
        for key in keys:
            period = self._purge(key, now)
            states.append(PeriodState(key, period["spent"], period["reserved"]))
        return states

    async def cache_get(self, key: str) -> bytes | None:
        entry = self._cache.get(key)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]

    async def cache_put(self, key: str, value: bytes, *, ttl_s: float, max_entries: int) -> None:
        self._cache[key] = (value, time.time() + ttl_s)
        self._cache.move_to_end(key)
        while len(self._cache) > max_entries:
            self._cache.popitem(last=False)

    async def lock(self, key: str, token: str, *, ttl_s: float) -> bool:
        held = self._locks.get(key)
        if held is not None and held[1] > time.time():
            return False
        self._locks[key] = (token, time.time() + ttl_s)
        return True

    async def unlock(self, key: str, token: str) -> None:
        if self._locks.get(key, ("", 0.0))[0] == token:
            del self._locks[key]

    async def locked(self, key: str) -> bool:
        held = self._locks.get(key)
        return held is not None and held[1] > time.time()

    async def reading_put(self, key: str, fields: dict[str, float], *, ttl_s: float) -> None:
        self._readings[key] = {**fields, "expires": time.time() + ttl_s}

    async def reading_pace(
        self, key: str, needs: Mapping[str, float], *, probe_every_s: float
    ) -> float:
        reading = self._readings.get(key)
        now = time.time()
        if reading is None or reading["expires"] <= now:
            return 0.0
        wait = max(wait_s(reading, bucket, need, now=now) for bucket, need in needs.items())
        # The probe's time outlives the reading: a probe's answer brings a new one.
        if wait > 0 and now - self._probes.get(key, 0.0) >= probe_every_s:
            self._probes[key] = now
            return -1.0
        if wait <= 0:
            for bucket, need in needs.items():
                if f"{bucket}:limit" in reading:
                    reading[f"{bucket}:taken"] = reading.get(f"{bucket}:taken", 0.0) + need
        return wait

    async def close(self) -> None:
        return None


# KEYS: budget period keys. ARGV: amount, reservation id, expires_at, now, ttl, then one limit
# per key. A key K is a hash {spent, reserved}; K..":h" maps reservation id -> amount and
# K..":x" orders them by expiry, so expired ones are given back before anything is decided.
_PURGE = """
local function purge(key, now)
  local expired = redis.call('ZRANGEBYSCORE', key .. ':x', '-inf', now)
  for _, rid in ipairs(expired) do
    local held = redis.call('HGET', key .. ':h', rid)
    if held then redis.call('HINCRBY', key, 'reserved', -tonumber(held)) end
    redis.call('HDEL', key .. ':h', rid)
    redis.call('ZREM', key .. ':x', rid)
  end
end
"""
_RESERVE = (
    _PURGE
    + """
local amount = tonumber(ARGV[1])
local verdict = 0
for i, key in ipairs(KEYS) do
  purge(key, ARGV[4])
  local spent = tonumber(redis.call('HGET', key, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', key, 'reserved') or '0')
  local limit = tonumber(ARGV[5 + i])
  if spent + reserved + amount > limit then
    if spent + amount > limit then verdict = 2 elseif verdict < 1 then verdict = 1 end
  end
end
if verdict > 0 then return verdict end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'reserved', amount)
  redis.call('HSET', key .. ':h', ARGV[2], amount)
  redis.call('ZADD', key .. ':x', ARGV[3], ARGV[2])
  for _, k in ipairs({key, key .. ':h', key .. ':x'}) do redis.call('EXPIRE', k, ARGV[5]) end
end
return 0
"""
)
# KEYS: the same period keys. ARGV: reservation id, actual cost, now, ttl, settled-marker key,
# its ttl. The marker makes a retried settlement (its first reply lost) count once.
_SETTLE = (
    _PURGE
    + """
if not redis.call('SET', ARGV[5], '1', 'NX', 'EX', ARGV[6]) then return 0 end
for _, key in ipairs(KEYS) do
  purge(key, ARGV[3])
  local held = redis.call('HGET', key .. ':h', ARGV[1])
  if held then
    redis.call('HINCRBY', key, 'reserved', -tonumber(held))
    redis.call('HDEL', key .. ':h', ARGV[1])
    redis.call('ZREM', key .. ':x', ARGV[1])
  end
  redis.call('HINCRBY', key, 'spent', ARGV[2])
  redis.call('EXPIRE', key, ARGV[4])
end
return 1
"""
)
# KEYS: entry key, index key. ARGV: value, ttl ms, now ms, max entries.
_CACHE_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, k in ipairs(oldest) do redis.call('DEL', k) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return 1
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: the reading, its probe marker. ARGV: now, probe interval ms, then bucket, need pairs.
# buckets.wait_s in Lua: the wait, or (when every bucket has room) the shares taken in the same
# step, so racing replicas cannot both take the last room; without room, -1 for the one probe
# per interval.
_PACE = """
local r = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do r[flat[i]] = tonumber(flat[i + 1]) end
local now = tonumber(ARGV[1])
local wait = 0
for i = 3, #ARGV, 2 do
  local b, need = ARGV[i], tonumber(ARGV[i + 1])
  local limit = r[b .. ':limit']
  if limit and need > 0 and now < r[b .. ':reset'] then
    local remaining, reset, at = r[b .. ':remaining'], r[b .. ':reset'], r[b .. ':at']
    need = math.min(need, limit)
    local rate = (limit - remaining) / math.max(reset - at, 0.001)
    local available = remaining + rate * math.max(0, now - at) - (r[b .. ':taken'] or 0)
    if available < need then
      local w = reset - now
      if rate > 0 then w = math.min(w, (need - available) / rate) end
      wait = math.max(wait, w)
    end
  end
end
if wait > 0 and redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return '-1' end
if wait <= 0 then
  for i = 3, #ARGV, 2 do
    if r[ARGV[i] .. ':limit'] then
      redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i] .. ':taken', ARGV[i + 1])
    end
  end
end
return tostring(wait)
"""


class RedisStore:
    """The same records in Redis, shared by every replica that names the same server."""

    def __init__(self, url: str, *, timeout_s: float = 1.0) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._cache_put = self._redis.register_script(_CACHE_PUT)
        self._unlock = self._redis.register_script(_UNLOCK)
        self._pace = self._redis.register_script(_PACE)

    async def _do(self, call: Any) -> Any:
        try:
            return await call
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def reserve(
        self,
        keys: Sequence[str],
        limits: Sequence[int],
        *,
        amount: int,
        reservation: str,
        expires_at: float,
        ttl_s: int,
    ) -> Verdict:
        args: list[str | int] = [amount, reservation, repr(expires_at), repr(time.time()), ttl_s]
        args += limits
        found = await self._do(self._reserve(keys=[PREFIX + k for k in keys], args=args))
        return Verdict(int(found))

    async def settle(
        self, keys: Sequence[str], *, reservation: str, actual: int, ttl_s: int
    ) -> None:
        marker = f"{PREFIX}settled:{reservation}"
        args: list[str | int] = [reservation, actual, repr(time.time()), ttl_s, marker]
        args.append(SETTLED_TTL_S)
        await self._do(self._settle(keys=[PREFIX + k for k in keys], args=args))

    async def periods(self, keys: Sequence[str]) -> list[PeriodState]:
        states = []
        for key in keys:
            found = await self._do(self._redis.hmget(PREFIX + key, ["spent", "reserved"]))
            spent, reserved = (int(v) if v is not None else 0 for v in found)
            states.append(PeriodState(key, spent, reserved))
        return states

    async def cache_get(self, key: str) -> bytes | None:
        found: bytes | None = await self._do(self._redis.get(f"{PREFIX}cache:{key}"))
        return found

    async def cache_put(self, key: str, value: bytes, *, ttl_s: float, max_entries: int) -> None:
        keys = [f"{PREFIX}cache:{key}", f"{PREFIX}cache-index"]
        args: list[bytes | int] = [value, max(1, round(ttl_s * 1000)), round(time.time() * 1000)]
        args.append(max_entries)
        await self._do(self._cache_put(keys=keys, args=args))

    async def lock(self, key: str, token: str, *, ttl_s: float) -> bool:
        px = max(1, round(ttl_s * 1000))
        taken = await self._do(self._redis.set(f"{PREFIX}lock:{key}", token, nx=True, px=px))
        return bool(taken)

    async def unlock(self, key: str, token: str) -> None:
        await self._do(self._unlock(keys=[f"{PREFIX}lock:{key}"], args=[token]))

    async def locked(self, key: str) -> bool:
        return bool(await self._do(self._redis.exists(f"{PREFIX}lock:{key}")))

    async def reading_put(self, key: str, fields: dict[str, float], *, ttl_s: float) -> None:
        name = f"{PREFIX}rl:{key}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            pipe.hset(name, mapping={k: repr(v) for k, v in fields.items()})
            pipe.expire(name, max(1, round(ttl_s)))
            await self._do(pipe.execute())

    async def reading_pace(
        self, key: str, needs: Mapping[str, float], *, probe_every_s: float
    ) -> float:
        args: list[str] = [repr(time.time()), str(max(1, round(probe_every_s * 1000)))]
        for bucket, need in needs.items():
            args += [bucket, repr(float(need))]
        keys = [f"{PREFIX}rl:{key}", f"{PREFIX}rl-probe:{key}"]
        found = await self._do(self._pace(keys=keys, args=args))
        return float(found)

    async def close(self) -> None:
        await self._redis.aclose()


def store_for(redis_url: str | None) -> Store:
    """Redis when a URL is configured, else this process's memory."""
    return RedisStore(redis_url) if redis_url else InProcessStore()
