"""OpenTelemetry for the service: a SERVER span per RPC, a CLIENT span per model call, the GenAI
metrics and tiergate's cost metrics, exported over OTLP and on a Prometheus ``/metrics`` endpoint.

A :class:`Telemetry` owns its providers rather than installing global ones, so each ``App`` (and
each test) can have its own::

    telemetry = Telemetry.from_env(settings)            # OTEL_* variables, as in production
    telemetry = Telemetry(tracer_provider=provider)     # tests: in-memory exporters
    app = App(settings, telemetry=telemetry)
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

import grpc
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader

from tiergate.ledger import PriceTable
from tiergate.telemetry import environment
from tiergate.telemetry.instruments import Instruments
from tiergate.telemetry.spans import ModelCall, Recorder, Rpc

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from tiergate.config import Settings

__all__ = ["ModelCall", "Rpc", "Telemetry"]

INSTRUMENTATION_SCOPE = "tiergate"


class Telemetry(Recorder):
    """The tracer and meter providers of one service instance, and what records into them."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        prices: PriceTable | None = None,
        capture_content: bool = False,
        prometheus: CollectorRegistry | None = None,
        owned: bool = False,
    ) -> None:
        """Providers default to no-ops; ``prometheus`` is the registry ``/metrics`` serves."""
        self.tracer_provider = tracer_provider or trace.NoOpTracerProvider()
        self.meter_provider = meter_provider or metrics.NoOpMeterProvider()
        version = environment.service_version()
        super().__init__(
            self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE, version),
            Instruments(self.meter_provider.get_meter(INSTRUMENTATION_SCOPE, version)),
            prices or PriceTable.load(),
            capture_content=capture_content,
        )
        self._registry = prometheus
        self._owned = owned
        self._metrics_server: WSGIServer | None = None
        self._metrics_thread: threading.Thread | None = None
        self.metrics_port = 0

    @classmethod
    def from_env(
        cls,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        *,
        prices: PriceTable | None = None,
    ) -> Telemetry:
        """Providers configured by the ``OTEL_*`` variables (``os.environ`` by default), with a
        Prometheus reader when ``settings.metrics_port`` is set. ``shutdown`` flushes them."""
        env = os.environ if environ is None else environ
        capture = environment.captures_content(env)
        resource = environment.resource(env)
        readers: list[MetricReader] = []
        registry = None
        if settings.metrics_port:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            # A registry of our own: the process-wide default would mix several instances.
            registry = CollectorRegistry(auto_describe=True)
            readers.append(PrometheusMetricReader(registry=registry))
        if environment.sdk_disabled(env):
            # No spans and no OTLP; /metrics is tiergate's own setting and stays if asked for.
            return cls(
                meter_provider=MeterProvider(
                    resource=resource, metric_readers=readers, shutdown_on_exit=False
                )
                if readers
                else None,
                prices=prices,
                capture_content=capture,
                prometheus=registry,
                owned=True,
            )
        return cls(
            tracer_provider=environment.tracer_provider(env, resource),
            meter_provider=environment.meter_provider(env, resource, readers),
            prices=prices,
            capture_content=capture,
            prometheus=registry,
            owned=True,
        )

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        """The SERVER-span interceptor of the other services; health checks are not traced,
        and task RPCs make their own span (:meth:`Recorder.rpc_started`)."""
        interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]  # the instrumentation is untyped
            tracer_provider=self.tracer_provider,
            filter_=_traced_here,
        )
        return interceptor

    def start_metrics(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port``; returns the bound port (0: nothing to serve)."""
        if self._registry is None or not port:
            return 0
        from prometheus_client import start_http_server

        self._metrics_server, self._metrics_thread = start_http_server(
            port, addr=host, registry=self._registry
        )
        self.metrics_port = self._metrics_server.server_port
        return self.metrics_port

    async def close(self, timeout_s: float) -> bool:
        """:meth:`shutdown` without blocking the event loop, given at most ``timeout_s``;
        False when it had not finished by then (it goes on in a daemon thread, which does not
        hold the process at exit)."""
        worker = threading.Thread(target=self.shutdown, name="telemetry-shutdown", daemon=True)
        worker.start()
        await asyncio.to_thread(worker.join, timeout_s)
        return not worker.is_alive()

    def shutdown(self) -> None:
        """Stop ``/metrics``; flush and close the providers if ``from_env`` made them."""
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None
        if self._owned:
            for provider in (self.tracer_provider, self.meter_provider):
                shutdown: Any = getattr(provider, "shutdown", None)
                if shutdown is not None:
                    shutdown()


_NOT_TRACED_HERE = ("/grpc.health.v1.Health/", "/tiergate.v1.TaskService/")


def _traced_here(details: grpc.HandlerCallDetails) -> bool:
    # The instrumentation's own filters run ABC isinstance checks and path normalisation on
    # every call (several percent of a busy server's CPU); a prefix test says the same.
    return not str(details.method).startswith(_NOT_TRACED_HERE)
