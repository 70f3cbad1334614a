"""The cost ledger: token usage -> exact cost in integer nano-dollars.

One price table (``models.toml`` beside this module, with its source and date) prices every
model the service may call. Every price is a whole number of nano-dollars per token, and so is
every price times a model's US-inference percent, so the ledger never touches floating point.
Each billed call is priced in the inference geo its response reports; a sum of calls keeps its
tokens apart per geo, so calls from different geos still add up exactly::

    >>> table = PriceTable.load()
    >>> usage = TokenUsage(input_tokens=800, output_tokens=50)
    >>> table.cost("claude-haiku-4-5", usage).total_nanos
    1050000
    >>> us = TokenUsage(input_tokens=800, output_tokens=50, inference_geo="us")
    >>> table.cost("claude-sonnet-4-6", us).total_nanos
    3465000
"""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tiergate.tiers import Tier
from tiergate.v1 import usage_pb2

DEFAULT_TABLE = Path(__file__).with_name("models.toml")

US_GEO = "us"
"""The ``usage.inference_geo`` that costs a model's ``us_inference_percent``."""
BATCH_PERCENT = 50
"""Every category's price in percent for calls billed through the Message Batches API."""


class UnpricedModelError(LookupError):
    """A model has no row in the price table; the service refuses to run it."""


class RetiredModelError(LookupError):
    """A configured model has passed its retirement date; the service refuses to run it."""


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
    retires: datetime.date | None = None
    """The day the model stops answering, when announced."""
    tokenizer_percent: int = 100
    """Tokens this model's tokenizer makes of a text, in percent of the 4.6 models' count."""

    def geo_percent(self, inference_geo: str) -> int:
        """Every price's percent for calls served in ``inference_geo``."""
        return self.us_inference_percent if inference_geo == US_GEO else 100


_COUNTS = (
    "input_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "output_tokens",
)


@dataclass(frozen=True)
class TokenUsage:
    """Billed tokens of one or more model calls, by billing category and inference geo."""

    input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    inference_geo: str = ""
    """Where the tokens were processed, as the response's ``usage.inference_geo`` says (``us``,
    ``global``; empty when not reported). A sum of calls served in several geos names each,
    comma-separated, in call order."""
    by_geo: tuple[TokenUsage, ...] = ()
    """For a sum over several geos: the tokens of each geo, one part per geo, in call order."""

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt, however it was billed."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_tokens

    def geo_parts(self) -> tuple[TokenUsage, ...]:
        """The tokens per geo: each part is priced with its own geo's percent."""
        if self.by_geo:
            return self.by_geo
        return () if self._empty() else (self,)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        parts: dict[str, TokenUsage] = {}
        for part in (*self.geo_parts(), *other.geo_parts()):
            seen = parts.get(part.inference_geo)
            parts[part.inference_geo] = part if seen is None else _sum_counts(seen, part)
        totals = {name: getattr(self, name) + getattr(other, name) for name in _COUNTS}
        if len(parts) <= 1:
            geo = next(iter(parts), "")
            return TokenUsage(**totals, inference_geo=geo)
        named = ",".join(geo for geo in parts if geo)
        return TokenUsage(**totals, inference_geo=named, by_geo=tuple(parts.values()))

    def _empty(self) -> bool:
        return not self.inference_geo and not any(getattr(self, name) for name in _COUNTS)


def _sum_counts(a: TokenUsage, b: TokenUsage) -> TokenUsage:
    return replace(a, **{name: getattr(a, name) + getattr(b, name) for name in _COUNTS})


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

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


NO_COST = Cost(0, 0, 0, 0, 0, 0, 0)


