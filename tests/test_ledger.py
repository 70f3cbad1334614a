"""The ledger prices usage exactly, per component, from the one price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiergate.app import App
from tiergate.config import Settings
from tiergate.ledger import PriceTable, TokenUsage, UnpricedModelError

PRICES = PriceTable.load()


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
