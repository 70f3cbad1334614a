"""The running service: gRPC server, health, reflection, the model client and, without an API
key, the embedded emulator. ``serve`` runs it until SIGTERM or SIGINT, then drains.

    app = App(settings)
    port = await app.start()
    ...
    await app.stop()
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tiergate.auth import BearerAuth, load_tokens
from tiergate.config import Settings
from tiergate.emulator import Emulator, EmulatorConfig
from tiergate.ledger import PriceTable
from tiergate.model_client import ModelClient, upstream_client
from tiergate.service import TaskRunner, TaskService
from tiergate.shadow import Shadow, ShadowPlan, shadow_for
from tiergate.telemetry import Telemetry
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2, task_service_pb2_grpc

log = structlog.get_logger("tiergate")

SERVICE_NAME = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name

# Placeholder credential for the embedded emulator, which checks none.
_EMULATOR_KEY = "emulator-no-key"


class App:
    """One tiergate process's worth of parts, started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        *,
        emulator_url: str | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.prices = PriceTable.load()
        # Refuse to start on a model the ledger cannot price, rather than report a zero cost.
        settings.check_priced(self.prices)
        self.shadow_plan = ShadowPlan.from_settings(settings)  # fails closed when invalid
        self.shadow: Shadow | None = None
        self.telemetry = telemetry or Telemetry.from_env(settings, prices=self.prices)
        self._emulator_url = emulator_url
        self._emulator: Emulator | None = None
        self._server: grpc.aio.Server | None = None
        self._model_client: ModelClient | None = None
        self._runner: TaskRunner | None = None
        self.health = health.aio.HealthServicer()
        self.port = 0

    async def start(self) -> int:
        """Start serving; returns the bound gRPC port."""
        base_url = await self._upstream_url()
        api_key = self.settings.anthropic_api_key or _EMULATOR_KEY
        self._model_client = ModelClient(
            upstream_client(api_key=api_key, base_url=base_url, settings=self.settings),
            self.settings,
            self.telemetry,
        )
        runner = TaskRunner(self.settings, self.prices, self._model_client, self.telemetry)
        self._runner = runner
        if self.shadow_plan is not None:
            self.shadow = runner.shadow = shadow_for(self, runner, self._model_client)
        # gRPC's own limit sits above ours so an oversized request still gets the rich error
        # (REQUEST_TOO_LARGE); only far larger ones meet gRPC's bare RESOURCE_EXHAUSTED.
        size = self.settings.max_message_bytes + 1024 * 1024
        pending = max(3000, 2 * self.settings.max_concurrency * len(Tier))
        # Tracing comes first, so calls the later interceptors refuse still get a span.
        interceptors: list[grpc.aio.ServerInterceptor] = [self.telemetry.server_interceptor()]
        if self.settings.auth_tokens_file:
            interceptors.append(BearerAuth(load_tokens(Path(self.settings.auth_tokens_file))))
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.max_connection_age_ms", int(self.settings.max_connection_age_s * 1000)),
                (
                    "grpc.max_connection_age_grace_ms",
                    int(self.settings.max_connection_age_grace_s * 1000),
                ),
                # The clients ping every 30 s during calls; gRPC's default (one ping per 5 min)
                # would answer a long call's pings with GOAWAY too_many_pings.
                ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
                # gRPC cancels calls that wait for the event loop to pick them up beyond 1,000
                # (soft) and 3,000 (hard) by default: a burst must reach admission control,
                # which answers RESOURCE_EXHAUSTED with RetryInfo instead of a bare CANCELLED.
                ("grpc.server.max_pending_requests", pending),
                ("grpc.server.max_pending_requests_hard_limit", pending),
            ],
        )
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(TaskService(runner), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        address = f"{self.settings.host}:{self.settings.port}"
        credentials = self._tls()
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        # Before serving, so a taken metrics port stops start-up instead of a running server.
        self.telemetry.start_metrics(self.settings.host, self.settings.metrics_port)
        await server.start()
        self._server = server
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving",
            port=self.port,
            metrics_port=self.telemetry.metrics_port,
            models={t.label: self.settings.model_for(t) for t in Tier},
            upstream="emulator" if self.settings.uses_emulator else (base_url or "anthropic"),
            tls=credentials is not None,
            mtls=bool(self.settings.tls_client_ca_file),
            auth=bool(self.settings.auth_tokens_file),
        )
        return self.port

    def _tls(self) -> grpc.ServerCredentials | None:
        s = self.settings
        if not (s.tls_cert_file and s.tls_key_file):
            return None
        key, chain = Path(s.tls_key_file).read_bytes(), Path(s.tls_cert_file).read_bytes()
        client_ca = Path(s.tls_client_ca_file).read_bytes() if s.tls_client_ca_file else None
        return grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
        )

    async def stop(self, grace: float | None = None) -> None:
        """Drain: report NOT_SERVING, keep serving for ``drain_delay_s``, then refuse new RPCs
        and let in-flight ones finish within ``grace``, then close."""
        await self.health.enter_graceful_shutdown()
        if self.settings.drain_delay_s > 0:
            await asyncio.sleep(self.settings.drain_delay_s)
        if self._runner is not None:
            self._runner.draining = True
        if self._server is not None:
            await self._server.stop(self.settings.drain_grace_s if grace is None else grace)
        if self.shadow is not None:
            await self.shadow.close()
        if self._model_client is not None:
            await self._model_client.close()
        if self._emulator is not None:
            await self._emulator.stop()
        # Flushing spans and metrics may wait on the collector: keep the loop free meanwhile.
        await asyncio.to_thread(self.telemetry.shutdown)
        log.info("stopped")

    async def _upstream_url(self) -> str | None:
        if not self.settings.uses_emulator:
            return self.settings.anthropic_base_url
        if self._emulator_url is not None:
            return self._emulator_url
        self._emulator = Emulator(
            EmulatorConfig(
                latency=self.settings.emulator_latency,
                fixed_delay_s=self.settings.emulator_fixed_delay_s,
            )
        )
        url = await self._emulator.start(port=self.settings.emulator_port)
        log.warning(
            "emulator.started",
            url=url,
            note="ANTHROPIC_API_KEY is not set: answers come from the embedded emulator of the"
            " Messages API, which is heuristic and not a language model",
        )
        return url


async def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain within ``settings.drain_grace_s`` and return."""
    app = App(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", grace_s=settings.drain_grace_s)
    await app.stop()
