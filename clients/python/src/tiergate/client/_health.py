"""The standard gRPC health service's ``Check`` as a typed call, for whatever probes a tiergate
server from Python (start-up waits, the benchmarks, the client suites, the tests): the
generated ``HealthStub`` has no typed methods."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2


def health_check(
    channel: grpc.Channel,
) -> grpc.UnaryUnaryMultiCallable[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]:
    """``grpc.health.v1.Health/Check`` on ``channel``."""
    return channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
