"""Telemetry leaving the process: OTLP/HTTP to a receiver on loopback, Prometheus ``/metrics``,
and the ``OTEL_*`` variables that configure them."""

from __future__ import annotations

import gzip
import socket
import threading
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from prometheus_client.parser import text_string_to_metric_families

from harness import BackgroundLoop, Upstream, eventually
from samples import CLASSIFY, REASON, SUMMARIZE
from tiergate.config import Settings
from tiergate.serving.app import App
from tiergate.telemetry import Telemetry, environment
from tiergate.telemetry.instruments import TOKEN_BUCKETS
from tiergate.v1 import task_service_pb2_grpc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Receiver:
    """An OTLP/HTTP endpoint on loopback that keeps every request body it is sent."""

    server: ThreadingHTTPServer
    received: dict[str, list[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received: dict[str, list[bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.setdefault(self.path, []).append(body)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(server, received)
    server.shutdown()
    server.server_close()


def attributes(pairs: list[KeyValue]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values


class TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        self.requests.append(request)
        return ExportTraceServiceResponse()


class TestOtlpExport:
    def test_spans_and_metrics_arrive_at_the_configured_endpoint(
        self, background: BackgroundLoop, upstream: Upstream, receiver: Receiver
    ) -> None:
        """With ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``http/protobuf``, stopping the service
        flushes the RPC's spans to ``/v1/traces`` and its metrics to ``/v1/metrics``, with the
        service's name and version as resource attributes."""
        environ = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "tiergate-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci",
        }
        settings = Settings(host="127.0.0.1", port=0, upstream="emulator")
        app = App(
            settings,
            emulator_url=upstream.url,
            telemetry=Telemetry.from_env(settings, environ),
        )
        background.run(app.start())
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                reply = stub.Summarize(SUMMARIZE)
        finally:
            background.run(app.stop(grace=1))

        spans: list[tuple[dict[str, object], Span]] = []
        for body in receiver.received["/v1/traces"]:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = attributes(list(resource_spans.resource.attributes))
                for scope in resource_spans.scope_spans:
                    spans.extend((resource, span) for span in scope.spans)
        by_name = {span.name: (resource, span) for resource, span in spans}
        resource, server = by_name["/tiergate.v1.TaskService/Summarize"]
        assert resource["service.name"] == "tiergate-test"
        assert resource["service.version"] == "1.0.0"
        assert resource["deployment.environment"] == "ci"
        assert server.kind == Span.SPAN_KIND_SERVER
        _, client = by_name["chat claude-haiku-4-5"]
        assert client.kind == Span.SPAN_KIND_CLIENT
        assert client.trace_id == server.trace_id
        assert client.parent_span_id == server.span_id
        sent = attributes(list(client.attributes))
        assert sent["gen_ai.usage.output_tokens"] == reply.usage.output_tokens
        assert sent["tiergate.cost_nanos"] == reply.usage.cost.total_nanos

        names = {
            metric.name
            for body in receiver.received["/v1/metrics"]
            for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics
            for scope in resource_metrics.scope_metrics
            for metric in scope.metrics
        }
        assert {"gen_ai.client.token.usage", "tiergate.cost"} <= names

    def test_spans_arrive_over_grpc_when_the_protocol_says_so(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """With ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` the same spans go to an OTLP/gRPC
        receiver at the endpoint as given."""
        sink = TraceSink()
        receiver = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, receiver)  # type: ignore[no-untyped-call]  # generated without types
        port = receiver.add_insecure_port("127.0.0.1:0")
        receiver.start()
        environ = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_METRICS_EXPORTER": "none",
        }
        settings = Settings(host="127.0.0.1", port=0, upstream="emulator")
        app = App(
            settings, emulator_url=upstream.url, telemetry=Telemetry.from_env(settings, environ)
        )
        background.run(app.start())
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                task_service_pb2_grpc.TaskServiceStub(channel).Reason(REASON)
        finally:
            background.run(app.stop(grace=1))
            receiver.stop(None)
        names = {
            span.name
            for request in sink.requests
            for resource_spans in request.resource_spans
            for scope in resource_spans.scope_spans
            for span in scope.spans
        }
        assert names == {"/tiergate.v1.TaskService/Reason", "chat claude-sonnet-4-6"}


class TestPrometheusEndpoint:
    def test_metrics_are_scraped_on_the_metrics_port(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """``TIERGATE_METRICS_PORT`` serves the metrics in the Prometheus text format: token
        histograms with the conventions' buckets and the cost counter in dollars."""
        settings = Settings(host="127.0.0.1", port=0, upstream="emulator", metrics_port=free_port())
        app = App(settings, emulator_url=upstream.url, telemetry=Telemetry.from_env(settings, {}))
        background.run(app.start())
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = task_service_pb2_grpc.TaskServiceStub(channel)
                reply = stub.Classify(CLASSIFY, metadata=(("x-tiergate-caller", "billing-svc"),))
            url = f"http://127.0.0.1:{app.telemetry.metrics_port}/metrics"

            def scraped() -> str | None:
                # The RPC's totals are recorded just after its answer is sent.
                with urllib.request.urlopen(url, timeout=10) as response:
                    page: str = response.read().decode()
                return page if "tiergate_cost_USD_total" in page else None

            text = eventually(scraped, "the RPC's cost on /metrics")
        finally:
            background.run(app.stop(grace=1))
        families = {family.name: family for family in text_string_to_metric_families(text)}
        tokens = families["gen_ai_client_token_usage"]
        assert tokens.type == "histogram"
        bounds = {
            float(sample.labels["le"])
            for sample in tokens.samples
            if sample.name.endswith("_bucket") and sample.labels["le"] != "+Inf"
        }
        assert bounds == set(map(float, TOKEN_BUCKETS))
        output_sum = next(
            sample.value
            for sample in tokens.samples
            if sample.name.endswith("_sum") and sample.labels["gen_ai_token_type"] == "output"
        )
        assert output_sum == reply.usage.output_tokens
        [cost] = [
            sample
            for sample in families["tiergate_cost_USD"].samples
            if sample.name.endswith("_total")
        ]
        assert cost.labels["tiergate_caller"] == "unverified"
        assert cost.labels["tiergate_task"] == "Classify"
        assert cost.value == reply.usage.cost.total_nanos / 1e9
        assert "gen_ai_client_operation_duration_seconds" in families
        assert "tiergate_rpc_in_flight" in families

    def test_no_endpoint_without_a_metrics_port(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """With the metrics port at 0 (the default) nothing listens."""
        settings = Settings(host="127.0.0.1", port=0, upstream="emulator")
        telemetry = Telemetry.from_env(settings, {})
        app = App(settings, emulator_url=upstream.url, telemetry=telemetry)
        background.run(app.start())
        background.run(app.stop(grace=1))
        assert telemetry.metrics_port == 0


class TestEnvironment:
    def test_nothing_is_exported_without_an_endpoint(self) -> None:
        """No OTLP endpoint, no exporter, for either signal."""
        assert environment.otlp_target({}, "traces") is None
        assert environment.otlp_target({"OTEL_SERVICE_NAME": "x"}, "metrics") is None

    def test_the_generic_endpoint_gets_a_path_per_signal_over_http(self) -> None:
        """Over HTTP the base endpoint gains ``/v1/traces``; over gRPC it is used as is."""
        http = environment.otlp_target({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, "traces")
        assert http is not None
        assert (http.endpoint, http.protocol) == ("http://c:4318/v1/traces", "http/protobuf")
        grpc_target = environment.otlp_target(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "metrics",
        )
        assert grpc_target is not None
        assert (grpc_target.endpoint, grpc_target.protocol) == ("http://c:4317", "grpc")

    def test_per_signal_settings_win_and_exporter_none_turns_a_signal_off(self) -> None:
        """``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used verbatim, headers are parsed, and
        ``OTEL_METRICS_EXPORTER=none`` exports no metrics."""
        environ = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9999/custom",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret,team=llm",
            "OTEL_METRICS_EXPORTER": "none",
        }
        target = environment.otlp_target(environ, "traces")
        assert target is not None
        assert target.endpoint == "http://t:9999/custom"
        assert target.headers == {"api-key": "secret", "team": "llm"}
        assert environment.otlp_target(environ, "metrics") is None

    def test_unknown_protocol_and_sampler_are_refused(self) -> None:
        """A typo in the protocol or sampler stops start-up instead of silently not tracing."""
        with pytest.raises(ValueError, match="PROTOCOL"):
            environment.otlp_target(
                {"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "json"},
                "traces",
            )
        with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER"):
            environment.sampler({"OTEL_TRACES_SAMPLER": "sometimes"})

    def test_samplers_by_name(self) -> None:
        """The specification's sampler names map to the SDK's samplers."""
        assert environment.sampler({"OTEL_TRACES_SAMPLER": "always_off"}) is ALWAYS_OFF
        ratio = environment.sampler(
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
        )
        assert isinstance(ratio, TraceIdRatioBased)
        assert ratio.rate == 0.25
        assert isinstance(environment.sampler({}), ParentBased)

    def test_resource_names_the_service(self) -> None:
        """``service.name`` defaults to tiergate, ``OTEL_SERVICE_NAME`` overrides it, and the
        package version is ``service.version``."""
        assert environment.resource({}).attributes["service.name"] == "tiergate"
        named = environment.resource({"OTEL_SERVICE_NAME": "gate-eu"}).attributes
        assert named["service.name"] == "gate-eu"
        assert named["service.version"] == environment.service_version() != "unknown"

    def test_without_an_exporter_spans_keep_their_ids_but_record_nothing(self) -> None:
        """No OTLP endpoint: spans are left unrecorded (nothing would export them) yet have
        valid trace and span ids; with an endpoint the sampler records them."""
        quiet = Telemetry.from_env(Settings(), {})
        span = quiet.tracer_provider.get_tracer("t").start_span("s", attributes={"a": 1})
        assert not span.is_recording()
        assert span.get_span_context().is_valid
        exported = Telemetry.from_env(Settings(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
        try:
            assert exported.tracer_provider.get_tracer("t").start_span("s").is_recording()
        finally:
            exported.shutdown()

    def test_without_a_reader_there_is_no_meter_provider(self) -> None:
        """No OTLP endpoint and no metrics port: nothing would read a measurement, so none is
        made; either one brings the SDK's provider."""
        assert environment.meter_provider({}, environment.resource({}), []) is None
        assert isinstance(Telemetry.from_env(Settings(), {}).meter_provider, NoOpMeterProvider)
        otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
        provider = environment.meter_provider(otlp, environment.resource({}), [])
        assert isinstance(provider, MeterProvider)
        provider.shutdown(timeout_millis=1000)

    def test_content_capture_is_off_unless_asked(self) -> None:
        """Prompt and output text go on spans only with the GenAI content-capture setting."""
        assert not environment.captures_content({})
        assert not environment.captures_content({environment.CONTENT_CAPTURE: "false"})
        assert environment.captures_content({environment.CONTENT_CAPTURE: "true"})
        assert environment.captures_content({environment.CONTENT_CAPTURE: "SPAN_ONLY"})

    def test_sdk_disabled_records_no_spans_but_keeps_the_metrics_endpoint(self) -> None:
        """``OTEL_SDK_DISABLED=true`` makes no spans; a metrics port asked for is still served,
        since it is tiergate's own setting."""
        environ = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
        telemetry = Telemetry.from_env(Settings(), environ)
        span = telemetry.tracer_provider.get_tracer("t").start_span("s")
        assert not span.is_recording()
        served = Telemetry.from_env(Settings(metrics_port=free_port()), environ)
        try:
            port = served.start_metrics("127.0.0.1", free_port())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
                assert reply.status == 200
        finally:
            served.shutdown()
