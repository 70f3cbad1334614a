"""The provider clients: one SDK client per configured road, each set up by its SDK's own
environment variables, behind one model client.

``TIERGATE_UPSTREAM=bedrock,anthropic`` gives two roads, tried in that order. Each road speaks
its provider's shape: the model under the provider's id (a Bedrock inference profile, a Vertex
``@date`` id, a Foundry deployment), the documented ``anthropic_version`` in the body where the
URL carries the model (InvokeModel, Vertex), and forced tool use where the provider lacks
structured outputs for the model. Prompts, schemas, validation and re-asks stay the model
client's, so the typed contract is the same on every road::

    roads = build_roads(settings, os.environ, table=ProviderTable.load())
    roads[0].name, roads[0].scope, roads[0].client  # a ModelClient on its provider's SDK client

The failover between them is :mod:`.failover`'s.

A listed road missing what it needs refuses start-up with one line naming the variable.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import anthropic
import httpx2
from anthropic._models import FinalRequestOptions

from tiergate import errors
from tiergate.config import Settings
from tiergate.ledger import ModelFacts, PriceTable
from tiergate.telemetry import Telemetry
from tiergate.telemetry.spans import RoadLabel
from tiergate.tiers import Tier
from tiergate.upstream.breakers import Breaker, Observer
from tiergate.upstream.model_client import ModelClient
from tiergate.upstream.output import ANSWER_TOOL
from tiergate.upstream.providers import GLOBAL, Provider, ProviderTable, RoadName, check_served
from tiergate.upstream.retry_budget import RetryBudget
from tiergate.upstream.transport import ResponseHook, upstream_http_client

BEDROCK_INVOKE_VERSION = "bedrock-2023-05-31"
"""InvokeModel's documented body version; the SDK's own default (its API version) is refused by
the ARN-versioned models."""
VERTEX_VERSION = "vertex-2023-10-16"
"""Vertex AI's documented body version."""
_REGION = ("AWS_REGION", "AWS_DEFAULT_REGION")
_BEDROCK_KEYS = ("AWS_BEARER_TOKEN_BEDROCK", "ANTHROPIC_AWS_API_KEY")


class RoadConfigError(ValueError):
    """A listed road lacks a variable it needs; the message is the one line start-up prints."""


@dataclass(frozen=True)
class Road:
    """One configured road: its provider's facts, endpoint scope and model client."""

    name: RoadName
    scope: str
    provider: Provider
    client: ModelClient
    table: ProviderTable
    breaker: Breaker

    def label(self, facts: ModelFacts) -> RoadLabel:
        return RoadLabel(self.name, self.provider.otel_name, self.scope, facts)

    def verdict(self, err: errors.TiergateError) -> None:
        """A failure that stays on this road still says whether the road is up."""
        if isinstance(err, errors.DeadlineExceeded):
            self.breaker.released()  # the caller ran out of time: no word on the road
        else:
            self.breaker.succeeded()  # it answered: the request, not the road, was at fault


def scope_of(road: RoadName, settings: Settings, environ: Mapping[str, str]) -> str:
    """The endpoint scope a road's configuration chose."""
    if road in ("bedrock", "bedrock-invoke"):
        return settings.bedrock_scope
    if road == "vertex":
        return GLOBAL if environ.get("CLOUD_ML_REGION") == GLOBAL else "regional"
    return GLOBAL


