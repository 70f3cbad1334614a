"""A road's circuit breaker: when it opens, how it probes, when traffic returns."""

from __future__ import annotations

import pytest

from tiergate.emulator.testing import ManualClock
from tiergate.upstream.breakers import Breaker, State


def breaker(clock: ManualClock, seen: list[tuple[str, State]] | None = None) -> Breaker:
    observe = None if seen is None else (lambda road, state: seen.append((road, state)))
    return Breaker("bedrock", failures=3, cooldown_s=10.0, clock=clock, observer=observe)


class TestBreaker:
    def test_opens_after_the_failures_in_a_row_and_skips_the_road(self) -> None:
        clock = ManualClock()
        road = breaker(clock)
        for _ in range(2):
            road.failed()
        assert road.allows()
        road.failed()
        assert road.state == "open"
        assert not road.allows()

    def test_a_success_resets_the_count(self) -> None:
        road = breaker(ManualClock())
        road.failed()
        road.failed()
        road.succeeded()
        road.failed()
        road.failed()
        assert road.state == "closed"

    def test_after_the_cooldown_one_probe_at_a_time(self) -> None:
        clock = ManualClock()
        road = breaker(clock)
        for _ in range(3):
            road.failed()
        clock.advance(10.0)
        assert road.allows()
        assert road.state == "half_open"
        assert not road.allows()  # the probe is in flight: the rest take other roads
        assert road.probes == 1

    def test_a_good_probe_closes_and_a_bad_one_reopens(self) -> None:
        clock = ManualClock()
        seen: list[tuple[str, State]] = []
        road = breaker(clock, seen)
        for _ in range(3):
            road.failed()
        clock.advance(10.0)
        assert road.allows()
        road.failed()
        assert road.state == "open"
        assert not road.allows()
        clock.advance(10.0)
        assert road.allows()
        road.succeeded()
        assert [state for _, state in seen] == [
            "closed",
            "open",
            "half_open",
            "open",
            "half_open",
            "closed",
        ]

    def test_a_probe_without_a_verdict_frees_the_slot(self) -> None:
        clock = ManualClock()
        road = breaker(clock)
        for _ in range(3):
            road.failed()
        clock.advance(10.0)
        assert road.allows()
        road.released()
        assert road.allows()

    def test_refuses_a_meaningless_configuration(self) -> None:
        with pytest.raises(ValueError, match="failures"):
            Breaker("vertex", failures=0, cooldown_s=1.0)
