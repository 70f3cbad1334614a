"""The ledger prices usage exactly, per component, from the one price table."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import free_port, wait_serving
from tiergate.config import Settings
from tiergate.ledger import (
    Bill,
    Cost,
    PriceTable,
    RetiredModelError,
    TokenUsage,
    UnpricedModelError,
)
from tiergate.serving.app import App
from tiergate.tiers import Tier
from tiergate.v1 import usage_pb2

PRICES = PriceTable.load()
SERVE = [sys.executable, "-m", "tiergate.cli", "serve"]


class TestPriceTable:
    def test_table_names_its_source_and_date(self) -> None:
        """The table says where its prices come from and when they were read."""
        assert PRICES.source
        assert all(doc.startswith("https://") for doc in PRICES.source)
        assert PRICES.retrieved == "2026-11-24"

    @pytest.mark.parametrize(
        ("model", "row"),
        [
            ("claude-haiku-4-5", (1000, 1250, 2000, 100, 5000, 4096)),
            ("claude-sonnet-4-6", (3000, 3750, 6000, 300, 15000, 1024)),
            ("claude-opus-4-7", (5000, 6250, 10000, 500, 25000, 2048)),
        ],
    )
    def test_tier_default_models_are_priced(self, model: str, row: tuple[int, ...]) -> None:
        """Prices in nanos per token ($1/MTok = 1,000) and minimum cacheable lengths."""
        f = PRICES.facts(model)
        assert (f.input, f.cache_write_5m, f.cache_write_1h, f.cache_read, f.output) == row[:5]
        assert f.min_cacheable_tokens == row[5]

    def test_unpriced_model_is_refused(self) -> None:
        """A model without a price raises instead of costing zero."""
        with pytest.raises(UnpricedModelError, match="claude-unknown-9"):
            PRICES.facts("claude-unknown-9")

    def test_service_refuses_to_start_on_an_unpriced_model(self) -> None:
        """Configuring a tier with an unpriced model fails at start-up."""
        with pytest.raises(UnpricedModelError):
            App(Settings(fast_model="claude-unknown-9"))

    def test_non_positive_price_is_rejected(self, tmp_path: Path) -> None:
        """A zero price in the table is a data error, not a free model."""
        table = tmp_path / "models.toml"
        table.write_text(
            '[source]\ndocuments = ["https://example.invalid"]\nretrieved = "2026-01-01"\n'
            "[models.m]\ninput = 0\ncache_write_5m = 1\ncache_write_1h = 1\ncache_read = 1\n"
            "output = 1\nmin_cacheable_tokens = 1\ncontext_window_tokens = 1\n"
            "max_output_tokens = 1\nus_inference_percent = 100\n"
        )
        with pytest.raises(ValueError, match="non-positive"):
            PriceTable.load(table)


class TestCost:
    def test_scripted_usage_costs_exactly_per_component(self) -> None:
        """Every component is tokens x its own price, 5m and 1h writes apart."""
        usage = TokenUsage(
            input_tokens=1234,
            cache_write_5m_tokens=5000,
            cache_write_1h_tokens=7000,
            cache_read_tokens=40_000,
            output_tokens=321,
        )
        cost = PRICES.cost("claude-sonnet-4-6", usage)
        assert cost.input_nanos == 1234 * 3000
        assert cost.cache_write_5m_nanos == 5000 * 3750
        assert cost.cache_write_1h_nanos == 7000 * 6000
        assert cost.cache_write_nanos == 5000 * 3750 + 7000 * 6000
        assert cost.cache_read_nanos == 40_000 * 300
        assert cost.output_nanos == 321 * 15000
        assert cost.total_nanos == 3_702_000 + 18_750_000 + 42_000_000 + 12_000_000 + 4_815_000
        assert cost.cache_savings_nanos == 40_000 * (3000 - 300)
        assert cost.cache_write_premium_nanos == 5000 * 750 + 7000 * 3000

    def test_usage_adds_up_over_calls(self) -> None:
        """Usage of several billed calls sums category by category."""
        a = TokenUsage(
            input_tokens=1, cache_write_5m_tokens=2, cache_read_tokens=3, output_tokens=4
        )
        b = TokenUsage(input_tokens=10, cache_write_1h_tokens=20, output_tokens=40)
        total = a + b
        assert total == TokenUsage(11, 2, 20, 3, 44)
        assert total.cache_creation_input_tokens == 22
        assert total.prompt_tokens == 11 + 22 + 3


class TestBill:
    """The contract's Usage message is read off the ledger's record, field by field."""

    TOKENS = TokenUsage(
        input_tokens=10,
        cache_write_5m_tokens=20,
        cache_write_1h_tokens=30,
        cache_read_tokens=40,
        output_tokens=60,
        inference_geo="us",
    )
    COST = Cost(
        input_nanos=1,
        cache_write_5m_nanos=2,
        cache_write_1h_nanos=3,
        cache_read_nanos=4,
        output_nanos=5,
        cache_savings_nanos=6,
        cache_write_premium_nanos=7,
    )

    def test_every_field_of_the_bill_reaches_the_usage(self) -> None:
        """Each count, cost component, sum and label lands in its own Usage field."""
        bill = Bill(
            model="claude-sonnet-4-6",
            tier=Tier.BALANCED,
            tokens=self.TOKENS,
            cost=self.COST,
            billed_calls=2,
            attempts=3,
            request_id="req_1",
            service_tier="batch",
            from_cache=True,
        )
        assert bill.usage() == usage_pb2.Usage(
            model="claude-sonnet-4-6",
            tier=usage_pb2.TIER_BALANCED,
            input_tokens=10,
            cache_creation_input_tokens=50,
            cache_read_input_tokens=40,
            output_tokens=60,
            cache_creation_5m_input_tokens=20,
            cache_creation_1h_input_tokens=30,
            billed_calls=2,
            attempts=3,
            request_id="req_1",
            inference_geo="us",
            service_tier="batch",
            from_cache=True,
            cost=usage_pb2.Cost(
                input_nanos=1,
                cache_write_nanos=5,
                cache_write_5m_nanos=2,
                cache_write_1h_nanos=3,
                cache_read_nanos=4,
                output_nanos=5,
                total_nanos=15,
                cache_savings_nanos=6,
                cache_write_premium_nanos=7,
            ),
        )

    def test_a_sum_over_several_tiers_names_none(self) -> None:
        """A bill over several tiers (a batch mixing tasks) has TIER_UNSPECIFIED."""
        bill = Bill("claude-haiku-4-5", None, self.TOKENS, self.COST, 1, 1, "")
        assert bill.usage().tier == usage_pb2.TIER_UNSPECIFIED
        assert not bill.usage().from_cache
        assert bill.usage().service_tier == ""


def per_day(model: str, requests: int, usage: TokenUsage) -> int:
    return requests * PRICES.cost(model, usage).total_nanos


class TestSeedArticle:
    """The seed article's worked examples, computed by the ledger (nanos; $1 = 1e9)."""

    @pytest.mark.parametrize(
        ("model", "dollars_nanos"),
        [
            ("claude-haiku-4-5", 525_000_000),
            ("claude-sonnet-4-6", 1_575_000_000),
            ("claude-opus-4-7", 2_625_000_000),
        ],
    )
    def test_ticket_classification_per_day(self, model: str, dollars_nanos: int) -> None:
        """500 tickets/day of 800 input and 50 output tokens: $0.525 / $1.575 / $2.625."""
        usage = TokenUsage(input_tokens=800, output_tokens=50)
        assert per_day(model, 500, usage) == dollars_nanos

    @pytest.mark.parametrize(
        ("model", "dollars_nanos"),
        [("claude-haiku-4-5", 3_000_000_000), ("claude-sonnet-4-6", 9_000_000_000)],
    )
    def test_document_summarization_per_day(self, model: str, dollars_nanos: int) -> None:
        """1,000 pages/day of 2,000 tokens with 10% summaries: $3.00 on Haiku, $9.00 on Sonnet."""
        usage = TokenUsage(input_tokens=2000, output_tokens=200)
        assert per_day(model, 1000, usage) == dollars_nanos

    def test_cached_prefix_over_a_thousand_requests(self) -> None:
        """A 5,000-token prefix over 1,000 requests: $5.00 uncached, about $0.51 cached."""
        model = "claude-haiku-4-5"
        uncached = per_day(model, 1000, TokenUsage(input_tokens=5000))
        cached = PRICES.cost(model, TokenUsage(cache_write_5m_tokens=5000)).total_nanos + per_day(
            model, 999, TokenUsage(cache_read_tokens=5000)
        )
        assert uncached == 5_000_000_000
        assert cached == 505_750_000
        assert round(1 - cached / uncached, 3) == 0.899