def check_road(road: RoadName, settings: Settings, environ: Mapping[str, str]) -> None:
    """Raise :class:`RoadConfigError` naming the first variable ``road`` lacks."""

    def missing(*names: str) -> bool:
        return not any(environ.get(name, "").strip() for name in names)

    if road == "anthropic":
        if not (settings.anthropic_api_key or "").strip():
            raise RoadConfigError("anthropic: ANTHROPIC_API_KEY is missing or empty")
    elif road in ("bedrock", "bedrock-invoke"):
        base_url = "ANTHROPIC_BEDROCK_MANTLE_BASE_URL" if road == "bedrock" else None
        if missing(*_REGION) and (base_url is None or missing(base_url)):
            raise RoadConfigError(f"{road}: AWS_REGION is missing (or AWS_DEFAULT_REGION)")
        if missing(*_BEDROCK_KEYS) and importlib.util.find_spec("botocore") is None:
            raise RoadConfigError(
                f"{road}: AWS_BEARER_TOKEN_BEDROCK is missing, and SigV4 signing with the AWS"
                " credential chain needs the bedrock extra (pip install 'tiergate[bedrock]')"
            )
    elif road == "vertex":
        if missing("CLOUD_ML_REGION"):
            raise RoadConfigError("vertex: CLOUD_ML_REGION is missing")
        if missing("ANTHROPIC_VERTEX_PROJECT_ID"):
            raise RoadConfigError("vertex: ANTHROPIC_VERTEX_PROJECT_ID is missing")
        token = settings.vertex_access_token
        if not token and importlib.util.find_spec("google.auth") is None:
            raise RoadConfigError(
                "vertex: TIERGATE_VERTEX_ACCESS_TOKEN is missing, and application default"
                " credentials need the vertex extra (pip install 'tiergate[vertex]')"
            )
    elif road == "foundry":
        if missing("ANTHROPIC_FOUNDRY_API_KEY"):
            raise RoadConfigError("foundry: ANTHROPIC_FOUNDRY_API_KEY is missing")
        if missing("ANTHROPIC_FOUNDRY_RESOURCE", "ANTHROPIC_FOUNDRY_BASE_URL"):
            raise RoadConfigError(
                "foundry: ANTHROPIC_FOUNDRY_RESOURCE is missing (or ANTHROPIC_FOUNDRY_BASE_URL)"
            )


def check_roads(
    settings: Settings, environ: Mapping[str, str], table: ProviderTable, prices: PriceTable
) -> None:
    """Fail closed on the listed roads: each has its variables, serves and prices every tier's
    model at its scope; batches need the Claude API among them."""
    for road in settings.roads:
        check_road(road, settings, environ)  # type: ignore[arg-type]  # Settings checked the names
    roads = [(road, scope_of(road, settings, environ)) for road in settings.roads]  # type: ignore[arg-type]
    check_served(table, prices, roads, [settings.model_for(tier) for tier in Tier])  # type: ignore[arg-type]
    batches_on = bool(settings.batch_dir or settings.batch_redis_url)
    if batches_on and "anthropic" not in settings.roads:
        raise ValueError(
            "batches run on the Claude API only (the Message Batches API): add anthropic to"
            " TIERGATE_UPSTREAM, or unset TIERGATE_BATCH_DIR and TIERGATE_BATCH_REDIS_URL"
        )


def build_roads(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    table: ProviderTable,
    telemetry: Telemetry | None = None,
    anthropic_base_url: str | None = None,
    anthropic_api_key: str | None = None,
    on_response: ResponseHook | None = None,
    observer: Observer | None = None,
    retry_budgets: Mapping[str, RetryBudget] | None = None,
) -> list[Road]:
    """The configured roads in order, each checked and with its SDK client; the Claude API's
    key and base URL may be given (the embedded emulator's). ``retry_budgets``: each road's
    budget by name, shared with the metrics (a road without one gets its own)."""
    roads: list[Road] = []
    for name in settings.roads:
        road: RoadName = name  # type: ignore[assignment]  # Settings checked the names
        if anthropic_api_key is None or road != "anthropic":
            check_road(road, settings, environ)
        scope = scope_of(road, settings, environ)
        provider = table.provider(road)
        sdk = _sdk_client(
            road,
            settings,
            environ,
            table,
            scope,
            anthropic_base_url=anthropic_base_url,
            anthropic_api_key=anthropic_api_key,
            on_response=on_response if road == "anthropic" else None,
        )
        # With several roads, a failing attempt moves on to the next road at once instead of
        # retrying here; the road client runs the rounds.
        own = settings.replace(max_attempts=1) if len(settings.roads) > 1 else settings
        budget = (retry_budgets or {}).get(road)
        client = ModelClient(sdk, own, telemetry, retry_budget=budget)
        breaker = Breaker(
            road,
            failures=settings.breaker_failures,
            cooldown_s=settings.breaker_cooldown_s,
            observer=observer,
        )
        roads.append(Road(road, scope, provider, client, table, breaker))
    return roads


