"""How every tiergate channel is dialed: the service config, keepalive and default deadline.

The Go and TypeScript clients use the same values, so a call behaves alike in every language.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_TIMEOUT_S = 30.0
"""Deadline of a call that names none: the service retries upstream only within it."""

SERVICE_CONFIG: dict[str, Any] = {
    # Spread calls over every address the name resolves to (one per replica behind a headless
    # Kubernetes service), not just the first.
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            # A stream is retried only before its first message: gRPC commits a call once the
            # server's headers arrive, and they come with the first message.
            "name": [
                {"service": "tiergate.v1.TaskService"},
                {"service": "tiergate.v1.StreamService"},
            ],
            # The service sends grpc-retry-pushback-ms with every error: the delay when a retry
            # may help and nothing was billed (gRPC's retries wait for it instead of their own
            # backoff), else -1, which stops these retries, so they never multiply billed
            # calls (a non-retryable or billed OUTPUT_INVALID is UNAVAILABLE too).
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.2s",
                "maxBackoff": "5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        }
    ],
}

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    # Ping during calls so a dead connection fails the call instead of hanging until the
    # deadline; the server accepts a ping every 20 s.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
)


# gRPC's resolver schemes; anything else before a colon is a host name.
_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "xds:")


def dial_target(target: str) -> str:
    """``target`` with the ``dns:///`` scheme when it names none, so round_robin sees every
    address of the name."""
    return target if target.startswith(_SCHEMES) else f"dns:///{target}"