def dollars(nanos: int) -> str:
    """Exact dollars from nano-dollars, signed: 557000 -> '$0.000557', -557000 -> '-$0.000557'.

    >>> dollars(1_050_000), dollars(25_000_000_000), dollars(-557_000)
    ('$0.00105', '$25.00', '-$0.000557')
    """
    if nanos < 0:
        return f"-{dollars(-nanos)}"
    whole, frac = divmod(nanos, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")
    return f"${whole}.{digits.ljust(2, '0')}"


@dataclass(frozen=True)
class Bill:
    """The ledger's record of one RPC (or one offline task run): what its model calls billed,
    priced once. The response's ``Usage``, the log line and the metrics all read it."""

    model: str
    """The model as the responses name it."""
    tier: Tier | None
    """None for a sum over several tiers (a batch mixing tasks)."""
    tokens: TokenUsage
    cost: Cost
    billed_calls: int
    attempts: int
    request_id: str
    service_tier: str = ""
    """``batch`` when billed through the Message Batches API (at half price), else empty."""
    from_cache: bool = False
    """Answered from the response cache: no model call, nothing billed."""
    provider: str = ""
    """The road that answered (``anthropic``, ``bedrock``, ``bedrock-invoke``, ``vertex``,
    ``foundry``); empty when no model call was made."""
    provider_name: str = ""
    """Its ``gen_ai.provider.name`` (``anthropic``, ``aws.bedrock``, ``gcp.vertex_ai``,
    ``azure.ai.inference``)."""
    endpoint_scope: str = ""
    """That road's endpoint scope (``global``, a geography, ``regional``), which set its price."""

    def usage(self) -> usage_pb2.Usage:
        """The contract's ``Usage`` message of this bill."""
        tokens, cost = self.tokens, self.cost
        return usage_pb2.Usage(
            model=self.model,
            tier=self.tier.value if self.tier is not None else usage_pb2.TIER_UNSPECIFIED,
            input_tokens=tokens.input_tokens,
            cache_creation_input_tokens=tokens.cache_creation_input_tokens,
            cache_read_input_tokens=tokens.cache_read_tokens,
            output_tokens=tokens.output_tokens,
            cache_creation_5m_input_tokens=tokens.cache_write_5m_tokens,
            cache_creation_1h_input_tokens=tokens.cache_write_1h_tokens,
            billed_calls=self.billed_calls,
            attempts=self.attempts,
            request_id=self.request_id,
            inference_geo=tokens.inference_geo,
            service_tier=self.service_tier,
            from_cache=self.from_cache,
            provider=self.provider,
            endpoint_scope=self.endpoint_scope,
            cost=usage_pb2.Cost(
                input_nanos=cost.input_nanos,
                cache_write_nanos=cost.cache_write_nanos,
                cache_write_5m_nanos=cost.cache_write_5m_nanos,
                cache_write_1h_nanos=cost.cache_write_1h_nanos,
                cache_read_nanos=cost.cache_read_nanos,
                output_nanos=cost.output_nanos,
                total_nanos=cost.total_nanos,
                cache_savings_nanos=cost.cache_savings_nanos,
                cache_write_premium_nanos=cost.cache_write_premium_nanos,
            ),
        )


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
            prices = (*_prices(facts), facts.output)
            if min(prices) <= 0:
                raise ValueError(f"{path}: {facts.model} has a non-positive price")
            if facts.us_inference_percent < 100 or facts.tokenizer_percent < 100:
                raise ValueError(f"{path}: {facts.model} has a percent below 100")
            # Exact to the nano: every price in every geo must stay a whole number of nanos.
            if any(p * facts.us_inference_percent % 100 for p in prices):
                raise ValueError(
                    f"{path}: {facts.model}'s us_inference_percent makes a fractional price"
                )
            # Batches bill half of every price: that must stay a whole number of nanos too.
            if any(p * BATCH_PERCENT % 100 for p in prices):
                raise ValueError(f"{path}: {facts.model}'s batch price is a fractional nano")
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

    def cost(self, model: str, usage: TokenUsage, *, batch: bool = False) -> Cost:
        """What ``usage`` costs on ``model``; ``batch``: at the Message Batches price."""
        return price(self.facts(model), usage, batch=batch)

    def retirements(
        self, models: Iterable[str], *, today: datetime.date | None = None
    ) -> list[ModelFacts]:
        """The configured models with an announced retirement date, each once.

        Raises :class:`RetiredModelError` when one has retired by ``today`` (default: today in
        UTC); a model answers no more from its retirement day on.
        """
        today = today or datetime.datetime.now(datetime.UTC).date()
        retiring = {f.model: f for f in map(self.facts, models) if f.retires is not None}
        for facts in retiring.values():
            assert facts.retires is not None
            if today >= facts.retires:
                raise RetiredModelError(
                    f"model {facts.model!r} retired on {facts.retires.isoformat()};"
                    " configure a current model for its tier"
                )
        return list(retiring.values())


def _facts(model: str, row: dict[str, Any]) -> ModelFacts:
    retires = row.pop("retires", None)
    if retires is not None:
        # TOML reads an unquoted date as a date and a quoted one as a string: take both.
        retires = datetime.date.fromisoformat(str(retires))
    return ModelFacts(model=model, retires=retires, **{k: int(v) for k, v in row.items()})


def _prices(facts: ModelFacts) -> tuple[int, int, int, int]:
    return facts.input, facts.cache_write_5m, facts.cache_write_1h, facts.cache_read


def price(facts: ModelFacts, usage: TokenUsage, *, batch: bool) -> Cost:
    """Price ``usage`` with ``facts``: per geo, every component is tokens x integer price;
    ``batch`` bills every category at :data:`BATCH_PERCENT`."""
    return sum((_price_one_geo(facts, part, batch) for part in usage.geo_parts()), NO_COST)


def _price_one_geo(facts: ModelFacts, usage: TokenUsage, batch: bool) -> Cost:
    percent = facts.geo_percent(usage.inference_geo) * (BATCH_PERCENT if batch else 100)

    def total(tokens: int, nanos: int) -> int:
        # Exact wherever the table allows it (checked at load). The one exception is a batch
        # call in the US geo whose US price is odd (Sonnet 4.6's 5-minute write, 4,125 nanos):
        # its half is floored per category and call, less than one nano.
        return tokens * nanos * percent // 10_000

    written = usage.cache_creation_input_tokens
    write_nanos_5m = total(usage.cache_write_5m_tokens, facts.cache_write_5m)
    write_nanos_1h = total(usage.cache_write_1h_tokens, facts.cache_write_1h)
    read_nanos = total(usage.cache_read_tokens, facts.cache_read)
    return Cost(
        input_nanos=total(usage.input_tokens, facts.input),
        cache_write_5m_nanos=write_nanos_5m,
        cache_write_1h_nanos=write_nanos_1h,
        cache_read_nanos=read_nanos,
        output_nanos=total(usage.output_tokens, facts.output),
        cache_savings_nanos=total(usage.cache_read_tokens, facts.input) - read_nanos,
        cache_write_premium_nanos=write_nanos_5m + write_nanos_1h - total(written, facts.input),
    )
