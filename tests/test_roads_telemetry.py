"""Telemetry names the road: each model-call span carries its provider's
``gen_ai.provider.name`` and is priced at that road; the cost metric and the breaker gauge are
labelled by provider and road."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from harness import BackgroundLoop, Upstream, eventually, metric_points
from tiergate.config import Settings
from tiergate.emulator import Fault, Script
from tiergate.emulator.roads import PREFIXES
from tiergate.serving.app import App
from tiergate.telemetry import Telemetry
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

CLASSIFY = pb.ClassifyRequest(
    text="My invoice is wrong.", labels=[pb.Label(name="billing"), pb.Label(name="other")]
)
PROVIDER = "gen_ai.provider.name"
USAGE: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 10}


Traced = tuple[task_service_pb2_grpc.TaskServiceStub, InMemorySpanExporter, InMemoryMetricReader]


@pytest.fixture
def traced(background: BackgroundLoop, upstream: Upstream) -> Iterator[Traced]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    url = upstream.url
    upstream.reset()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLOUD_ML_REGION", "europe-west1")
        env.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "acme")
        env.setenv("ANTHROPIC_VERTEX_BASE_URL", url + PREFIXES["vertex"])
        env.setenv("AWS_REGION", "us-east-1")
        env.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-key")
        env.setenv("ANTHROPIC_BEDROCK_MANTLE_BASE_URL", url + PREFIXES["bedrock"])
        settings = Settings(
            host="127.0.0.1",
            port=0,
            upstream="vertex,bedrock",
            vertex_access_token="vertex-token",
            response_cache_ttl_s=0.0,
        )
        app = App(settings, telemetry=telemetry)
        background.run(app.start())
    try:
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield task_service_pb2_grpc.TaskServiceStub(channel), spans, reader
    finally:
        background.run(app.stop(grace=1))
        upstream.reset()


class TestRoadTelemetry:
    def test_each_attempt_names_its_provider_and_costs_its_roads_price(
        self,
        traced: Traced,
        upstream: Upstream,
    ) -> None:
        """Vertex (regional) answers 529, Bedrock (global) answers: two CLIENT spans, the first
        ``gcp.vertex_ai`` and failed, the second ``aws.bedrock`` costing the list price."""
        stub, spans, reader = traced

        async def inject() -> None:
            upstream.emulator.inject(Fault("overloaded"), road="vertex")

        upstream._loop.run(inject())
        upstream.script(Script(text=json.dumps({"label": "billing"}), usage=USAGE))
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert reply.usage.provider == "bedrock"

        def client_spans() -> list[ReadableSpan] | None:
            found = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
            return found if len(found) >= 2 else None

        first, second = eventually(client_spans, "two CLIENT spans")
        assert first.attributes is not None
        assert second.attributes is not None
        assert first.attributes[PROVIDER] == "gcp.vertex_ai"
        assert first.attributes["tiergate.endpoint_scope"] == "regional"
        assert first.attributes["error.type"]
        assert second.attributes[PROVIDER] == "aws.bedrock"
        assert second.attributes["tiergate.road"] == "bedrock"
        assert second.attributes["tiergate.cost_nanos"] == 1000 * 1000 + 10 * 5000
        # The cost is recorded once the reply is on its way: wait for it, not for luck.
        cost = eventually(lambda: metric_points(reader, "tiergate.cost") or None, "the cost")
        assert {p.attributes.get(PROVIDER) for p in cost} == {"aws.bedrock"}
        gauge = metric_points(reader, "tiergate.upstream.breaker_state")
        assert {p.attributes["road"] for p in gauge} == {"vertex", "bedrock"}
