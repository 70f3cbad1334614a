"""The emulator's prefix cache, driven through the real anthropic SDK over HTTP.

Covers breakpoints, TTL buckets, minimum cacheable lengths, expiry on an injected clock, the
20-block lookback and the rule that a write is readable only once its response has begun.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, MessageParam

from tiergate.emulator import Emulator, EmulatorConfig, count_tokens
from tiergate.emulator.testing import ManualClock, ThreadedEmulator

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-6"


def policy_text(min_tokens: int, topic: str = "refund") -> str:
    """Deterministic filler of at least ``min_tokens`` tokens."""
    sentences: list[str] = []
    while count_tokens(" ".join(sentences)) < min_tokens:
        i = len(sentences)
        sentences += [
            f"Rule {i + k}: a {topic} request filed on day {i + k} goes to team {(i + k) % 7}."
            for k in range(50)
        ]
    return " ".join(sentences)


def cached_system(text: str, ttl: str = "5m") -> list[dict[str, Any]]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": ttl}}]


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def served(clock: ManualClock) -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(EmulatorConfig(clock=clock)) as running:
        yield running


@pytest.fixture
def client(served: ThreadedEmulator) -> anthropic.Anthropic:
    served.emulator.reset()
    return anthropic.Anthropic(base_url=served.base_url, api_key="test-key", max_retries=0)


def ask(client: anthropic.Anthropic, model: str = HAIKU, **params: Any) -> Message:
    params.setdefault("messages", [{"role": "user", "content": "What is the refund window?"}])
    message: Message = client.messages.create(model=model, max_tokens=300, **params)
    return message


def assert_sums(client: anthropic.Anthropic, message: Message, **params: Any) -> None:
    usage = message.usage
    params.setdefault("messages", [{"role": "user", "content": "What is the refund window?"}])
    total = client.messages.count_tokens(model=message.model, **params).input_tokens
    written = usage.cache_creation_input_tokens or 0
    read = usage.cache_read_input_tokens or 0
    assert usage.input_tokens + written + read == total
    assert usage.cache_creation is not None
    split = usage.cache_creation.ephemeral_5m_input_tokens
    assert split + usage.cache_creation.ephemeral_1h_input_tokens == written


class TestWriteThenRead:
    def test_stable_prefix_is_written_then_read_with_varying_user_text(
        self, client: anthropic.Anthropic
    ) -> None:
        """A >=4096-token system prefix is written once (5m), then read at the same count."""
        system = cached_system(policy_text(4200))
        first = ask(client, system=system)
        assert_sums(client, first, system=system)
        written = first.usage.cache_creation_input_tokens
        assert written is not None
        assert written >= 4096
        assert first.usage.cache_read_input_tokens == 0
        assert first.usage.cache_creation is not None
        assert first.usage.cache_creation.ephemeral_5m_input_tokens == written

        second = ask(client, system=system)
        assert second.usage.cache_read_input_tokens == written
        assert second.usage.cache_creation_input_tokens == 0
        assert second.usage.input_tokens == first.usage.input_tokens

        other = [{"role": "user", "content": "Which team handles a request filed on day 12?"}]
        third = ask(client, system=system, messages=other)
        assert third.usage.cache_read_input_tokens == written
        assert third.usage.cache_creation_input_tokens == 0
        assert_sums(client, third, system=system, messages=other)

    def test_changed_system_text_misses(self, client: anthropic.Anthropic) -> None:
        """Matching is byte-exact: one changed character in the prefix writes a new entry."""
        text = policy_text(4200)
        ask(client, system=cached_system(text))
        changed = ask(client, system=cached_system(text.replace("Rule 3:", "Rule 3;")))
        assert changed.usage.cache_read_input_tokens == 0
        assert (changed.usage.cache_creation_input_tokens or 0) > 0

    def test_other_model_does_not_share_entries(self, client: anthropic.Anthropic) -> None:
        """The model is part of every identity: the same prefix on another model misses."""
        system = cached_system(policy_text(4200))
        ask(client, model="claude-opus-4-6", system=system)
        assert ask(client, model=HAIKU, system=system).usage.cache_read_input_tokens == 0

    def test_changed_output_schema_misses(self, client: anthropic.Anthropic) -> None:
        """The output schema leads the cached prefix: changing it invalidates the entry."""
        system = cached_system(policy_text(4200))

        def schema(name: str) -> dict[str, Any]:
            closed: dict[str, Any] = {"type": "object", "properties": {name: {"type": "string"}}}
            closed |= {"required": [name], "additionalProperties": False}
            return {"format": {"type": "json_schema", "schema": closed}}

        first = ask(client, system=system, output_config=schema("answer"))
        same = ask(client, system=system, output_config=schema("answer"))
        assert same.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
        other = ask(client, system=system, output_config=schema("reply"))
        assert other.usage.cache_read_input_tokens == 0
        assert (other.usage.cache_creation_input_tokens or 0) > 0

    def test_cache_control_ttl_change_alone_still_reads(self, client: anthropic.Anthropic) -> None:
        """Identities ignore cache_control, so moving from 5m to 1h still hits the entry."""
        text = policy_text(4200)
        written = ask(client, system=cached_system(text)).usage.cache_creation_input_tokens
        again = ask(client, system=cached_system(text, ttl="1h"))
        assert again.usage.cache_read_input_tokens == written

    def test_automatic_breakpoint_caches_the_whole_prompt(
        self, client: anthropic.Anthropic
    ) -> None:
        """A top-level cache_control caches up to the last block; the same call then reads it."""
        messages: list[MessageParam] = [{"role": "user", "content": policy_text(1100)}]
        params: dict[str, Any] = {"messages": messages, "cache_control": {"type": "ephemeral"}}
        first = ask(client, model=SONNET, **params)
        total = client.messages.count_tokens(model=SONNET, messages=messages).input_tokens
        assert first.usage.cache_creation_input_tokens == total
        assert first.usage.input_tokens == 0
        assert ask(client, model=SONNET, **params).usage.cache_read_input_tokens == total


class TestTtlBuckets:
    def test_1h_then_5m_breakpoints_split_creation(self, client: anthropic.Anthropic) -> None:
        """Tokens up to a 1h breakpoint go to the 1h bucket, the rest up to a 5m one to 5m."""
        stable, daily = policy_text(4200), policy_text(1500, topic="exchange")
        system = [*cached_system(stable, "1h"), *cached_system(daily, "5m")]
        first = ask(client, system=system)
        creation = first.usage.cache_creation
        assert creation is not None
        assert creation.ephemeral_1h_input_tokens == count_tokens(stable) + 3
        assert creation.ephemeral_5m_input_tokens == count_tokens(daily) + 3
        assert_sums(client, first, system=system)

    def test_1h_entry_outlives_5m_entry(
        self, client: anthropic.Anthropic, clock: ManualClock
    ) -> None:
        """After 10 minutes only the 1h part of the prefix is still read."""
        stable, daily = policy_text(4200), policy_text(1500, topic="exchange")
        system = [*cached_system(stable, "1h"), *cached_system(daily, "5m")]
        ask(client, system=system)
        clock.advance(600)
        later = ask(client, system=system)
        assert later.usage.cache_read_input_tokens == count_tokens(stable) + 3
        assert later.usage.cache_creation is not None
        assert later.usage.cache_creation.ephemeral_5m_input_tokens == count_tokens(daily) + 3


class TestMinimumLength:
    def test_below_minimum_caches_nothing(self, client: anthropic.Anthropic) -> None:
        """A 2,000-token prefix is below Haiku's 4,096 minimum: both counters stay 0."""
        system = cached_system(policy_text(2000))
        for _ in range(2):
            usage = ask(client, system=system).usage
            assert usage.cache_creation_input_tokens == 0
            assert usage.cache_read_input_tokens == 0

    def test_same_prefix_caches_on_a_model_with_lower_minimum(
        self, client: anthropic.Anthropic
    ) -> None:
        """Sonnet's minimum is 1,024, so the same 2,000-token prefix is cached there."""
        system = cached_system(policy_text(2000))
        assert (ask(client, model=SONNET, system=system).usage.cache_creation_input_tokens or 0) > 0
        assert (ask(client, model=SONNET, system=system).usage.cache_read_input_tokens or 0) > 0


