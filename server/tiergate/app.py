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

import anthropic
import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tiergate.config import Settings
from tiergate.emulator import Emulator, EmulatorConfig
from tiergate.ledger import PriceTable
from tiergate.model_client import ModelClient
from tiergate.service import TaskRunner, TaskService
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2, task_service_pb2_grpc

log = structlog.get_logger("tiergate")

SERVICE_NAME = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name

# Placeholder credential for the embedded emulator, which checks none.
_EMULATOR_KEY = "emulator-no-key"


class App:
    """One tiergate process's worth of parts, started and stopped together."""

    def __init__(self, settings: Settings, *, emulator_url: str | None = None) -> None:
        self.settings = settings
        self.prices = PriceTable.load()
        # Refuse to start on a model the ledger cannot price, rather than report a zero cost.
        settings.check_priced(self.prices)
        self._emulator_url = emulator_url
        self._emulator: Emulator | None = None
        self._server: grpc.aio.Server | None = None
        self._model_client: ModelClient | None = None
        self.health = health.aio.HealthServicer()
        self.port = 0

    async def start(self) -> int:
        """Start serving; returns the bound gRPC port."""
        base_url = await self._upstream_url()
        api_key = self.settings.anthropic_api_key or _EMULATOR_KEY
        self._model_client = ModelClient(
            anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url), self.settings
        )
        runner = TaskRunner(self.settings, self.prices, self._model_client)
        size = self.settings.max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.max_connection_age_ms", int(self.settings.max_connection_age_s * 1000)),
                (
                    "grpc.max_connection_age_grace_ms",
                    int(self.settings.max_connection_age_grace_s * 1000),
                ),
            ]
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
        self.port = server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        await server.start()
        self._server = server
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving",
            port=self.port,
            models={t.label: self.settings.model_for(t) for t in Tier},
            upstream="emulator" if self.settings.uses_emulator else (base_url or "anthropic"),
        )
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Drain: report NOT_SERVING, let in-flight RPCs finish within ``grace``, then close."""
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(self.settings.drain_grace_s if grace is None else grace)
        if self._model_client is not None:
            await self._model_client.close()
        if self._emulator is not None:
            await self._emulator.stop()
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
