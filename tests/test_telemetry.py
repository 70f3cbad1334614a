"""Traces, metrics and log correlation of real RPCs, recorded by in-memory exporters.

Each test starts a tiergate server on loopback with its own :class:`Telemetry`, calls it over
real gRPC, and reads what the real OpenTelemetry SDK recorded.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from harness import BackgroundLoop, Upstream, eventually, metric_points
from samples import CLASSIFY, REASON
from tiergate import logs
from tiergate.client import health_check
from tiergate.config import Settings
from tiergate.emulator import Fault
from tiergate.serving.app import App
from tiergate.telemetry import Telemetry
from tiergate.telemetry.instruments import DURATION_BUCKETS_S, TOKEN_BUCKETS
from tiergate.v1 import spend_service_pb2, spend_service_pb2_grpc, task_service_pb2_grpc

CALLER = ("x-tiergate-caller", "billing-svc")
SERVER_SPAN = "/tiergate.v1.TaskService/Classify"
REQUEST_TEXT = CLASSIFY.text


@dataclass
class Traced:
    """A server whose spans and metrics land in memory."""

    app: App
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    stub: task_service_pb2_grpc.TaskServiceStub
    channel: grpc.Channel

    def server_spans(self, count: int) -> list[ReadableSpan]:
        def probe() -> list[ReadableSpan] | None:
            found = [s for s in self.spans.get_finished_spans() if s.kind is SpanKind.SERVER]
            return found if len(found) >= count else None

        return eventually(probe, f"{count} SERVER spans")

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return [
            s
            for s in self.spans.get_finished_spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id
        ]

    def points(self, name: str) -> list[Any]:
        return metric_points(self.metrics, name)


def start_traced(
    background: BackgroundLoop,
    upstream: Upstream,
    *,
    capture_content: bool = False,
    **settings: Any,
) -> Traced:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        capture_content=capture_content,
    )
    app = App(
        Settings(host="127.0.0.1", port=0, upstream="emulator", **settings),
        emulator_url=upstream.url,
        telemetry=telemetry,
    )
    background.run(app.start())
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    stub = task_service_pb2_grpc.TaskServiceStub(channel)
    return Traced(app, spans, reader, stub, channel)


@pytest.fixture
def traced(background: BackgroundLoop, upstream: Upstream) -> Iterator[Traced]:
    # Two attempts keep the failure tests short: the second is a retry all the same.
    server = start_traced(background, upstream, max_attempts=2)
    yield server
    server.channel.close()
    background.run(server.app.stop(grace=1))


class TestSuccessfulCallTrace:
    def test_a_server_span_parents_one_client_span_per_model_call(self, traced: Traced) -> None:
        """A Classify yields a SERVER span from the gRPC instrumentation and, under it, one
        CLIENT span named ``chat {model}``, both in the same trace."""
        traced.stub.Classify(CLASSIFY, metadata=(CALLER,))
        [server] = traced.server_spans(1)
        assert server.name == SERVER_SPAN
        assert server.parent is None
        [client] = traced.children(server)
        assert client.name == "chat claude-haiku-4-5"
        assert client.kind is SpanKind.CLIENT
        assert client.context is not None
        assert server.context is not None
        assert client.context.trace_id == server.context.trace_id

    def test_client_span_carries_the_genai_conventions_and_tiergate_attributes(
        self, traced: Traced
    ) -> None:
        """The CLIENT span has the conventions' request, response and usage attributes, and
        tiergate's task, tier, attempt and cost, equal to what the response reports."""
        reply = traced.stub.Classify(CLASSIFY, metadata=(CALLER,))
        [server] = traced.server_spans(1)
        [client] = traced.children(server)
        attributes = dict(client.attributes or {})
        usage = reply.usage
        prompt_tokens = (
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
        )
        assert attributes == {
            **attributes,
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-haiku-4-5",
            "gen_ai.response.model": usage.model,
            "gen_ai.response.finish_reasons": ("end_turn",),
            "gen_ai.usage.input_tokens": prompt_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_input_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
            "tiergate.task": "Classify",
            "tiergate.tier": "fast",
            "tiergate.attempt": 1,
            "tiergate.cost_nanos": usage.cost.total_nanos,
        }
        assert isinstance(attributes["gen_ai.request.max_tokens"], int)
        assert str(attributes["gen_ai.response.id"]).startswith("msg_")
        assert "error.type" not in attributes
        assert client.status.status_code is StatusCode.UNSET

    def test_server_span_carries_the_rpc_totals_and_caller(self, traced: Traced) -> None:
        """The SERVER span is labelled with task, tier, model and caller (an unverified name
        under the one label, the claimed name beside it) and ends with the RPC's billed totals
        and status OK."""
        reply = traced.stub.Classify(CLASSIFY, metadata=(CALLER,))
        [server] = traced.server_spans(1)
        attributes = dict(server.attributes or {})
        assert attributes == {
            **attributes,
            "rpc.system": "grpc",
            "rpc.service": "tiergate.v1.TaskService",
            "rpc.method": "Classify",
            "rpc.grpc.status_code": 0,
            "tiergate.task": "Classify",
            "tiergate.tier": "fast",
            "tiergate.caller": "unverified",
            "tiergate.caller.claimed": "billing-svc",
            "tiergate.attempts": 1,
            "tiergate.billed_calls": 1,
            "tiergate.cost_nanos": reply.usage.cost.total_nanos,
        }
        assert server.status.status_code is not StatusCode.ERROR

    def test_the_server_span_names_the_peer_and_ends_before_the_caller_has_the_answer(
        self, traced: Traced
    ) -> None:
        """The task RPC's own SERVER span records the peer as the gRPC instrumentation does,
        and ends at the instant the answer was ready, before the caller received it (its
        totals are written after the answer is sent)."""
        traced.stub.Classify(CLASSIFY)
        received_ns = time.time_ns()
        [server] = traced.server_spans(1)
        attributes = dict(server.attributes or {})
        assert attributes["net.peer.ip"] == "127.0.0.1"
        assert int(str(attributes["net.peer.port"])) > 0
        assert server.end_time is not None
        assert server.start_time is not None
        assert server.start_time < server.end_time <= received_ns
        assert "tiergate.billed_calls" in attributes

    def test_other_services_keep_the_instrumentation_span(self, traced: Traced) -> None:
        """SpendService is traced by the gRPC instrumentation (one SERVER span per call),
        while a task RPC has exactly one SERVER span, its own."""
        spend = spend_service_pb2_grpc.SpendServiceStub(traced.channel)
        spend.GetSpend(spend_service_pb2.GetSpendRequest())
        traced.stub.Classify(CLASSIFY)
        found = traced.server_spans(2)
        assert sorted(span.name for span in found) == [
            "/tiergate.v1.SpendService/GetSpend",
            SERVER_SPAN,
        ]

    def test_health_checks_are_not_traced(self, traced: Traced) -> None:
        """Probes hit the health service constantly; they make no spans."""
        health = health_check(traced.channel)
        reply = health(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        traced.stub.Classify(CLASSIFY)
        traced.server_spans(1)
        names = {s.name for s in traced.spans.get_finished_spans()}
        assert not any("Health" in name for name in names), names

    def test_an_incoming_trace_context_is_continued(self, traced: Traced) -> None:
        """A caller's W3C ``traceparent`` makes the SERVER span its child."""
        trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        traced.stub.Classify(CLASSIFY, metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),))
        [server] = traced.server_spans(1)
        assert server.context is not None
        assert server.parent is not None
        assert format(server.context.trace_id, "032x") == trace_id
        assert format(server.parent.span_id, "016x") == parent_id


