"""The running service: gRPC server, health, reflection, the model client and, when chosen
with ``upstream=emulator``, the embedded emulator. ``serve`` runs it until SIGTERM or SIGINT,
then drains.

    app = App(settings)
    port = await app.start()
    ...
    await app.stop()
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tiergate.batches.redis_store import RedisBatchStore
from tiergate.batches.service import SERVICE as BATCH_SERVICE
from tiergate.batches.service import BatchHandlers, add_batch_service, add_batch_service_off
from tiergate.batches.store import BatchStore, SqliteBatchStore
from tiergate.batches.worker import BatchWorker
from tiergate.calls.runner import TaskRunner
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.serving.auth import Authenticator, load_tokens
from tiergate.serving.task_service import SERVICE, TaskServicer, add_task_service
from tiergate.shadow import Shadow, ShadowPlan, shadow_for
from tiergate.shared.gate import SharedState
from tiergate.shared.spend import SpendServicer, add_spend_service
from tiergate.tasks import TASKS
from tiergate.telemetry import Telemetry
from tiergate.tiers import Tier
from tiergate.upstream.breakers import SharedBreakers, breaker_gauge
from tiergate.upstream.failover import RoadClient
from tiergate.upstream.model_client import ModelClient
from tiergate.upstream.providers import ProviderTable
from tiergate.upstream.retry_budget import RetryBudget, RetryBudgetMetrics
from tiergate.upstream.roads import build_roads, check_roads
from tiergate.upstream.transport import upstream_client

if TYPE_CHECKING:
    # Imported only when chosen (upstream=emulator): production never loads the emulator.
    from tiergate.emulator import Emulator

log = structlog.get_logger("tiergate")

SERVICE_NAME = SERVICE.full_name
SPEND_SERVICE_NAME = "tiergate.v1.SpendService"

# Time given to flushing telemetry on stop even when the drain used the whole grace.
_MIN_FLUSH_S = 1.0
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
        # Warn about each configured model with a retirement date; a retired one stops start-up.
        for facts in self.prices.retirements(map(settings.model_for, Tier)):
            log.warning("model.retiring", model=facts.model, retires=str(facts.retires))
        # Refuse to start without a key for the real API rather than serve fake answers, and
        # on a listed road that lacks a variable, a model or a price.
        settings.check_upstream()
        self.providers = ProviderTable.load()
        if not settings.uses_emulator:
            check_roads(settings, os.environ, self.providers, self.prices)
        if emulator_url is not None and not settings.uses_emulator:
            raise ValueError("an emulator URL is only for upstream=emulator")
        tokens = settings.auth_tokens_file
        self._authenticator = Authenticator(load_tokens(Path(tokens)) if tokens else None)
        self.shadow_plan = ShadowPlan.from_settings(settings)  # fails closed when invalid
        self.shadow: Shadow | None = None
        self.telemetry = telemetry or Telemetry.from_env(settings, prices=self.prices)
        self._emulator_url = emulator_url
        self._emulator: Emulator | None = None
        self._server: grpc.aio.Server | None = None
        self._model_client: ModelClient | None = None
        self._runner: TaskRunner | None = None
        # Fails closed on a bad budgets file before anything listens.
        self.shared = SharedState(
            settings,
            self.prices,
            meter=self.telemetry.meter_provider.get_meter("tiergate.shared"),
        )
        # One retry budget per road, shared by every call on it, its state exported as metrics.
        self.retry_budgets = {road: RetryBudget() for road in settings.roads}
        RetryBudgetMetrics(
            self.telemetry.meter_provider.get_meter("tiergate.upstream"), self.retry_budgets
        )
        self.batch_store: BatchStore | None = None
        self.batch_worker: BatchWorker | None = None
        self.health = health.aio.HealthServicer()
        self.port = 0

    async def start(self) -> int:
        """Start serving; returns the bound gRPC port."""
        base_url = await self._upstream_url()
        api_key = _EMULATOR_KEY if self.settings.uses_emulator else self.settings.anthropic_api_key
        if self.settings.uses_emulator:
            self._model_client = ModelClient(
                upstream_client(
                    api_key=_EMULATOR_KEY,
                    base_url=base_url,
                    settings=self.settings,
                    on_response=self.shared.observe_response,
                ),
                self.settings,
                self.telemetry,
                retry_budget=self.retry_budgets["emulator"],
            )
        else:
            meter = self.telemetry.meter_provider.get_meter("tiergate.roads")
            roads = build_roads(
                self.settings,
                os.environ,
                table=self.providers,
                telemetry=self.telemetry,
                on_response=self.shared.observe_response,
                observer=breaker_gauge(meter),
                retry_budgets=self.retry_budgets,
            )
            log.info("upstream.roads", roads=[f"{r.name}:{r.scope}" for r in roads])
            # With a shared store, one replica's open breaker is every replica's.
            shared = (
                SharedBreakers(self.shared.store, replica=uuid.uuid4().hex)
                if self.settings.redis_url
                else None
            )
            self._model_client = RoadClient(roads, self.settings, meter, shared)
        runner = TaskRunner(self.settings, self.prices, self._model_client)
        runner.shared = self.shared
        self._runner = runner
        servicer = TaskServicer(runner, self.telemetry, authenticator=self._authenticator)
        if self.shadow_plan is not None:
            self.shadow = servicer.shadow = shadow_for(
                self.shadow_plan,
                self.settings,
                self.prices,
                self.telemetry.meter_provider,
                runner,
                self._model_client,
            )
        # gRPC's own limit sits above ours so an oversized request still gets the rich error
        # (REQUEST_TOO_LARGE); only far larger ones meet gRPC's bare RESOURCE_EXHAUSTED.
        size = self.settings.max_message_bytes + 1024 * 1024
        if any(task.admit is not None for task in TASKS.values()):
            # Read takes files up to the provider's limit; every other RPC still refuses more
            # than max_message_bytes (checked per task, after reading).
            size = max(size, self.settings.upload_max_bytes + 1024 * 1024)
        batches_on = bool(self.settings.batch_dir or self.settings.batch_redis_url)
        if batches_on:
            # CreateBatch carries many items; task RPCs still check their own, smaller limit.
            size = max(size, self.settings.batch_max_bytes + 1024 * 1024)
        # Every call admission control may hold (in flight plus queued, per tier), with room.
        held = (self.settings.max_concurrency + self.settings.max_queue) * len(Tier)
        pending = max(3000, 2 * held)
        unrequested_s = max(30, math.ceil(2 * self.settings.queue_timeout_s))
        server = grpc.aio.server(
            interceptors=[self.telemetry.server_interceptor()],
            options=[
                # gRPC shares ports by default (SO_REUSEPORT): a second server on a taken port
                # would start and silently take part of the calls. A taken port must fail.
                ("grpc.so_reuseport", 0),
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
                # Likewise a call the busy event loop has not picked up within 30 s (the
                # default) is cancelled bare; give pick-up as long as the queue may take.
                ("grpc.server_max_unrequested_time_in_server", unrequested_s),
            ],
        )
        add_task_service(servicer, server)
        add_spend_service(SpendServicer(self.shared.budgets, self._authenticator), server)
        services = [SERVICE_NAME, SPEND_SERVICE_NAME]
        if batches_on:
            self.batch_store = (
                RedisBatchStore(self.settings.batch_redis_url)
                if self.settings.batch_redis_url
                else SqliteBatchStore(Path(self.settings.batch_dir))
            )
            self.batch_worker = BatchWorker(
                self.batch_store,
                upstream_client(api_key=api_key or "", base_url=base_url, settings=self.settings),
                runner,
                self.settings,
                self.prices,
                meter=self.telemetry.meter_provider.get_meter("tiergate.batches"),
            )
            handlers = BatchHandlers(
                self.batch_store,
                self.batch_worker,
                self.settings,
                self.prices,
                self._authenticator,
            )
            add_batch_service(handlers, server)
            services.append(BATCH_SERVICE.full_name)
        else:
            # Off: not listed by reflection, and a call says which setting turns it on.
            add_batch_service_off(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                *services,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        address = f"{self.settings.host}:{self.settings.port}"
        credentials = self._tls()
        _check_free(self.settings.host, self.settings.port)
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            # gRPC says only "Failed to bind"; the address is what the operator needs.
            raise OSError(f"cannot listen on {address}: {exc}") from None
        # Before serving, so a taken metrics port stops start-up instead of a running server.
        self.telemetry.start_metrics(self.settings.host, self.settings.metrics_port)
        await server.start()
        self._server = server
        if self.batch_worker is not None:
            self.batch_worker.start()
        for name in ("", *services):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving",
            port=self.port,
            metrics_port=self.telemetry.metrics_port,
            models={t.label: self.settings.model_for(t) for t in Tier},
            upstream=self.settings.upstream,
            tls=credentials is not None,
            mtls=bool(self.settings.tls_client_ca_file),
            auth=bool(self.settings.auth_tokens_file),
            batches=("redis" if self.settings.batch_redis_url else self.settings.batch_dir)
            or "off",
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
        grace_s = self.settings.drain_grace_s if grace is None else grace
        until = asyncio.get_running_loop().time() + grace_s
        if self._server is not None:
            await self._server.stop(grace_s)
        if self.batch_worker is not None:
            await self.batch_worker.stop()
        if self.batch_store is not None:
            self.batch_store.close()
        if self.shadow is not None:
            await self.shadow.close()
        if self._model_client is not None:
            await self._model_client.close()
        await self.shared.close()
        if self._emulator is not None:
            await self._emulator.stop()
        # Spans and metrics get what is left of the grace (a little at least): an unreachable
        # collector must not hold the process past it.
        left_s = max(until - asyncio.get_running_loop().time(), _MIN_FLUSH_S)
        if not await self.telemetry.close(left_s):
            log.warning("telemetry.unflushed", waited_s=round(left_s, 2))
        log.info("stopped")

    async def _upstream_url(self) -> str | None:
        if not self.settings.uses_emulator:
            return self.settings.anthropic_base_url
        url = self._emulator_url
        if url is None:
            from tiergate.emulator import Emulator, EmulatorConfig

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
            note="TIERGATE_UPSTREAM=emulator: answers come from the embedded emulator of the"
            " Messages API, which is heuristic and not a language model; never in production",
        )
        return url


def _check_free(host: str, port: int) -> None:
    """Raise OSError naming the address when ``port`` is taken: gRPC's own refusal is a bare
    "Failed to bind" after a line of its own on stderr."""
    if not port:
        return
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        # As gRPC does, so a port whose old connections linger in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


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
