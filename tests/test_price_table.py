"""Loading the one price table: every fact kept, every price checked, errors that name models.

Each test loads the table itself, so what it pins is read inside the test.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from tiergate.ledger import PriceTable, UnpricedModelError

ROW = {
    "input": 1,
    "cache_write_5m": 1,
    "cache_write_1h": 1,
    "cache_read": 1,
    "output": 1,
    "min_cacheable_tokens": 1,
    "context_window_tokens": 1,
    "max_output_tokens": 1,
    "us_inference_percent": 100,
}


def table(tmp_path: Path, **row: int) -> Path:
    """A one-model table (model ``m``) with ``row`` over one-nano prices."""
    lines = ['[source]\ndocuments = ["https://example.invalid"]\nretrieved = "2026-01-01"\n']
    lines.append("[models.m]")
    lines.extend(f"{key} = {value}" for key, value in {**ROW, **row}.items())
    path = tmp_path / "models.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class TestTheShippedTable:
    def test_source_and_date_are_kept(self) -> None:
        """The table's source documents and retrieval date come through load."""
        prices = PriceTable.load()
        assert prices.source
        assert isinstance(prices.source, tuple)
        assert all(doc.startswith("https://") for doc in prices.source)
        assert prices.retrieved == "2026-11-24"

    def test_each_row_names_its_model(self) -> None:
        """A model's facts carry the model's own name."""
        prices = PriceTable.load()
        assert all(facts.model == name for name, facts in prices.models.items())

    def test_retirement_dates_are_kept(self) -> None:
        """A retiring model keeps its date; a current one has none."""
        prices = PriceTable.load()
        assert prices.facts("claude-sonnet-4-5").retires == datetime.date(2026, 11, 30)
        assert prices.facts("claude-haiku-4-5").retires is None

    def test_unpriced_model_lists_the_priced_ones(self) -> None:
        """The refusal names the model asked for and every model that has a price."""
        prices = PriceTable.load()
        with pytest.raises(UnpricedModelError) as raised:
            prices.facts("claude-unknown-9")
        priced = ", ".join(sorted(prices.models))
        assert str(raised.value) == (
            f"model 'claude-unknown-9' has no price in the price table (priced: {priced})"
        )


class TestPriceChecks:
    def test_one_nano_prices_are_valid(self, tmp_path: Path) -> None:
        """The smallest positive price, one nano-dollar per token, is a price."""
        facts = PriceTable.load(table(tmp_path)).facts("m")
        assert (facts.input, facts.output) == (1, 1)

    @pytest.mark.parametrize(
        "category", ["input", "cache_write_5m", "cache_write_1h", "cache_read", "output"]
    )
    def test_a_zero_price_in_any_category_is_refused(self, tmp_path: Path, category: str) -> None:
        """Every category must be priced above zero, output included."""
        with pytest.raises(ValueError, match="m has a non-positive price"):
            PriceTable.load(table(tmp_path, **{category: 0}))
