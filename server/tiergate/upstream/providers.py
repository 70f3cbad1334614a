"""The providers' table: each model's id on each road, the price of each endpoint scope and the
features a provider lacks, read from the ``[providers.*]`` part of ``models.toml``.

A road is how tiergate reaches a provider (``bedrock`` and ``bedrock-invoke`` are two roads to
Amazon Bedrock); its facts for a model are the Claude API's facts with the road's prices::

    >>> table = ProviderTable.load()
    >>> prices = PriceTable.load()
    >>> on_road = table.facts("vertex", "regional", prices.facts("claude-haiku-4-5"))
    >>> on_road.input, on_road.output
    (1100, 5500)
    >>> table.wire_id("bedrock", "global", "claude-haiku-4-5")
    'global.anthropic.claude-haiku-4-5-20251001-v1:0'
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tiergate.ledger import DEFAULT_TABLE, ModelFacts, PriceTable

RoadName = Literal["anthropic", "bedrock", "bedrock-invoke", "vertex", "foundry"]
ROADS: tuple[RoadName, ...] = ("anthropic", "bedrock", "bedrock-invoke", "vertex", "foundry")
PROVIDER_OF: Mapping[RoadName, str] = {
    "anthropic": "anthropic",
    "bedrock": "bedrock",
    "bedrock-invoke": "bedrock",
    "vertex": "vertex",
    "foundry": "foundry",
}
"""The provider (a ``[providers.*]`` table) each road leads to."""
OTEL_PROVIDER: Mapping[str, str] = {
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "foundry": "azure.ai.inference",
}
"""``gen_ai.provider.name`` per provider (OpenTelemetry GenAI semantic conventions)."""
GLOBAL = "global"


class UnservedModelError(LookupError):
    """A road's provider has no id for a configured model; the service refuses to start."""


@dataclass(frozen=True)
class Provider:
    """One provider's row of the table."""

    name: str
    scopes: tuple[str, ...]
    """Endpoint scopes it offers: ``global``, a geography, or ``regional``."""
    ids: Mapping[str, str]
    """Model -> its id on this provider (empty: the Claude API's own names)."""
    regional_percent: Mapping[str, int]
    """Model -> every category's price in percent on a non-global scope."""
    structured_outputs: frozenset[str] | None
    """Models with ``output_config.format`` here; None: every model."""
    image_sources: tuple[str, ...]
    batches: bool
    """Whether the Message Batches API exists here."""

    @property
    def otel_name(self) -> str:
        """``gen_ai.provider.name`` of the OpenTelemetry GenAI semantic conventions."""
        return OTEL_PROVIDER[self.name]

    def has_structured_outputs(self, model: str) -> bool:
        return self.structured_outputs is None or model in self.structured_outputs


@dataclass(frozen=True)
class ProviderTable:
    """Every provider tiergate can reach, loaded from the price table's file."""

    providers: Mapping[str, Provider]

    @classmethod
    def load(cls, path: Path = DEFAULT_TABLE) -> ProviderTable:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        providers = {name: _provider(name, row) for name, row in data["providers"].items()}
        for provider in providers.values():
            for model, percent in provider.regional_percent.items():
                if percent < 100:
                    raise ValueError(f"{path}: {provider.name} {model} regional_percent < 100")
        return cls(providers)

    def provider(self, road: RoadName) -> Provider:
        return self.providers[PROVIDER_OF[road]]

    def wire_id(self, road: RoadName, scope: str, model: str) -> str:
        """``model``'s id on ``road`` at ``scope`` (a Bedrock profile prefixes the base id)."""
        provider = self.provider(road)
        if not provider.ids:
            return model
        try:
            base = provider.ids[model]
        except KeyError:
            raise UnservedModelError(
                f"model {model!r} has no id on {road} (served there: "
                f"{', '.join(sorted(provider.ids))})"
            ) from None
        if provider.name == "bedrock" and scope != "regional":
            return f"{scope}.{base}"
        return base

    def percent(self, road: RoadName, scope: str, model: str) -> int:
        """Every category's price in percent of the list price on ``road`` at ``scope``."""
        if scope == GLOBAL:
            return 100
        return self.provider(road).regional_percent.get(model, 100)

    def facts(self, road: RoadName, scope: str, listed: ModelFacts) -> ModelFacts:
        """``listed`` (the Claude API's facts) as billed on ``road`` at ``scope``: each price at
        the scope's percent. On a cloud the Claude API's US-inference premium does not apply
        (no ``inference_geo`` there); the scope's percent takes its place."""
        if road == "anthropic":
            return listed
        self.wire_id(road, scope, listed.model)  # refuses a model the provider does not serve
        percent = self.percent(road, scope, listed.model)

        def scaled(nanos: int) -> int:
            return _scaled(nanos, percent, listed.model)

        return replace(
            listed,
            input=scaled(listed.input),
            cache_write_5m=scaled(listed.cache_write_5m),
            cache_write_1h=scaled(listed.cache_write_1h),
            cache_read=scaled(listed.cache_read),
            output=scaled(listed.output),
            us_inference_percent=100,
        )


def otel_name(road: str) -> str:
    """``gen_ai.provider.name`` of the provider ``road`` leads to."""
    return OTEL_PROVIDER[PROVIDER_OF[road]]  # type: ignore[index]


def _scaled(nanos: int, percent: int, model: str) -> int:
    if nanos * percent % 100:
        raise ValueError(f"{model}: a price at {percent}% is a fractional nano")
    return nanos * percent // 100


def _provider(name: str, row: dict[str, Any]) -> Provider:
    models: dict[str, dict[str, Any]] = row.get("models", {})
    structured = row["structured_outputs"]
    return Provider(
        name=name,
        scopes=tuple(row["scopes"]),
        ids={model: entry["id"] for model, entry in models.items()},
        regional_percent={model: int(entry["regional_percent"]) for model, entry in models.items()},
        structured_outputs=None if structured == "all" else frozenset(structured),
        image_sources=tuple(row["image_sources"]),
        batches=bool(row["batches"]),
    )


def check_served(
    table: ProviderTable, prices: PriceTable, roads: list[tuple[RoadName, str]], models: list[str]
) -> None:
    """Refuse a configuration whose roads cannot serve and price every configured model."""
    for road, scope in roads:
        provider = table.provider(road)
        if scope not in provider.scopes:
            raise ValueError(
                f"{road} has no endpoint scope {scope!r} (it offers {', '.join(provider.scopes)})"
            )
        for model in models:
            table.facts(road, scope, prices.facts(model))