class TestFailedCallTrace:
    def test_each_failed_attempt_is_an_error_span_with_its_type(
        self, traced: Traced, upstream: Upstream
    ) -> None:
        """When every attempt meets a 529, each attempt is its own CLIENT span with
        ``error.type`` and the HTTP status, and the SERVER span ends UNAVAILABLE."""
        upstream.inject(Fault(kind="overloaded", count=2))
        with pytest.raises(grpc.RpcError) as failure:
            traced.stub.Classify(CLASSIFY)
        assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
        [server] = traced.server_spans(1)
        clients = sorted(traced.children(server), key=lambda s: s.start_time or 0)
        assert [dict(s.attributes or {})["tiergate.attempt"] for s in clients] == [1, 2]
        for client in clients:
            attributes = dict(client.attributes or {})
            assert attributes["error.type"] == "OverloadedError"
            assert attributes["http.response.status_code"] == 529
            assert "gen_ai.usage.input_tokens" not in attributes
            assert client.status.status_code is StatusCode.ERROR
        attributes = dict(server.attributes or {})
        assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
        assert attributes["error.type"] == "UNAVAILABLE"
        assert attributes["tiergate.attempts"] == 2
        assert attributes["tiergate.billed_calls"] == 0
        assert server.status.status_code is StatusCode.ERROR

    def test_a_refused_call_still_records_what_it_cost(
        self, traced: Traced, upstream: Upstream
    ) -> None:
        """A refusal is billed: its CLIENT span reports the ``refusal`` finish reason and
        tokens, the SERVER span the failure and the cost."""
        upstream.inject(Fault(kind="refusal"))
        with pytest.raises(grpc.RpcError) as failure:
            traced.stub.Classify(CLASSIFY)
        assert failure.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        [server] = traced.server_spans(1)
        [client] = traced.children(server)
        attributes = dict(client.attributes or {})
        assert attributes["gen_ai.response.finish_reasons"] == ("refusal",)
        assert int(str(attributes["gen_ai.usage.output_tokens"])) > 0
        cost = dict(server.attributes or {})["tiergate.cost_nanos"]
        assert cost == attributes["tiergate.cost_nanos"]
        assert int(str(cost)) > 0
        assert server.status.status_code is StatusCode.ERROR


