"""Every road to Claude end to end: real gRPC, the SDK's own client for each provider, the
emulator's road for it; each with its wire shape, model id, credential and exact price."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from harness import BackgroundLoop, Upstream
from tiergate.config import Settings
from tiergate.emulator import Script
from tiergate.emulator.roads import (
    BEDROCK_BASE_IDS,
    PREFIXES,
    VERTEX_IDS,
    VERTEX_STRUCTURED_OUTPUTS,
)
from tiergate.ledger import PriceTable
from tiergate.serving.app import App
from tiergate.upstream.providers import ProviderTable
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

CLASSIFY = pb.ClassifyRequest(
    text="My invoice is wrong.", labels=[pb.Label(name="billing"), pb.Label(name="other")]
)
ANSWER = json.dumps({"label": "billing"})
HAIKU_INPUT, HAIKU_OUTPUT = 1000, 5000  # list nanos per token (models.toml)


@dataclass(frozen=True)
class Case:
    """One road as a deployment would configure it, and what its calls must look like."""

    road: str
    env: dict[str, str]
    wire_model: str
    credential: str
    percent: int
    scope: str = "global"
    settings: dict[str, Any] = field(default_factory=dict)


def cases(url: str) -> list[Case]:
    aws = {"AWS_REGION": "us-east-1", "AWS_BEARER_TOKEN_BEDROCK": "bedrock-key"}
    vertex = {
        "ANTHROPIC_VERTEX_PROJECT_ID": "acme",
        "ANTHROPIC_VERTEX_BASE_URL": url + "/vertex/v1",
    }
    return [
        Case(
            "anthropic",
            {},
            "claude-haiku-4-5",
            "",
            100,
            settings={"anthropic_api_key": "claude-key", "anthropic_base_url": url},
        ),
        Case(
            "bedrock",
            {**aws, "ANTHROPIC_BEDROCK_MANTLE_BASE_URL": url + PREFIXES["bedrock"]},
            "global.anthropic.claude-haiku-4-5-20251001-v1:0",
            "bearer",
            100,
        ),
        Case(
            "bedrock",
            {**aws, "ANTHROPIC_BEDROCK_MANTLE_BASE_URL": url + PREFIXES["bedrock"]},
            "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
            "bearer",
            110,
            scope="eu",
            settings={"bedrock_scope": "eu"},
        ),
        Case(
            "bedrock-invoke",
            {**aws, "ANTHROPIC_BEDROCK_BASE_URL": url + PREFIXES["bedrock-invoke"]},
            "anthropic.claude-haiku-4-5-20251001-v1:0",
            "bearer",
            110,
            scope="regional",
            settings={"bedrock_scope": "regional"},
        ),
        Case(
            "vertex",
            {**vertex, "CLOUD_ML_REGION": "global"},
            "claude-haiku-4-5@20251001",
            "bearer",
            100,
            settings={"vertex_access_token": "vertex-token"},
        ),
        Case(
            "vertex",
            {**vertex, "CLOUD_ML_REGION": "europe-west1"},
            "claude-haiku-4-5@20251001",
            "bearer",
            110,
            scope="regional",
            settings={"vertex_access_token": "vertex-token"},
        ),
        Case(
            "foundry",
            {
                "ANTHROPIC_FOUNDRY_API_KEY": "foundry-key",
                "ANTHROPIC_FOUNDRY_BASE_URL": url + PREFIXES["foundry"],
            },
            "claude-haiku-4-5",
            "api-key",
            100,
        ),
    ]


CASE_IDS = [
    "claude-api",
    "bedrock-global",
    "bedrock-eu",
    "invoke-regional",
    "vertex-global",
    "vertex-eu",
    "foundry",
]


@pytest.fixture(params=range(len(CASE_IDS)), ids=CASE_IDS)
def served(
    request: pytest.FixtureRequest, background: BackgroundLoop, upstream: Upstream
) -> Iterator[tuple[Case, task_service_pb2_grpc.TaskServiceStub]]:
    case = cases(upstream.url)[request.param]
    upstream.reset()
    with pytest.MonkeyPatch.context() as env:
        for name, value in case.env.items():
            env.setenv(name, value)
        settings = Settings(
            host="127.0.0.1", port=0, upstream=case.road, response_cache_ttl_s=0.0, **case.settings
        )
        app = App(settings)
        background.run(app.start())
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield case, task_service_pb2_grpc.TaskServiceStub(channel)
        finally:
            background.run(app.stop(grace=1))


class TestEveryRoad:
    def test_a_call_travels_its_road_and_is_priced_there(
        self, served: tuple[Case, task_service_pb2_grpc.TaskServiceStub], upstream: Upstream
    ) -> None:
        """Classify on Haiku 4.5: the road's wire shape, model id and credential reach its
        endpoint; 1,000 input and 10 output tokens cost the list price at the scope's percent,
        and Usage names the road and its scope."""
        case, stub = served
        upstream.script(Script(text=ANSWER, usage={"input_tokens": 1000, "output_tokens": 10}))
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert reply.label == "billing"
        usage = reply.usage
        assert (usage.provider, usage.endpoint_scope) == (case.road, case.scope)
        assert usage.model == case.wire_model
        expected = (1000 * HAIKU_INPUT + 10 * HAIKU_OUTPUT) * case.percent // 100
        assert usage.cost.total_nanos == expected
        if case.road == "anthropic":
            assert upstream.requests[-1]["model"] == case.wire_model
            return
        sent = upstream.emulator.road_requests[-1]
        assert sent["road"] == case.road
        assert sent["model"] == case.wire_model
        assert sent["credential"] == case.credential
        if case.road in ("bedrock-invoke", "vertex"):
            assert "model" not in sent["body"]
            assert sent["body"]["anthropic_version"] in ("bedrock-2023-05-31", "vertex-2023-10-16")
        else:
            assert sent["body"]["model"] == case.wire_model

    def test_vertex_haiku_is_asked_by_forced_tool_use_and_still_validated(
        self, served: tuple[Case, task_service_pb2_grpc.TaskServiceStub], upstream: Upstream
    ) -> None:
        """Structured outputs are missing for Haiku 4.5 on Vertex: the schema travels as the
        one forced tool; elsewhere as output_config. An answer outside the labels is re-asked
        on every road alike."""
        case, stub = served
        upstream.script(
            Script(text=json.dumps({"label": "nonsense"})),
            Script(text=ANSWER),
        )
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert reply.label == "billing"
        assert reply.usage.billed_calls == 2
        if case.road == "anthropic":
            body = upstream.requests[-1]
        else:
            body = upstream.emulator.road_requests[-1]["body"]
        if case.road == "vertex":
            assert "output_config" not in body
            assert body["tool_choice"] == {"type": "tool", "name": "answer"}
        else:
            assert body["output_config"]["format"]["type"] == "json_schema"
            assert "tool_choice" not in body


class TestStartUp:
    @pytest.mark.parametrize(
        ("road", "env", "missing"),
        [
            ("bedrock", {"AWS_BEARER_TOKEN_BEDROCK": "k"}, "AWS_REGION"),
            ("bedrock-invoke", {"AWS_BEARER_TOKEN_BEDROCK": "k"}, "AWS_REGION"),
            ("vertex", {"ANTHROPIC_VERTEX_PROJECT_ID": "p"}, "CLOUD_ML_REGION"),
            ("vertex", {"CLOUD_ML_REGION": "global"}, "ANTHROPIC_VERTEX_PROJECT_ID"),
            ("foundry", {"ANTHROPIC_FOUNDRY_RESOURCE": "r"}, "ANTHROPIC_FOUNDRY_API_KEY"),
            ("foundry", {"ANTHROPIC_FOUNDRY_API_KEY": "k"}, "ANTHROPIC_FOUNDRY_RESOURCE"),
        ],
    )
    def test_a_listed_road_without_its_variable_refuses_to_start(
        self, road: str, env: dict[str, str], missing: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in (
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_BEARER_TOKEN_BEDROCK",
            "ANTHROPIC_AWS_API_KEY",
            "ANTHROPIC_BEDROCK_MANTLE_BASE_URL",
            "CLOUD_ML_REGION",
            "ANTHROPIC_VERTEX_PROJECT_ID",
            "ANTHROPIC_FOUNDRY_API_KEY",
            "ANTHROPIC_FOUNDRY_RESOURCE",
            "ANTHROPIC_FOUNDRY_BASE_URL",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=missing) as refused:
            App(Settings(upstream=f"anthropic,{road}", anthropic_api_key="k"))
        assert "\n" not in str(refused.value)
        assert str(refused.value).startswith(f"{road}: ")

    def test_the_emulator_stands_alone(self) -> None:
        with pytest.raises(ValueError, match="stands alone"):
            Settings(upstream="emulator,anthropic")

    def test_an_unknown_road_is_refused(self) -> None:
        with pytest.raises(ValueError, match="upstream must list roads"):
            Settings(upstream="anthropic,azure")

    def test_an_unknown_bedrock_scope_is_refused(self) -> None:
        with pytest.raises(ValueError, match="bedrock_scope"):
            Settings(upstream="bedrock", bedrock_scope="mars")

    def test_batches_need_the_claude_api(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
    ) -> None:
        monkeypatch.setenv("ANTHROPIC_FOUNDRY_API_KEY", "k")
        monkeypatch.setenv("ANTHROPIC_FOUNDRY_RESOURCE", "r")
        with pytest.raises(ValueError, match="batches run on the Claude API only"):
            App(Settings(upstream="foundry", batch_dir=str(tmp_path)))


class TestProviderTable:
    def test_the_service_and_the_emulator_agree_on_every_id(self) -> None:
        """models.toml's ids per provider are the ones the emulator's roads accept."""
        table = ProviderTable.load()
        assert dict(table.providers["bedrock"].ids) == dict(BEDROCK_BASE_IDS)
        assert dict(table.providers["vertex"].ids) == dict(VERTEX_IDS)
        assert table.providers["vertex"].structured_outputs == VERTEX_STRUCTURED_OUTPUTS

    def test_every_priced_model_costs_exact_nanos_on_every_road_and_scope(self) -> None:
        """Each price times each scope's percent is a whole number of nanos; regional costs
        110% of global for every current model on Bedrock and Vertex."""
        table, prices = ProviderTable.load(), PriceTable.load()
        for road in ("bedrock", "bedrock-invoke", "vertex", "foundry"):
            provider = table.provider(road)
            for model in provider.ids:
                listed = prices.facts(model)
                for scope in provider.scopes:
                    facts = table.facts(road, scope, listed)
                    percent = 100 if scope == "global" else 110
                    assert facts.input * 100 == listed.input * percent
                    assert facts.output * 100 == listed.output * percent
                    assert facts.us_inference_percent == 100

    def test_bedrock_profiles_prefix_the_base_id(self) -> None:
        table = ProviderTable.load()
        assert (
            table.wire_id("bedrock", "us", "claude-sonnet-4-6") == "us.anthropic.claude-sonnet-4-6"
        )
        assert table.wire_id("bedrock-invoke", "regional", "claude-opus-4-6") == (
            "anthropic.claude-opus-4-6-v1"
        )

    def test_batches_only_on_the_claude_api(self) -> None:
        table = ProviderTable.load()
        assert [name for name, p in table.providers.items() if p.batches] == ["anthropic"]
