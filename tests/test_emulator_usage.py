"""Usage fields and rate limits as the API reports them: inference_geo, service_tier, the
``anthropic-ratelimit-*`` headers and 429s from per-model token buckets."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import TextBlockParam
from emulator_calls import QUESTION, SONNET, ask

from tiergate.emulator import Emulator, EmulatorConfig, Fault, Script, count_tokens
from tiergate.emulator.ratelimits import RateLimits
from tiergate.emulator.testing import ManualClock, ThreadedEmulator

HAIKU = "claude-haiku-4-5"
KINDS = ("requests", "input-tokens", "output-tokens")


def limited(limits: RateLimits, clock: ManualClock) -> ThreadedEmulator:
    return ThreadedEmulator(EmulatorConfig(rate_limits=limits, clock=clock))


def sdk(served: ThreadedEmulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=0)


def remaining(client: anthropic.Anthropic, **params: Any) -> dict[str, int]:
    """Make one call; return the remaining count of each bucket from its headers."""
    params.setdefault("model", HAIKU)
    params.setdefault("max_tokens", 100)
    params.setdefault("messages", QUESTION)
    raw = client.messages.with_raw_response.create(**params)
    return {kind: int(raw.headers[f"anthropic-ratelimit-{kind}-remaining"]) for kind in KINDS}


class TestInferenceGeo:
    def test_global_by_default_and_the_request_can_ask_for_us(
        self, client: anthropic.Anthropic
    ) -> None:
        """usage.inference_geo is global unless the request sets inference_geo."""
        assert ask(client).usage.inference_geo == "global"
        assert ask(client, inference_geo="us").usage.inference_geo == "us"
        assert ask(client).usage.service_tier == "standard"

    def test_workspace_default_applies_when_the_request_sets_none(self) -> None:
        """default_inference_geo us is reported on requests without their own geo."""
        with ThreadedEmulator(EmulatorConfig(default_inference_geo="us")) as served:
            client = sdk(served)
            assert ask(client).usage.inference_geo == "us"
            assert ask(client, inference_geo="global").usage.inference_geo == "global"

    def test_unknown_geo_is_refused(self, client: anthropic.Anthropic) -> None:
        """Only global and us exist; a misconfigured default fails at construction."""
        with pytest.raises(anthropic.BadRequestError, match="inference_geo"):
            ask(client, inference_geo="eu")
        with pytest.raises(ValueError, match="default_inference_geo"):
            EmulatorConfig(default_inference_geo="mars")

    def test_a_script_can_report_us(self, client: anthropic.Anthropic, emulator: Emulator) -> None:
        """A scripted usage override reaches the SDK's Usage."""
        emulator.script(Script(text="ok", usage={"inference_geo": "us"}))
        assert ask(client).usage.inference_geo == "us"


class TestRateLimitHeaders:
    def test_every_response_reports_the_three_buckets(self, client: anthropic.Anthropic) -> None:
        """limit, remaining and reset for requests, input and output tokens on a 200."""
        raw = client.messages.with_raw_response.create(
            model=SONNET, max_tokens=10, messages=QUESTION
        )
        defaults = RateLimits()
        expected = {
            "requests": defaults.requests_per_minute,
            "input-tokens": defaults.input_tokens_per_minute,
            "output-tokens": defaults.output_tokens_per_minute,
        }
        for kind, limit in expected.items():
            assert int(raw.headers[f"anthropic-ratelimit-{kind}-limit"]) == limit
            # The default clock refills continuously, so only the bound is certain here.
            assert int(raw.headers[f"anthropic-ratelimit-{kind}-remaining"]) <= limit
            assert raw.headers[f"anthropic-ratelimit-{kind}-reset"].endswith("Z")

    def test_error_faults_carry_them_too(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A 529 from a fault still reports the buckets."""
        emulator.inject(Fault("overloaded"))
        with pytest.raises(anthropic.OverloadedError) as caught:
            ask(client)
        assert "anthropic-ratelimit-requests-limit" in caught.value.response.headers


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class TestRequestBucket:
    def test_over_the_limit_is_a_429_until_it_refills(self, clock: ManualClock) -> None:
        """Two requests per minute: the third waits; 30 s later one more fits."""
        with limited(RateLimits(requests_per_minute=2), clock) as served:
            client = sdk(served)
            assert remaining(client)["requests"] == 1
            assert remaining(client)["requests"] == 0
            with pytest.raises(anthropic.RateLimitError) as caught:
                ask(client, model=HAIKU)
            headers = caught.value.response.headers
            assert headers["retry-after"] == "30"
            assert headers["anthropic-ratelimit-requests-remaining"] == "0"
            assert len(served.emulator.requests) == 3  # recorded, as the API saw it
            clock.advance(30)
            assert remaining(client)["requests"] == 0

    def test_buckets_are_per_model(self, clock: ManualClock) -> None:
        """Another model has its own full bucket."""
        with limited(RateLimits(requests_per_minute=1), clock) as served:
            client = sdk(served)
            remaining(client)
            assert remaining(client, model=SONNET)["requests"] == 0

    def test_a_refused_call_consumes_no_script(self, clock: ManualClock) -> None:
        """A 429 leaves the queued script for the next admitted call."""
        with limited(RateLimits(requests_per_minute=1), clock) as served:
            client = sdk(served)
            remaining(client)
            served.emulator.script(Script(text="later"))
            with pytest.raises(anthropic.RateLimitError):
                ask(client, model=HAIKU)
            clock.advance(60)
            assert ask(client, model=HAIKU).content[0].type == "text"
            assert served.emulator.scripts.pending() == []


def cached_system() -> list[TextBlockParam]:
    words = " ".join(f"rule{i} applies to refunds filed on day {i}." for i in range(900))
    return [{"type": "text", "text": words, "cache_control": {"type": "ephemeral"}}]


class TestTokenBuckets:
    def test_input_counts_cache_writes_but_not_reads(self, clock: ManualClock) -> None:
        """A write spends its tokens; a read of the same prefix spends only the uncached part."""
        with limited(RateLimits(input_tokens_per_minute=20_000), clock) as served:
            client = sdk(served)
            first = client.messages.create(
                model=HAIKU, max_tokens=10, system=cached_system(), messages=QUESTION
            )
            written = first.usage.cache_creation_input_tokens or 0
            assert written > 4096
            after_write = 20_000 - first.usage.input_tokens - written
            left = remaining(client, system=cached_system())["input-tokens"]
            second_uncached = first.usage.input_tokens  # same question, prefix read
            assert left == after_write - second_uncached

    def test_output_reserves_max_tokens_and_returns_the_rest(self, clock: ManualClock) -> None:
        """max_tokens is taken at admission; what the answer did not use comes back."""
        with limited(RateLimits(output_tokens_per_minute=1000), clock) as served:
            client = sdk(served)
            served.emulator.script(Script(text="Thirty days."))
            used = count_tokens("Thirty days.")
            assert remaining(client, max_tokens=600)["output-tokens"] == 1000 - used
            with pytest.raises(anthropic.RateLimitError, match="output-tokens per minute"):
                ask(client, model=HAIKU, max_tokens=1000 - used + 1)
            assert ask(client, model=HAIKU, max_tokens=1000 - used).content