class TestExpiry:
    def test_entry_expires_after_ttl_and_hits_refresh_it(
        self, client: anthropic.Anthropic, clock: ManualClock
    ) -> None:
        """A hit at 299 s refreshes the 5m entry; 301 s without a hit expires it."""
        system = cached_system(policy_text(4200))
        written = ask(client, system=system).usage.cache_creation_input_tokens
        clock.advance(299)
        assert ask(client, system=system).usage.cache_read_input_tokens == written
        clock.advance(299)
        assert ask(client, system=system).usage.cache_read_input_tokens == written
        clock.advance(301)
        expired = ask(client, system=system)
        assert expired.usage.cache_read_input_tokens == 0
        assert expired.usage.cache_creation_input_tokens == written


def conversation(turns: int, breakpoint_at: int) -> list[dict[str, Any]]:
    """A user message of ``turns`` blocks (first one long) with a breakpoint on one block."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": policy_text(1100)}]
    blocks += [{"type": "text", "text": f"Note {i}: day {i} is open."} for i in range(1, turns)]
    blocks[breakpoint_at] = {**blocks[breakpoint_at], "cache_control": {"type": "ephemeral"}}
    return [{"role": "user", "content": blocks}]


class TestLookback:
    def test_breakpoint_moved_later_within_20_blocks_reads_earlier_entry(
        self, client: anthropic.Anthropic
    ) -> None:
        """An entry at block 2 is found from a breakpoint 15 blocks later; the rest is written."""
        first = ask(client, model=SONNET, messages=conversation(30, breakpoint_at=2))
        written = first.usage.cache_creation_input_tokens
        later = conversation(30, breakpoint_at=17)
        moved = ask(client, model=SONNET, messages=later)
        assert moved.usage.cache_read_input_tokens == written
        assert (moved.usage.cache_creation_input_tokens or 0) > 0
        assert_sums(client, moved, messages=later)

    def test_breakpoint_more_than_20_blocks_later_misses(self, client: anthropic.Anthropic) -> None:
        """21 blocks after the entry is beyond the lookback: nothing is read."""
        ask(client, model=SONNET, messages=conversation(30, breakpoint_at=2))
        moved = ask(client, model=SONNET, messages=conversation(30, breakpoint_at=23))
        assert moved.usage.cache_read_input_tokens == 0


class TestConcurrentWrites:
    def test_concurrent_identical_first_requests_both_pay_the_write(self) -> None:
        """With latency on, an entry is readable only once its response began: both write."""

        async def scenario() -> list[Message]:
            emulator = Emulator(EmulatorConfig(latency="seed", latency_scale=0.2))
            base_url = await emulator.start()
            try:
                client = anthropic.AsyncAnthropic(base_url=base_url, api_key="k", max_retries=0)
                system = cached_system(policy_text(4200))
                pair = list(await asyncio.gather(_same(client, system), _same(client, system)))
                after = await _same(client, system)
                return [*pair, after]
            finally:
                await emulator.stop()

        first, second, after = asyncio.run(scenario())
        written = first.usage.cache_creation_input_tokens
        assert written is not None
        assert written > 0
        assert second.usage.cache_creation_input_tokens == written
        assert second.usage.cache_read_input_tokens == 0
        assert after.usage.cache_read_input_tokens == written


async def _same(client: anthropic.AsyncAnthropic, system: list[dict[str, Any]]) -> Message:
    return await client.messages.create(
        model=HAIKU,
        max_tokens=50,
        system=system,  # type: ignore[arg-type]  # plain dicts, as a caller's JSON would be
        messages=[{"role": "user", "content": "Refund window?"}],
    )