EVERY_CATEGORY = TokenUsage(
    input_tokens=1234,
    cache_write_5m_tokens=5000,
    cache_write_1h_tokens=7000,
    cache_read_tokens=40_000,
    output_tokens=321,
)


def in_geo(usage: TokenUsage, geo: str) -> TokenUsage:
    return TokenUsage(
        usage.input_tokens,
        usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens,
        usage.cache_read_tokens,
        usage.output_tokens,
        inference_geo=geo,
    )


def table_with(tmp_path: Path, **row: object) -> Path:
    fields = {
        "input": 3000,
        "cache_write_5m": 3750,
        "cache_write_1h": 6000,
        "cache_read": 300,
        "output": 15000,
        "min_cacheable_tokens": 1024,
        "context_window_tokens": 1000000,
        "max_output_tokens": 128000,
        "us_inference_percent": 110,
        **row,
    }
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in fields.items())
    table = tmp_path / "models.toml"
    table.write_text(
        '[source]\ndocuments = ["https://example.invalid"]\nretrieved = "2026-01-01"\n'
        f"[models.m]\n{body}\n"
    )
    return table


class TestInferenceGeo:
    @pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-6", "claude-opus-4-7"])
    def test_us_inference_costs_110_percent_in_every_category(self, model: str) -> None:
        """``inference_geo: us`` costs exactly 1.1x per component on the 4.6+ models, savings
        and write premium included, in integer nanos."""
        base = PRICES.cost(model, in_geo(EVERY_CATEGORY, "global"))
        us = PRICES.cost(model, in_geo(EVERY_CATEGORY, "us"))
        for name in (
            "input_nanos",
            "cache_write_5m_nanos",
            "cache_write_1h_nanos",
            "cache_read_nanos",
            "output_nanos",
            "cache_savings_nanos",
            "cache_write_premium_nanos",
        ):
            assert getattr(us, name) * 10 == getattr(base, name) * 11, name
        assert us.total_nanos * 10 == base.total_nanos * 11

    def test_sonnet_us_figures_by_hand(self) -> None:
        """Sonnet 4.6 in the US: $3.30 / $16.50 per MTok, i.e. 3,300 and 16,500 nanos a token."""
        cost = PRICES.cost(
            "claude-sonnet-4-6", TokenUsage(1000, output_tokens=100, inference_geo="us")
        )
        assert (cost.input_nanos, cost.output_nanos) == (3_300_000, 1_650_000)

    @pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"])
    def test_older_models_cost_the_same_in_the_us(self, model: str) -> None:
        """Haiku 4.5 and the 4.5 models have no US premium."""
        assert PRICES.cost(model, in_geo(EVERY_CATEGORY, "us")) == PRICES.cost(
            model, in_geo(EVERY_CATEGORY, "global")
        )

    def test_unreported_geo_is_priced_as_global(self) -> None:
        """A response without ``inference_geo`` costs the base price, as ``global`` does."""
        model = "claude-sonnet-4-6"
        assert PRICES.cost(model, EVERY_CATEGORY) == PRICES.cost(
            model, in_geo(EVERY_CATEGORY, "global")
        )

    def test_calls_in_different_geos_sum_exactly(self) -> None:
        """A re-ask served in another geo: the sum keeps both geos apart, names them in call
        order, and costs exactly the two calls priced alone."""
        first = TokenUsage(input_tokens=900, output_tokens=40, inference_geo="global")
        second = TokenUsage(
            input_tokens=1000, cache_read_tokens=77, output_tokens=60, inference_geo="us"
        )
        third = TokenUsage(input_tokens=5, output_tokens=1, inference_geo="global")
        total = TokenUsage() + first + second + third
        assert total.inference_geo == "global,us"
        assert (total.input_tokens, total.cache_read_tokens, total.output_tokens) == (1905, 77, 101)
        model = "claude-opus-4-7"
        expected = sum(PRICES.cost(model, u).total_nanos for u in (first, second, third))
        assert PRICES.cost(model, total).total_nanos == expected
        assert (
            PRICES.cost(model, total).total_nanos
            != PRICES.cost(model, in_geo(total, "us")).total_nanos
        )

    def test_one_geo_sums_to_that_geo(self) -> None:
        """Calls that all report ``us`` sum to plain ``us`` usage, priced as one."""
        a = TokenUsage(input_tokens=10, output_tokens=4, inference_geo="us")
        total = TokenUsage() + a + a
        assert total == TokenUsage(input_tokens=20, output_tokens=8, inference_geo="us")

    def test_nothing_sums_to_nothing(self) -> None:
        """Usage of calls that billed nothing sums to empty usage, no geo named."""
        assert TokenUsage() + TokenUsage() == TokenUsage()

    @pytest.mark.parametrize("field", ["us_inference_percent", "tokenizer_percent"])
    def test_a_percent_below_100_is_refused(self, tmp_path: Path, field: str) -> None:
        """Either percent below 100 is a data error (a discount or a shrinking tokenizer is
        not what the columns mean): the table does not load, naming the model."""
        with pytest.raises(ValueError, match="percent below 100") as caught:
            PriceTable.load(table_with(tmp_path, **{field: 90}))
        assert str(caught.value) == f"{tmp_path / 'models.toml'}: m has a percent below 100"

    def test_a_fractional_us_price_is_refused(self, tmp_path: Path) -> None:
        """A multiplier that would make a price a fraction of a nano is a data error: the
        ledger stays exact or the service does not start."""
        with pytest.raises(ValueError, match="fractional"):
            PriceTable.load(table_with(tmp_path, cache_read=305, us_inference_percent=111))


