"""The cost ledger: token usage -> exact cost in integer nano-dollars.

One price table (``models.toml`` beside this module, with its source and date) prices every
model the service may call. Every price is a whole number of nano-dollars per token, so the
ledger never touches floating point::

    >>> table = PriceTable.load()
    >>> usage = TokenUsage(input_tokens=800, output_tokens=50)
    >>> table.cost("claude-haiku-4-5", usage).total_nanos
    1050000
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_TABLE = Path(__file__).with_name("models.toml")


class UnpricedModelError(LookupError):
    """A model has no row in the price table; the service refuses to run it."""


@dataclass(frozen=True)
class ModelFacts:
    """Prices (nano-dollars per token) and prompt limits of one model."""

    model: str
    input: int
    """Uncached input tokens."""
    cache_write_5m: int
    """Tokens written to the cache with the 5-minute TTL."""
    cache_write_1h: int
    """Tokens written to the cache with the 1-hour TTL."""
    cache_read: int
    """Tokens read from the cache."""
    output: int
    """Output tokens."""
    min_cacheable_tokens: int
    """Shortest prefix the API will cache for this model."""
    context_window_tokens: int
    """Largest prompt plus output the model accepts."""
    max_output_tokens: int
    """Largest ``max_tokens`` the model accepts."""
    us_inference_percent: int
    """Every category's price in percent when ``usage.inference_geo`` is ``us`` (100: no change)."""
    retires: str | None = None
    """ISO date the model stops answering, when announced."""


@dataclass(frozen=True)
class TokenUsage:
    """Billed tokens of one or more model calls, by billing category."""

    input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt, however it was billed."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


@dataclass(frozen=True)
class Cost:
    """Exact cost of some usage, per component, in nano-dollars."""

    input_nanos: int
    cache_write_5m_nanos: int
    cache_write_1h_nanos: int
    cache_read_nanos: int
    output_nanos: int
    cache_savings_nanos: int
    """Read tokens at the full input price minus what the reads cost."""
    cache_write_premium_nanos: int
    """Written tokens at their write prices minus the same tokens at the input price."""

    @property
    def cache_write_nanos(self) -> int:
        return self.cache_write_5m_nanos + self.cache_write_1h_nanos

    @property
    def total_nanos(self) -> int:
        return self.input_nanos + self.cache_write_nanos + self.cache_read_nanos + self.output_nanos


@dataclass(frozen=True)
class PriceTable:
    """Every priced model, loaded from one data file."""

    models: dict[str, ModelFacts]
    source: tuple[str, ...]
    retrieved: str

    @classmethod
    def load(cls, path: Path = DEFAULT_TABLE) -> PriceTable:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        models = {name: _facts(name, row) for name, row in data["models"].items()}
        for facts in models.values():
            prices = (facts.input, facts.cache_write_5m, facts.cache_write_1h, facts.cache_read)
            if min(*prices, facts.output) <= 0:
                raise ValueError(f"{path}: {facts.model} has a non-positive price")
        source = data["source"]
        return cls(models=models, source=tuple(source["documents"]), retrieved=source["retrieved"])

    def facts(self, model: str) -> ModelFacts:
        try:
            return self.models[model]
        except KeyError:
            priced = ", ".join(sorted(self.models))
            raise UnpricedModelError(
                f"model {model!r} has no price in the price table (priced: {priced})"
            ) from None

    def cost(self, model: str, usage: TokenUsage) -> Cost:
        return price(self.facts(model), usage)


def _facts(model: str, row: dict[str, Any]) -> ModelFacts:
    retires = row.pop("retires", None)
    return ModelFacts(model=model, retires=retires, **{k: int(v) for k, v in row.items()})


def price(facts: ModelFacts, usage: TokenUsage) -> Cost:
    """Price ``usage`` with ``facts``; every component is tokens x integer price."""
    written = usage.cache_creation_input_tokens
    write_nanos_5m = usage.cache_write_5m_tokens * facts.cache_write_5m
    write_nanos_1h = usage.cache_write_1h_tokens * facts.cache_write_1h
    read_nanos = usage.cache_read_tokens * facts.cache_read
    return Cost(
        input_nanos=usage.input_tokens * facts.input,
        cache_write_5m_nanos=write_nanos_5m,
        cache_write_1h_nanos=write_nanos_1h,
        cache_read_nanos=read_nanos,
        output_nanos=usage.output_tokens * facts.output,
        cache_savings_nanos=usage.cache_read_tokens * facts.input - read_nanos,
        cache_write_premium_nanos=write_nanos_5m + write_nanos_1h - written * facts.input,
    )