def _sdk_client(
    road: RoadName,
    settings: Settings,
    environ: Mapping[str, str],
    table: ProviderTable,
    scope: str,
    *,
    anthropic_base_url: str | None,
    anthropic_api_key: str | None,
    on_response: ResponseHook | None,
) -> anthropic.AsyncAnthropic:
    common: dict[str, Any] = {
        # Our CLIENT span per attempt stands in for the SDK's own (as on the Claude API road).
        "open_telemetry": {"traces": False, "propagation": False},
        "http_client": upstream_http_client(settings, on_response),
    }
    if road == "anthropic":
        return anthropic.AsyncAnthropic(
            api_key=anthropic_api_key or settings.anthropic_api_key,
            base_url=anthropic_base_url or settings.anthropic_base_url,
            **common,
        )
    shape = _Shape(road, table, scope, _deployments(settings.foundry_deployments))
    if road == "vertex":
        common["access_token"] = settings.vertex_access_token or None
    # The clouds' clients are no AsyncAnthropic, but speak the same ``messages`` interface.
    return cast(anthropic.AsyncAnthropic, _shaped(_SDK_CLIENTS[road], shape)(**common))


_SDK_CLIENTS: Mapping[RoadName, type[Any]] = {
    "bedrock": anthropic.AsyncAnthropicBedrockMantle,
    "bedrock-invoke": anthropic.AsyncAnthropicBedrock,
    "vertex": anthropic.AsyncAnthropicVertex,
    "foundry": anthropic.AsyncAnthropicFoundry,
}


def _deployments(raw: str) -> dict[str, str]:
    pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise RoadConfigError(
            f"foundry: TIERGATE_FOUNDRY_DEPLOYMENTS={raw!r} is not model=deployment,..."
        )
    return {model.strip(): deployment.strip() for model, deployment in pairs}


@dataclass(frozen=True)
class _Shape:
    """How one road rewrites a Messages API body before its SDK client sends it."""

    road: RoadName
    table: ProviderTable
    scope: str
    deployments: Mapping[str, str]

    def apply(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if not isinstance(model, str):
            return
        provider = self.table.provider(self.road)
        if not provider.has_structured_outputs(model):
            forced_tool_use(body)
        if self.road == "foundry":
            body["model"] = self.deployments.get(
                model, self.table.wire_id("foundry", GLOBAL, model)
            )
        else:
            body["model"] = self.table.wire_id(self.road, self.scope, model)
        if self.road == "bedrock-invoke":
            body.setdefault("anthropic_version", BEDROCK_INVOKE_VERSION)
        elif self.road == "vertex":
            body.setdefault("anthropic_version", VERTEX_VERSION)


def forced_tool_use(body: dict[str, Any]) -> None:
    """Ask for the output schema by forced tool use instead of structured outputs (the
    documented alternative where a provider lacks them): one tool whose input is the answer.
    The model client reads that tool's input as the answer and validates it as ever."""
    output_config = body.get("output_config")
    if not isinstance(output_config, dict) or output_config.get("format") is None:
        return
    schema = output_config["format"]["schema"]
    rest = {key: value for key, value in output_config.items() if key != "format"}
    if rest:
        body["output_config"] = rest
    else:
        del body["output_config"]
    tool = {
        "name": ANSWER_TOOL,
        "description": "Give the answer: its input is the whole answer, following the schema.",
        "input_schema": schema,
    }
    body["tools"] = [*body.get("tools", []), tool]
    body["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}


def _shaped(base: type[Any], shape: _Shape) -> type[Any]:
    """A subclass of the SDK client ``base`` that shapes every request body for its road, and
    reports a cloud credential that cannot be had as the SDK's ``CredentialsError``."""

    async def _prepare_options(self: Any, options: FinalRequestOptions) -> FinalRequestOptions:
        if isinstance(options.json_data, dict) and options.url.startswith("/v1/messages"):
            shape.apply(options.json_data)
        prepared: FinalRequestOptions = await base._prepare_options(self, options)
        return prepared

    async def _prepare_request(self: Any, request: httpx2.Request) -> None:
        # Where the SDK signs (SigV4) or fetches a Google access token.
        try:
            await base._prepare_request(self, request)
        except Exception as exc:
            if not _credential_failure(exc):
                raise
            raise anthropic.CredentialsError(f"{shape.road}: {exc}") from exc

    return type(
        f"{shape.road.title().replace('-', '')}Client",
        (base,),
        {"_prepare_options": _prepare_options, "_prepare_request": _prepare_request},
    )


def _credential_failure(exc: Exception) -> bool:
    """An error of the clouds' credential libraries (google-auth: no ADC, a refused grant;
    botocore: no credentials, STS refusing the web identity), or the SDK's own "Could not
    resolve AWS credentials"; matched by module, so neither library need be installed."""
    if isinstance(exc, RuntimeError) and "credentials" in str(exc):
        return True
    return any(c.__module__.startswith(("google.auth.", "botocore.")) for c in type(exc).__mro__)