class TestBatchPrice:
    def test_every_category_costs_exactly_half(self) -> None:
        """A batch call costs half of the same tokens interactively, per category, to the nano,
        on every priced model in the global geo."""
        usage = TokenUsage(
            input_tokens=1001,
            cache_write_5m_tokens=4097,
            cache_write_1h_tokens=33,
            cache_read_tokens=777,
            output_tokens=55,
            inference_geo="global",
        )
        for model in PRICES.models:
            full, half = PRICES.cost(model, usage), PRICES.cost(model, usage, batch=True)
            for part in (
                "input_nanos",
                "cache_write_5m_nanos",
                "cache_write_1h_nanos",
                "cache_read_nanos",
                "output_nanos",
                "cache_savings_nanos",
                "cache_write_premium_nanos",
            ):
                assert getattr(half, part) * 2 == getattr(full, part), (model, part)

    def test_an_odd_price_is_refused_at_load(self, tmp_path: Path) -> None:
        """Half of an odd nano price is a fraction: the service does not start on it."""
        with pytest.raises(ValueError, match="batch price"):
            PriceTable.load(table_with(tmp_path, output=15001, us_inference_percent=100))

    def test_an_odd_us_price_is_floored_below_one_nano(self) -> None:
        """Sonnet 4.6's US 5-minute write is 4,125 nanos: one batch token costs 2,062 (the
        half floored once per category and call), never more than the exact half."""
        one = TokenUsage(cache_write_5m_tokens=1, inference_geo="us")
        assert PRICES.cost("claude-sonnet-4-6", one, batch=True).cache_write_5m_nanos == 2062
        three = TokenUsage(cache_write_5m_tokens=3, inference_geo="us")
        assert PRICES.cost("claude-sonnet-4-6", three, batch=True).cache_write_5m_nanos == 6187


