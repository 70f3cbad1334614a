"""Graceful drain of a real server process: SIGTERM loses no in-flight RPC."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2

from harness import Processes, wait_serving
from samples import CLASSIFY, MODERATE
from tiergate.client import health_check
from tiergate.v1 import task_service_pb2_grpc

IN_FLIGHT = 8


@pytest.fixture
def slow_service() -> Iterator[Processes]:
    """A server whose upstream answers after 2 s, so RPCs are in flight when SIGTERM lands."""
    processes = Processes(
        emulator_args=("--fixed-delay-s", "2"),
        TIERGATE_DRAIN_DELAY_S="1",
        TIERGATE_DRAIN_GRACE_S="20",
    )
    try:
        wait_serving(processes.port)
        yield processes
    finally:
        processes.close()


def test_sigterm_drains_in_flight_rpcs_and_exits_zero(slow_service: Processes) -> None:
    """In-flight RPCs all complete; health turns NOT_SERVING; new RPCs are refused; exit 0."""
    target = f"127.0.0.1:{slow_service.port}"
    with grpc.insecure_channel(target) as channel, ThreadPoolExecutor(IN_FLIGHT) as pool:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        calls = [pool.submit(stub.Classify, CLASSIFY, timeout=30) for _ in range(IN_FLIGHT)]
        until = time.monotonic() + 20
        while len(slow_service.upstream_requests()) < IN_FLIGHT and time.monotonic() < until:
            time.sleep(0.05)
        assert len(slow_service.upstream_requests()) == IN_FLIGHT
        slow_service.server.send_signal(signal.SIGTERM)

        # During the drain delay health says NOT_SERVING while RPCs are still served.
        health = health_check(channel)
        status = int(health_pb2.HealthCheckResponse.SERVING)
        until = time.monotonic() + 10
        while status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < until:
            status = health(health_pb2.HealthCheckRequest(), timeout=1).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING

        # Then new RPCs are refused while the in-flight ones finish.
        refused = None
        until = time.monotonic() + 15
        while refused is None and time.monotonic() < until:
            try:
                stub.Moderate(MODERATE, timeout=5)
            except grpc.RpcError as error:
                refused = error.code()
        replies = [call.result() for call in calls]

    assert [reply.label for reply in replies] == ["billing"] * IN_FLIGHT
    assert refused == grpc.StatusCode.UNAVAILABLE
    assert slow_service.server.wait(timeout=30) == 0
    logs = [json.loads(line) for line in slow_service.output().splitlines()]
    events = [entry["event"] for entry in logs]
    assert "draining" in events
    assert events[-1] == "stopped"
    served = [e for e in logs if e["event"] == "rpc" and e["task"] == "Classify"]
    assert [e["status"] for e in served] == ["OK"] * IN_FLIGHT
