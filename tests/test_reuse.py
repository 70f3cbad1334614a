"""Cache lifetime per stable prefix: 1h while reuse gaps lie between 5 minutes and an hour."""

from __future__ import annotations

import asyncio

import anthropic

from samples import TICKET_LABELS, long_policy
from tiergate.calls.reuse import ReuseTracker, choose
from tiergate.config import CacheTtl, Settings
from tiergate.emulator.app import EmulatorConfig
from tiergate.emulator.testing import ManualClock, ThreadedEmulator
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.tasks import TASKS
from tiergate.upstream.model_client import ModelClient
from tiergate.v1 import task_service_pb2 as pb

HAIKU = PriceTable.load().facts("claude-haiku-4-5")


class TestChoice:
    def test_unknown_or_short_gaps_keep_five_minutes(self) -> None:
        """No history, gaps within 5 minutes and gaps past an hour all choose 5m."""
        assert choose(None) == "5m"
        assert choose(30.0) == "5m"
        assert choose(300.0) == "5m"
        assert choose(3601.0) == "5m"

    def test_gaps_between_five_minutes_and_an_hour_choose_one_hour(self) -> None:
        """A prefix that returns every 8 or 50 minutes is worth a 1h write."""
        assert choose(480.0) == "1h"
        assert choose(3000.0) == "1h"


class TestTracker:
    def test_second_send_after_eight_minutes_picks_one_hour(self) -> None:
        """The first send knows nothing (5m); the second, 8 minutes later, picks 1h."""
        clock = ManualClock()
        tracker = ReuseTracker(clock=clock)
        assert tracker.observe(b"policy") == "5m"
        clock.advance(480)
        assert tracker.observe(b"policy") == "1h"

    def test_prefixes_are_tracked_separately(self) -> None:
        """A busy prefix stays at 5m while a slow one moves to 1h."""
        clock = ManualClock()
        tracker = ReuseTracker(clock=clock)
        tracker.observe(b"slow")
        for _ in range(10):
            clock.advance(60)
            assert tracker.observe(b"busy") == "5m"
        assert tracker.observe(b"slow") == "1h"  # 10 minutes since its last send

    def test_one_odd_gap_is_smoothed(self) -> None:
        """After steady 8-minute gaps, one 1-minute gap does not drop the choice to 5m."""
        clock = ManualClock()
        tracker = ReuseTracker(clock=clock)
        tracker.observe(b"p")
        for _ in range(3):
            clock.advance(480)
            tracker.observe(b"p")
        clock.advance(60)
        assert tracker.observe(b"p") == "1h"

    def test_memory_is_bounded_least_recent_forgotten(self) -> None:
        """Past its capacity the tracker forgets the prefix sent longest ago."""
        clock = ManualClock()
        tracker = ReuseTracker(capacity=2, clock=clock)
        for key in (b"a", b"b", b"c"):
            tracker.observe(key)
        assert len(tracker) == 2
        clock.advance(480)
        assert tracker.observe(b"a") == "5m"  # forgotten: no history
        assert tracker.observe(b"c") == "1h"


def _day(ttl: CacheTtl, calls: int, gap_s: float) -> list[TokenUsage]:
    """``calls`` Classify calls on one cached policy, ``gap_s`` apart on a manual clock."""
    clock = ManualClock()
    task = TASKS["Classify"]
    policy = long_policy()

    async def run(base_url: str) -> list[TokenUsage]:
        sdk = anthropic.AsyncAnthropic(base_url=base_url, api_key="k")
        client = ModelClient(sdk, Settings(cache_ttl=ttl), reuse=ReuseTracker(clock=clock))
        usages = []
        try:
            for i in range(calls):
                request = pb.ClassifyRequest(
                    text=f"Ticket {i}: charged twice", labels=TICKET_LABELS, instructions=policy
                )
                done = await client.complete(
                    task.prompt(request),
                    facts=HAIKU,
                    check=lambda output, r=request: task.check(r, output),  # type: ignore[misc]
                    size_field=lambda: "text",
                )
                usages.append(done.usage)
                clock.advance(gap_s)
        finally:
            await client.close()
        return usages

    with ThreadedEmulator(EmulatorConfig(clock=clock)) as served:
        return asyncio.run(run(served.base_url))


class TestAutoLifetime:
    def test_slow_reuse_writes_once_for_an_hour_then_reads(self) -> None:
        """Every 8 minutes: a 5m write, then one 1h write, then only reads."""
        first, second, *rest = _day("auto", calls=5, gap_s=480)
        assert first.cache_write_5m_tokens > 0
        assert second.cache_write_1h_tokens == first.cache_write_5m_tokens
        assert all(u.cache_read_tokens == first.cache_write_5m_tokens for u in rest)
        assert all(u.cache_creation_input_tokens == 0 for u in rest)

    def test_auto_costs_less_than_five_minutes_on_slow_reuse(self) -> None:
        """The ledger prices auto's day below the 5m day on the same calls."""
        prices = PriceTable.load()

        def total(ttl: CacheTtl) -> int:
            usage = sum(_day(ttl, calls=6, gap_s=480), TokenUsage())
            return prices.cost(HAIKU.model, usage).total_nanos

        assert total("auto") < total("5m")

    def test_busy_reuse_stays_at_five_minutes(self) -> None:
        """Calls a minute apart never pay the 1h write premium."""
        usages = _day("auto", calls=4, gap_s=60)
        assert all(u.cache_write_1h_tokens == 0 for u in usages)
        assert all(u.cache_read_tokens > 0 for u in usages[1:])
