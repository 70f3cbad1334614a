"""Loading the one price table: every fact kept, every price checked, errors that name models.

Each test loads the table itself, so what it pins is read inside the test.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from anthropic._data.deprecated_models import DEPRECATED_MODELS

from tiergate.ledger import PriceTable, UnpricedModelError

ROW = {
    "input": 2,
    "cache_write_5m": 2,
    "cache_write_1h": 2,
    "cache_read": 2,
    "output": 2,
    "min_cacheable_tokens": 1,
    "context_window_tokens": 1,
    "max_output_tokens": 1,
    "us_inference_percent": 100,
}


def table(tmp_path: Path, **row: int) -> Path:
    """A one-model table (model ``m``) with ``row`` over two-nano prices."""
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

    def test_retirement_dates_agree_with_the_sdk(self) -> None:
        """Every model the installed SDK calls deprecated retires in the table on the SDK's
        date, and the table retires no model the SDK still serves: an SDK upgrade that
        announces a retirement fails here until the table carries it."""
        deprecated = {
            model: datetime.datetime.strptime(
                re.sub(r"(\d+)(st|nd|rd|th)", r"\1", when), "%B %d, %Y"
            ).date()
            for model, when in DEPRECATED_MODELS.items()
        }
        prices = PriceTable.load()
        table = {name: facts.retires for name, facts in prices.models.items()}
        assert {m: d for m, d in table.items() if d is not None} == {
            m: deprecated[m] for m in table if m in deprecated
        }

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
    def test_two_nano_prices_are_valid(self, tmp_path: Path) -> None:
        """The smallest price whose batch half is still a whole nano, two nano-dollars per
        token, is a price."""
        facts = PriceTable.load(table(tmp_path)).facts("m")
        assert (facts.input, facts.output) == (2, 2)

    def test_an_odd_price_is_refused_for_its_batch_half(self, tmp_path: Path) -> None:
        """One nano-dollar per token has no whole batch half: the table is refused."""
        with pytest.raises(ValueError, match="fractional nano"):
            PriceTable.load(table(tmp_path, output=1))

    @pytest.mark.parametrize(
        "category", ["input", "cache_write_5m", "cache_write_1h", "cache_read", "output"]
    )
    def test_a_zero_price_in_any_category_is_refused(self, tmp_path: Path, category: str) -> None:
        """Every category must be priced above zero, output included."""
        with pytest.raises(ValueError, match="m has a non-positive price"):
            PriceTable.load(table(tmp_path, **{category: 0}))
