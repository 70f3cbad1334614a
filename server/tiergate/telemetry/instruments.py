"""The service's metrics: the GenAI client histograms, and tiergate's cost, cache, load and retry
instruments. Names, units and buckets of the ``gen_ai.*`` histograms are the conventions'.

Cost is kept as exact integer nano-dollars per attribute set and converted to US dollars only
when a reader collects it, so the exported total never drifts through float additions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import (
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_TOKEN_USAGE,
)

# Bucket boundaries the GenAI conventions advise for the two client histograms.
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS_S = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
RATIO_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)

COST = "tiergate.cost"
CACHE_READ_RATIO = "tiergate.cache.read_ratio"
CACHE_SAVED = "tiergate.cache.saved"
CACHE_WRITE_PREMIUM = "tiergate.cache.write_premium"
RPCS_IN_FLIGHT = "tiergate.rpc.in_flight"
RPC_DURATION = "tiergate.rpc.duration"
RPC_FIRST_MESSAGE = "tiergate.rpc.first_message"
UPSTREAM_RETRIES = "tiergate.upstream.retries"

NANOS_PER_USD = 1_000_000_000

Attributes = Mapping[str, str]


class CostLedger:
    """Running cost per attribute set in integer nano-dollars, observed in US dollars."""

    def __init__(self) -> None:
        self._totals: dict[tuple[tuple[str, str], ...], int] = {}
        self._lock = threading.Lock()

    def add(self, nanos: int, attributes: Attributes) -> None:
        key = tuple(sorted(attributes.items()))
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + nanos

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._totals.items())
        return [Observation(nanos / NANOS_PER_USD, dict(key)) for key, nanos in totals]


class Instruments:
    """Every instrument the service records, created once on one meter."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = meter.create_histogram(
            GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(map(float, TOKEN_BUCKETS)),
        )
        self.operation_duration = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self.cost = CostLedger()
        meter.create_observable_counter(
            COST,
            callbacks=[self.cost.observe],
            unit="USD",
            description="What the model calls cost, by task, tier, model and caller.",
        )
        # Net saving of prompt caching = saved - write premium; each is a counter of its own
        # because the net can go down (a first call pays the premium before any read).
        self.cache_saved = CostLedger()
        meter.create_observable_counter(
            CACHE_SAVED,
            callbacks=[self.cache_saved.observe],
            unit="USD",
            description="What prompt-cache reads saved against the full input price.",
        )
        self.cache_write_premium = CostLedger()
        meter.create_observable_counter(
            CACHE_WRITE_PREMIUM,
            callbacks=[self.cache_write_premium.observe],
            unit="USD",
            description="What prompt-cache writes cost above the full input price.",
        )
        self.cache_read_ratio = meter.create_histogram(
            CACHE_READ_RATIO,
            unit="1",
            description="Share of an RPC's prompt tokens read from the prompt cache.",
            explicit_bucket_boundaries_advisory=list(RATIO_BUCKETS),
        )
        self.rpc_duration = meter.create_histogram(
            RPC_DURATION,
            unit="s",
            description="Task RPCs, from request to answer, by task, tier, caller, gRPC status and"
            " error reason.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self.first_message = meter.create_histogram(
            RPC_FIRST_MESSAGE,
            unit="s",
            description="Streamed task RPCs, from request to their first message, by task, tier,"
            " caller and gRPC status.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self.in_flight = meter.create_up_down_counter(
            RPCS_IN_FLIGHT,
            unit="{rpc}",
            description="Task RPCs being handled right now.",
        )
        self.retries = meter.create_counter(
            UPSTREAM_RETRIES,
            unit="{retry}",
            description="Upstream attempts that were retries of a failed attempt.",
        )
