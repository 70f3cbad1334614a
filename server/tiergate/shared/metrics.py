"""Metrics of shared state: spend, limit and budget left per caller, the response cache's hit
ratio, coalesced calls, and rate-limit pacing.

Budget gauges show the last snapshot read from the store (refreshed after each settlement and
every ``REFRESH_S``): a collection never waits for Redis. Only callers named in the budgets
file become labels, so callers cannot grow the metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from tiergate.shared.budgets import NANOS_PER_USD, Spend

BUDGET_SPENT = "tiergate.budget.spent"
BUDGET_LEFT = "tiergate.budget.left"
BUDGET_LIMIT = "tiergate.budget.limit"
CACHE_LOOKUPS = "tiergate.response_cache.lookups"
CACHE_HIT_RATIO = "tiergate.response_cache.hit_ratio"
COALESCED = "tiergate.coalesced"
PACED = "tiergate.rate_limit.paced"
INVALID_READINGS = "tiergate.rate_limit.invalid_readings"
REFRESH_S = 15.0


class SharedMetrics:
    """The instruments, on the service's meter."""

    def __init__(self, meter: Meter) -> None:
        self._lock = threading.Lock()
        self._budgets: list[Spend] = []
        self._hits = 0
        self._lookups = 0
        meter.create_observable_gauge(
            BUDGET_SPENT,
            callbacks=[self._spent],
            unit="USD",
            description="Settled spend of the current UTC day and month, by caller scope.",
        )
        meter.create_observable_gauge(
            BUDGET_LEFT,
            callbacks=[self._left],
            unit="USD",
            description="Budget new calls may still reserve, by caller scope and period.",
        )
        meter.create_observable_gauge(
            BUDGET_LIMIT,
            callbacks=[self._limit],
            unit="USD",
            description="The budget's limit for the period, by caller scope and period.",
        )
        meter.create_observable_gauge(
            CACHE_HIT_RATIO,
            callbacks=[self._ratio],
            unit="1",
            description="Share of cacheable calls answered from the response cache, since start.",
        )
        self.lookups = meter.create_counter(
            CACHE_LOOKUPS,
            unit="{call}",
            description="Response cache lookups, by task and result (hit, miss).",
        )
        self.coalesced = meter.create_counter(
            COALESCED,
            unit="{call}",
            description="Calls answered by an identical call's upstream request in flight.",
        )
        self.paced = meter.create_counter(
            PACED,
            unit="{call}",
            description="Calls held for the organisation's rate limit, by outcome (waited,"
            " refused, probed).",
        )
        self.invalid_readings = meter.create_counter(
            INVALID_READINGS,
            unit="{bucket}",
            description="Rate-limit header readings ignored because they broke a rule, by kind.",
        )

    def looked_up(self, task: str, *, hit: bool) -> None:
        with self._lock:
            self._lookups += 1
            self._hits += hit
        self.lookups.add(1, {"tiergate.task": task, "tiergate.result": "hit" if hit else "miss"})

    def budgets(self, rows: list[Spend]) -> None:
        with self._lock:
            self._budgets = list(rows)

    def _spent(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            rows = list(self._budgets)
        return [Observation(r.spent / NANOS_PER_USD, _labels(r)) for r in rows]

    def _left(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            rows = list(self._budgets)
        return [Observation(r.left / NANOS_PER_USD, _labels(r)) for r in rows]

    def _limit(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            rows = list(self._budgets)
        return [Observation(r.limit / NANOS_PER_USD, _labels(r)) for r in rows]

    def _ratio(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            if not self._lookups:
                return []
            return [Observation(self._hits / self._lookups)]


def _labels(row: Spend) -> dict[str, str]:
    caller, _, task = row.scope.partition("/")
    labels = {"tiergate.caller": caller, "tiergate.period": row.period.split(" ")[0]}
    if task:
        labels["tiergate.task"] = task
    return labels