class TestRetirement:
    def test_sonnet_4_5_retires_on_november_30(self) -> None:
        """The table carries the SDK's retirement date for claude-sonnet-4-5."""
        assert PRICES.facts("claude-sonnet-4-5").retires == datetime.date(2026, 11, 30)
        assert PRICES.facts("claude-sonnet-4-6").retires is None

    def test_retiring_models_are_listed_once_before_their_day(self) -> None:
        """Before the date, each configured retiring model is reported once; others not."""
        models = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4-5"]
        found = PRICES.retirements(models, today=datetime.date(2026, 11, 25))
        assert [f.model for f in found] == ["claude-sonnet-4-5"]

    @pytest.mark.parametrize("day", [datetime.date(2026, 11, 30), datetime.date(2027, 1, 1)])
    def test_a_retired_model_is_refused_from_its_day_on(self, day: datetime.date) -> None:
        """On and after its retirement day the model is refused with one line naming it."""
        with pytest.raises(RetiredModelError) as caught:
            PRICES.retirements(["claude-sonnet-4-5"], today=day)
        assert str(caught.value) == (
            "model 'claude-sonnet-4-5' retired on 2026-11-30; configure a current model for its"
            " tier"
        )

    def test_serve_warns_or_refuses_by_todays_date(self) -> None:
        """``tiergate serve`` with claude-sonnet-4-5 on the balanced tier: a warning line naming
        the model and its date while it still answers, exit code 2 and one line once retired."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(TIERGATE_PORT=str(port), TIERGATE_UPSTREAM="emulator")
        process = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--balanced-model", "claude-sonnet-4-5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        retired = datetime.datetime.now(datetime.UTC).date() >= datetime.date(2026, 11, 30)
        try:
            if retired:
                assert process.wait(timeout=60) == 2
                assert process.stderr is not None
                lines = process.stderr.read().strip().splitlines()
                assert len(lines) == 1
                assert "claude-sonnet-4-5" in lines[0]
                return
            wait_serving(port)
        finally:
            process.kill()
            process.wait()
        assert process.stdout is not None
        logs = [json.loads(line) for line in process.stdout.read().splitlines() if line.strip()]
        warning = next(entry for entry in logs if entry["event"] == "model.retiring")
        assert (warning["model"], warning["retires"]) == ("claude-sonnet-4-5", "2026-11-30")
        assert warning["level"] == "warning"
