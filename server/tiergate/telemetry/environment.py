"""Providers from the standard ``OTEL_*`` variables.

Nothing is exported unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or the
per-signal ``OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT``); spans are still made, so logs
carry trace ids either way. ``OTEL_EXPORTER_OTLP_PROTOCOL`` picks ``http/protobuf`` (the
default) or ``grpc``; ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_BSP_*``,
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_{TRACES,METRICS}_EXPORTER=none`` and ``OTEL_SDK_DISABLED`` are honoured as the
specification describes. The variables are read from a mapping, so tests pass their own.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.util.re import parse_env_headers

DEFAULT_SERVICE_NAME = "tiergate"
CONTENT_CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# Values of the content-capture setting that put prompt and output text on spans.
_CAPTURE_ON = {"true", "span_only", "span_and_event"}


@dataclass(frozen=True)
class Otlp:
    """Where one signal goes: an OTLP endpoint over one protocol."""

    endpoint: str
    protocol: str
    headers: dict[str, str] | None


def service_version() -> str:
    try:
        return importlib.metadata.version("tiergate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def resource(environ: Mapping[str, str]) -> Resource:
    attributes: dict[str, str] = {}
    for pair in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = value.strip()
    attributes["service.name"] = environ.get("OTEL_SERVICE_NAME") or attributes.get(
        "service.name", DEFAULT_SERVICE_NAME
    )
    attributes.setdefault("service.version", service_version())
    return Resource.create(attributes)


def sdk_disabled(environ: Mapping[str, str]) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def captures_content(environ: Mapping[str, str]) -> bool:
    return environ.get(CONTENT_CAPTURE, "").strip().lower() in _CAPTURE_ON


def otlp_target(environ: Mapping[str, str], signal: str) -> Otlp | None:
    """The OTLP destination of ``signal`` (``traces`` or ``metrics``), or None: not exported."""
    upper = signal.upper()
    if environ.get(f"OTEL_{upper}_EXPORTER", "otlp").strip().lower() == "none":
        return None
    protocol = (
        environ.get(f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in ("http/protobuf", "grpc"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or grpc: {protocol!r}")
    endpoint = environ.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not base:
            return None
        # The generic endpoint is a base URL: over HTTP each signal has its own path.
        endpoint = f"{base.rstrip('/')}/v1/{signal}" if protocol == "http/protobuf" else base
    raw_headers = environ.get(f"OTEL_EXPORTER_OTLP_{upper}_HEADERS") or environ.get(
        "OTEL_EXPORTER_OTLP_HEADERS"
    )
    headers = dict(parse_env_headers(raw_headers, liberal=True)) if raw_headers else None
    return Otlp(endpoint=endpoint, protocol=protocol, headers=headers)


def sampler(environ: Mapping[str, str]) -> Sampler:
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    ratio = float(arg) if arg else 1.0
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(TraceIdRatioBased(ratio)),
    }
    if name not in samplers:
        raise ValueError(f"OTEL_TRACES_SAMPLER={name!r} is not one of {', '.join(samplers)}")
    return samplers[name]


def _int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    return int(raw) if raw else None


def span_processor(target: Otlp, environ: Mapping[str, str]) -> SpanProcessor:
    exporter: SpanExporter
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter = GrpcSpanExporter(
            endpoint=target.endpoint, headers=dict(target.headers or {}) or None
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=target.endpoint, headers=dict(target.headers or {}) or None
        )
    return BatchSpanProcessor(
        exporter,
        max_queue_size=_int(environ, "OTEL_BSP_MAX_QUEUE_SIZE"),
        schedule_delay_millis=_int(environ, "OTEL_BSP_SCHEDULE_DELAY"),
        max_export_batch_size=_int(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        export_timeout_millis=_int(environ, "OTEL_BSP_EXPORT_TIMEOUT"),
    )


def metric_reader(target: Otlp, environ: Mapping[str, str]) -> MetricReader:
    exporter: MetricExporter
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        exporter = GrpcMetricExporter(
            endpoint=target.endpoint, headers=dict(target.headers or {}) or None
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(
            endpoint=target.endpoint, headers=dict(target.headers or {}) or None
        )
    return PeriodicExportingMetricReader(
        exporter, export_interval_millis=_int(environ, "OTEL_METRIC_EXPORT_INTERVAL")
    )


def tracer_provider(environ: Mapping[str, str], service: Resource) -> TracerProvider:
    """Spans recorded by the configured sampler when an exporter takes them; without one every
    span is left unrecorded: it still has its trace and span ids (the log lines carry them),
    but keeps no attribute, since nothing would export it."""
    target = otlp_target(environ, "traces")
    chosen = sampler(environ) if target is not None else ALWAYS_OFF
    # The service shuts its providers down itself, within its drain grace; the SDK's own exit
    # hook would wait on an unreachable collector without a bound.
    provider = TracerProvider(resource=service, sampler=chosen, shutdown_on_exit=False)
    if target is not None:
        provider.add_span_processor(span_processor(target, environ))
    return provider


def meter_provider(
    environ: Mapping[str, str], service: Resource, extra_readers: list[MetricReader]
) -> MeterProvider | None:
    """The SDK's provider with every reader; None when there is no reader (no OTLP endpoint
    and no ``/metrics``), since nothing would ever read what it records."""
    readers = list(extra_readers)
    target = otlp_target(environ, "metrics")
    if target is not None:
        readers.append(metric_reader(target, environ))
    if not readers:
        return None
    return MeterProvider(resource=service, metric_readers=readers, shutdown_on_exit=False)
