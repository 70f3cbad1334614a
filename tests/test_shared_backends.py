"""The two stores keep the same records with the same semantics: every rule below runs against
the in-process store and against Redis's Lua scripts on a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from redis_server import RedisServer

from tiergate.shared.backends import InProcessStore, RedisStore, Store, StoreUnavailable, Verdict

Scenario = Callable[[Store], Awaitable[None]]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.kill()


@pytest.fixture(params=["in-process", "redis"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Runs a scenario against a fresh store of the parametrized kind."""

    def runner(scenario: Scenario) -> None:
        async def go() -> None:
            if request.param == "redis":
                server: RedisServer = request.getfixturevalue("redis_server")
                server.flush()
                store: Store = RedisStore(server.url)
            else:
                store = InProcessStore()
            try:
                await scenario(store)
            finally:
                await store.close()

        asyncio.run(go())

    return runner


def later(seconds: float = 60) -> float:
    return time.time() + seconds


class TestReservations:
    def test_reserve_wait_and_exceeded(self, run: Callable[[Scenario], None]) -> None:
        """Fits: reserved. Fits only once outstanding reservations settle: WAIT, nothing held.
        Cannot fit even then: EXCEEDED."""

        async def scenario(store: Store) -> None:
            keys, limits = ["k"], [100]
            assert (
                await store.reserve(
                    keys, limits, amount=60, reservation="a", expires_at=later(), ttl_s=60
                )
                is Verdict.RESERVED
            )
            assert (
                await store.reserve(
                    keys, limits, amount=60, reservation="b", expires_at=later(), ttl_s=60
                )
                is Verdict.WAIT
            )
            await store.settle(keys, reservation="a", actual=50, ttl_s=60)
            assert (
                await store.reserve(
                    keys, limits, amount=60, reservation="c", expires_at=later(), ttl_s=60
                )
                is Verdict.EXCEEDED
            )
            assert (
                await store.reserve(
                    keys, limits, amount=50, reservation="d", expires_at=later(), ttl_s=60
                )
                is Verdict.RESERVED
            )
            (state,) = await store.periods(keys)
            assert (state.spent, state.reserved) == (50, 50)

        run(scenario)

    def test_a_settlement_counts_once(self, run: Callable[[Scenario], None]) -> None:
        """Settling the same reservation again (a retry whose first reply was lost) changes
        nothing: spend is not doubled and the reservation is not given back twice."""

        async def scenario(store: Store) -> None:
            keys, limits = ["day", "month"], [1000, 5000]
            await store.reserve(
                keys, limits, amount=300, reservation="a", expires_at=later(), ttl_s=60
            )
            await store.reserve(
                keys, limits, amount=200, reservation="b", expires_at=later(), ttl_s=60
            )
            for _ in range(3):
                await store.settle(keys, reservation="a", actual=120, ttl_s=60)
            states = await store.periods(keys)
            assert [(s.spent, s.reserved) for s in states] == [(120, 200), (120, 200)]

        run(scenario)

    def test_all_periods_or_none(self, run: Callable[[Scenario], None]) -> None:
        """A call bounded by a day and a month reserves in both or in neither."""

        async def scenario(store: Store) -> None:
            keys = ["day", "month"]
            await store.settle(["month"], reservation="old", actual=950, ttl_s=60)
            verdict = await store.reserve(
                keys, [1000, 1000], amount=100, reservation="a", expires_at=later(), ttl_s=60
            )
            assert verdict is Verdict.EXCEEDED
            states = await store.periods(keys)
            assert [(s.spent, s.reserved) for s in states] == [(0, 0), (950, 0)]

        run(scenario)

    def test_an_expired_reservation_is_given_back(self, run: Callable[[Scenario], None]) -> None:
        """A reservation whose holder died is released at its expiry; settling it late still
        records the cost, once."""

        async def scenario(store: Store) -> None:
            keys, limits = ["k"], [100]
            await store.reserve(
                keys, limits, amount=90, reservation="dead", expires_at=time.time() - 1, ttl_s=60
            )
            assert (
                await store.reserve(
                    keys, limits, amount=90, reservation="b", expires_at=later(), ttl_s=60
                )
                is Verdict.RESERVED
            )
            await store.settle(keys, reservation="dead", actual=5, ttl_s=60)
            (state,) = await store.periods(keys)
            assert (state.spent, state.reserved) == (5, 90)

        run(scenario)


class TestCacheAndLocks:
    def test_the_oldest_entries_are_evicted_beyond_the_bound(
        self, run: Callable[[Scenario], None]
    ) -> None:
        """With room for two, a third entry evicts the first."""

        async def scenario(store: Store) -> None:
            for name in ("a", "b", "c"):
                await store.cache_put(name, name.encode(), ttl_s=60, max_entries=2)
                await asyncio.sleep(0.002)
            assert [await store.cache_get(n) for n in "abc"] == [None, b"b", b"c"]

        run(scenario)

    def test_a_lock_is_released_only_by_its_holder(self, run: Callable[[Scenario], None]) -> None:
        """One holder at a time; another token cannot release it; the holder can."""

        async def scenario(store: Store) -> None:
            assert await store.lock("k", "one", ttl_s=30)
            assert not await store.lock("k", "two", ttl_s=30)
            await store.unlock("k", "two")
            assert await store.locked("k")
            await store.unlock("k", "one")
            assert not await store.locked("k")
            assert await store.lock("k", "two", ttl_s=30)

        run(scenario)


class TestPacing:
    def test_room_is_taken_once_under_concurrency(self, run: Callable[[Scenario], None]) -> None:
        """With 5 requests left and a minute to refill 60, 20 concurrent calls: exactly 5 go
        now, one more goes as the probe, the others are told to wait about a second per
        missing request; a second probe waits its interval."""

        async def scenario(store: Store) -> None:
            now = time.time()
            reading = {
                "requests:limit": 60.0,
                "requests:remaining": 5.0,
                "requests:reset": now + 55.0,
                "requests:at": now,
                "requests:taken": 0.0,
            }
            await store.reading_put("m", reading, ttl_s=60)
            waits = await asyncio.gather(
                *(
                    store.reading_pace(
                        "m", {"requests": 1.0, "output-tokens": 64.0}, probe_every_s=60
                    )
                    for _ in range(20)
                )
            )
            assert sum(1 for w in waits if w == 0) == 5
            assert sum(1 for w in waits if w < 0) == 1
            assert all(0.5 < w <= 55 for w in waits if w > 0)
            assert await store.reading_pace("m", {"requests": 1.0}, probe_every_s=60) > 0
            assert await store.reading_pace("other-model", {"requests": 1.0}, probe_every_s=60) == 0

        run(scenario)


class TestUnreachable:
    def test_every_operation_says_unavailable(self) -> None:
        """Against a port nobody listens on, operations raise StoreUnavailable (never hang,
        never a driver exception the layers above would not expect)."""

        async def scenario() -> None:
            from harness import free_port

            store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
            try:
                with pytest.raises(StoreUnavailable):
                    await store.reserve(
                        ["k"], [1], amount=1, reservation="a", expires_at=later(), ttl_s=60
                    )
                with pytest.raises(StoreUnavailable):
                    await store.settle(["k"], reservation="a", actual=1, ttl_s=60)
                with pytest.raises(StoreUnavailable):
                    await store.cache_get("k")
            finally:
                await store.close()

        asyncio.run(scenario())