class TestContentCapture:
    def test_no_prompt_or_output_text_by_default(self, traced: Traced) -> None:
        """Without the content-capture setting no span attribute holds the caller's text."""
        traced.stub.Classify(CLASSIFY)
        traced.server_spans(1)
        text = REQUEST_TEXT
        for span in traced.spans.get_finished_spans():
            for key, value in (span.attributes or {}).items():
                assert not key.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system"))
                assert text not in str(value)

    def test_content_is_captured_when_asked(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """With capture on, the CLIENT span holds the system instructions, the input messages
        (with the request text) and the output, in the conventions' JSON shape."""
        server = start_traced(background, upstream, capture_content=True)
        try:
            server.stub.Classify(CLASSIFY)
            [rpc] = server.server_spans(1)
            [client] = server.children(rpc)
        finally:
            server.channel.close()
            background.run(server.app.stop(grace=1))
        attributes = dict(client.attributes or {})
        inputs = json.loads(str(attributes["gen_ai.input.messages"]))
        assert inputs[0]["role"] == "user"
        assert REQUEST_TEXT in json.dumps(inputs)
        assert json.loads(str(attributes["gen_ai.system_instructions"]))[0]["type"] == "text"
        [output] = json.loads(str(attributes["gen_ai.output.messages"]))
        assert output["role"] == "assistant"
        assert output["finish_reason"] == "end_turn"
        answer = json.loads(output["parts"][0]["content"])
        assert answer["label"] in {"billing", "technical", "account"}


class TestMetrics:
    def test_token_usage_and_duration_follow_the_conventions(self, traced: Traced) -> None:
        """``gen_ai.client.token.usage`` records input and output tokens per call and both
        histograms use the conventions' bucket boundaries."""
        reply = traced.stub.Classify(CLASSIFY)
        traced.server_spans(1)
        usage = reply.usage
        tokens = {
            p.attributes["gen_ai.token.type"]: p for p in traced.points("gen_ai.client.token.usage")
        }
        assert tokens["input"].sum == (
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
        )
        assert tokens["output"].sum == usage.output_tokens
        assert isinstance(tokens["input"], HistogramDataPoint)
        assert tuple(tokens["input"].explicit_bounds) == TOKEN_BUCKETS
        assert dict(tokens["input"].attributes or {})["gen_ai.provider.name"] == "anthropic"
        [duration] = traced.points("gen_ai.client.operation.duration")
        assert tuple(duration.explicit_bounds) == DURATION_BUCKETS_S
        assert duration.count == 1
        assert duration.attributes["gen_ai.request.model"] == "claude-haiku-4-5"

    def test_cost_is_counted_in_dollars_by_task_tier_model_and_caller(self, traced: Traced) -> None:
        """``tiergate.cost`` adds up the ledger's nano-dollars per caller label, exported in USD;
        a caller that only names itself is counted as ``unverified``."""
        replies = [traced.stub.Classify(CLASSIFY, metadata=(CALLER,)) for _ in range(2)]
        reason = traced.stub.Reason(REASON)
        traced.server_spans(3)
        costs = {
            (p.attributes["tiergate.task"], p.attributes["tiergate.caller"]): p
            for p in traced.points("tiergate.cost")
        }
        assert ("Classify", "billing-svc") not in costs
        classify = costs[("Classify", "unverified")]
        assert classify.value == sum(r.usage.cost.total_nanos for r in replies) / 1e9
        assert classify.attributes["tiergate.tier"] == "fast"
        assert classify.attributes["gen_ai.request.model"] == "claude-haiku-4-5"
        balanced = costs[("Reason", "anonymous")]
        assert balanced.value == reason.usage.cost.total_nanos / 1e9
        assert balanced.attributes["gen_ai.request.model"] == "claude-sonnet-4-6"

    def test_retries_in_flight_and_cache_ratio(self, traced: Traced, upstream: Upstream) -> None:
        """A retried call counts one upstream retry, the in-flight gauge returns to zero, and
        every billed RPC records its cache-read ratio."""
        upstream.inject(Fault(kind="rate_limit", retry_after_s=0.01))
        traced.stub.Classify(CLASSIFY)
        traced.server_spans(1)
        [retries] = traced.points("tiergate.upstream.retries")
        assert retries.value == 1
        assert retries.attributes["tiergate.task"] == "Classify"
        [in_flight] = traced.points("tiergate.rpc.in_flight")
        assert isinstance(in_flight, NumberDataPoint)
        assert in_flight.value == 0
        [ratio] = traced.points("tiergate.cache.read_ratio")
        assert ratio.count == 1
        assert 0.0 <= ratio.sum <= 1.0


class TestLogs:
    @pytest.fixture
    def log_lines(self) -> Iterator[io.StringIO]:
        stream = io.StringIO()
        logs.configure(json=True, stream=stream)
        # Loggers bound to this stream must not outlive the test.
        structlog.configure(cache_logger_on_first_use=False)
        yield stream
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()

    def test_the_rpc_line_carries_the_server_span_ids_and_no_request_text(
        self, traced: Traced, log_lines: io.StringIO
    ) -> None:
        """The one JSON line per RPC has task, tier, model, tokens, cost, status, duration,
        caller and the SERVER span's ``trace_id``/``span_id``; the request text is nowhere."""
        reply = traced.stub.Classify(CLASSIFY, metadata=(CALLER,))
        [server] = traced.server_spans(1)
        lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        [rpc] = [line for line in lines if line["event"] == "rpc"]
        assert server.context is not None
        assert rpc["trace_id"] == format(server.context.trace_id, "032x")
        assert rpc["span_id"] == format(server.context.span_id, "016x")
        assert rpc == {
            **rpc,
            "task": "Classify",
            "tier": "fast",
            "model": "claude-haiku-4-5",
            "status": "OK",
            "caller": "unverified",
            "claimed_caller": "billing-svc",
            "output_tokens": reply.usage.output_tokens,
            "cost_nanos": reply.usage.cost.total_nanos,
        }
        assert isinstance(rpc["duration_ms"], float)
        assert REQUEST_TEXT not in log_lines.getvalue()

    def test_a_terminal_gets_a_readable_rendering(self) -> None:
        """On a terminal the same line is rendered for people, not as JSON."""
        leader, follower = os.openpty()
        with os.fdopen(follower, "w") as terminal:
            logs.configure(stream=terminal)
            structlog.configure(cache_logger_on_first_use=False)
            try:
                structlog.get_logger("tiergate.rpc").info("rpc", task="Classify")
            finally:
                structlog.reset_defaults()
                logging.getLogger().handlers.clear()
            terminal.flush()
            rendered = os.read(leader, 4096).decode()
        os.close(leader)
        assert "task" in rendered
        assert "Classify" in rendered
        assert not rendered.lstrip().startswith("{")
