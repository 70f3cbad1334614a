"""What every task RPC passes on its way to the model: the response cache, in-flight
coalescing, the caller's budget and the organisation's rate limits, in that order.

    async with shared.call(rpc, request, prompt, facts) as call:
        if call.hit is not None:
            return task.respond(request, call.hit, shared.cached_usage(rpc))
        completion = await model_client.complete(...)
        call.completed(completion)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import structlog
from google.protobuf.message import Message
from opentelemetry import metrics
from opentelemetry.metrics import Meter

from tiergate import errors
from tiergate.calls import sizing
from tiergate.calls.prompt import JsonObject, Prompt
from tiergate.config import Settings
from tiergate.ledger import ModelFacts, PriceTable, price
from tiergate.serving.rpc import RpcContext
from tiergate.shared import ratelimits
from tiergate.shared.backends import Store, StoreUnavailable, store_for
from tiergate.shared.budgets import BudgetPolicy, Budgets, Reservation
from tiergate.shared.coalescing import Coalescer, Lead
from tiergate.shared.metrics import SharedMetrics
from tiergate.shared.ratelimits import Pacer
from tiergate.shared.response_cache import ResponseCache, cache_key
from tiergate.tasks import TASKS
from tiergate.v1 import usage_pb2

log = structlog.get_logger("tiergate.shared")

# A re-ask after a bad answer repeats that answer and adds a correction of about this size.
_CORRECTION_TOKENS = 256


def worst_case_nanos(prompt: Prompt, facts: ModelFacts, *, max_reasks: int, ttl: str) -> int:
    """The most one call may cost: every billed call the client may make, each with its whole
    prompt written to the prompt cache (the dearest input rate) at the conservative size
    estimate, and its whole ``max_tokens`` (doubled after a truncation) as output, in the
    dearest inference geo."""
    prompt_tokens = sizing.prompt_bounds(prompt, facts).high
    # A breakpoint is placed only where the prefix can reach the model's cache minimum, so a
    # prompt below it is never written to the cache: the plain input price is its worst case.
    write_price = facts.cache_write_5m if ttl == "5m" else facts.cache_write_1h
    cacheable = prompt_tokens >= facts.min_cacheable_tokens
    input_price = max(facts.input, write_price) if cacheable else facts.input
    total = 0
    previous_output = 0
    max_tokens = prompt.max_tokens
    for reask in range(max_reasks + 1):
        extra = previous_output + _CORRECTION_TOKENS if reask else 0
        total += (prompt_tokens + extra) * input_price + max_tokens * facts.output
        previous_output = max_tokens
        max_tokens = min(max_tokens * 2, facts.max_output_tokens)
    return total * max(100, facts.us_inference_percent) // 100


@dataclass
class Call:
    """One call through the gate: a cache hit, or a model call to report back."""

    hit: JsonObject | None = None
    hit_usage: usage_pb2.Usage | None = None
    completion: object | None = None
    outcome: str = "not_called"
    """``not_called``, ``in_call`` (left by a cancellation), ``ok`` or ``failed`` (a
    TiergateError, with what it billed)."""

    def completed(self, completion: object) -> None:
        self.completion = completion


class SharedState:
    """The budgets, response cache, coalescing and pacing of one replica, on one store."""

    def __init__(
        self,
        settings: Settings,
        prices: PriceTable,
        *,
        store: Store | None = None,
        meter: Meter | None = None,
    ) -> None:
        self._settings = settings
        self.metrics = SharedMetrics(meter or metrics.NoOpMeterProvider().get_meter("tiergate"))
        self._refreshed = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._prices = prices
        self.store = store or store_for(settings.redis_url)
        policy = BudgetPolicy.load(Path(settings.budgets_file)) if settings.budgets_file else None
        self.budgets = (
            Budgets(
                policy,
                self.store,
                fail_open=settings.budget_store_failure == "open",
                max_pending=settings.settlement_queue,
            )
            if policy is not None
            else None
        )
        self.cache = ResponseCache(
            self.store,
            ttl_s=settings.response_cache_ttl_s,
            max_entries=settings.response_cache_max_entries,
        )
        self.coalescer = Coalescer(self.store, self.cache)
        self.pacer = (
            Pacer(self.store, on_paced=self._paced, on_invalid=self._invalid_reading)
            if settings.rate_limit_pacing
            else None
        )

    async def close(self) -> None:
        if self.budgets is not None:
            await self.budgets.close()
        await self.store.close()

    def _wait_until(self, deadline: float | None) -> float:
        """``deadline`` (``time.monotonic()``) on the loop's clock, else the queue timeout."""
        loop = asyncio.get_running_loop()
        if deadline is None:
            return loop.time() + self._settings.queue_timeout_s
        return loop.time() + (deadline - time.monotonic())

    @asynccontextmanager
    async def call(
        self, rpc: RpcContext, request: Message, prompt: Prompt, facts: ModelFacts
    ) -> AsyncIterator[Call]:
        wait_until = self._wait_until(rpc.deadline)
        key = None
        if (
            rpc.response_cache
            and self._settings.response_cache_ttl_s > 0
            and TASKS[rpc.task].cacheable
        ):
            key = cache_key(rpc.task, facts.model, request, prompt, scope=rpc.caller.label)
            cached = await self.cache.get(key)
            self.metrics.looked_up(rpc.task, hit=cached is not None)
            if cached is not None:
                yield Call(hit=cached, hit_usage=cached_usage(rpc))
                return
        lead: Lead | None = None
        if key is not None:
            joined = await self.coalescer.join(
                key, wait_until=wait_until, lock_ttl_s=self._lock_ttl_s(wait_until)
            )
            if not isinstance(joined, Lead):
                self.metrics.coalesced.add(1, {"tiergate.task": rpc.task})
                yield Call(hit=joined, hit_usage=cached_usage(rpc))
                return
            lead = joined
        call = Call()
        reservation: Reservation | None = None
        try:
            if self.budgets is not None and rpc.caller.verified:
                worst = worst_case_nanos(
                    prompt,
                    facts,
                    max_reasks=self._settings.max_reasks,
                    ttl=self._settings.cache_ttl,
                )
                reservation = await self.budgets.reserve(
                    rpc.caller.label,
                    rpc.task,
                    worst,
                    wait_until=wait_until,
                    hold_s=self._longest_call_s(rpc.deadline),
                )
            if self.pacer is not None:
                await self.pacer.pace(
                    facts.model,
                    input_tokens=sizing.prompt_bounds(prompt, facts).low,
                    output_tokens=prompt.max_tokens,
                    wait_until=wait_until,
                )
            call.outcome = "in_call"
            try:
                yield call
            except errors.TiergateError as err:
                call.completion, call.outcome = err.completion, "failed"
                raise
            if call.completion is not None:
                call.outcome = "ok"
        finally:
            output: JsonObject | None = None
            try:
                output = await self._finish(call, reservation, facts, key)
            finally:
                # Even when cancelled here: the waiting calls must not wait on a lost leader.
                if lead is not None:
                    await lead.release(output)

    async def _finish(
        self, call: Call, reservation: Reservation | None, facts: ModelFacts, key: str | None
    ) -> JsonObject | None:
        completion = call.completion
        if reservation is not None and self.budgets is not None:
            usage = getattr(completion, "usage", None)
            # Priced at the road that answered, whichever the reservation assumed.
            priced = getattr(completion, "priced", None) or self._prices.facts(facts.model)
            cost = price(priced, usage, batch=False).total_nanos if usage else 0
            bounded = bool(getattr(completion, "bounded", False))
            if (call.outcome == "in_call" and not bounded) or bool(
                getattr(completion, "unreadable_bills", False)
            ):
                # Cancelled mid-call, or answered with a bill that could not be read: what the
                # upstream charged is unknown, so the call counts its worst case (a guess
                # below it could let a caller spend past its budget). A stream cancelled after
                # its start knows its input and that its output is at most max_tokens.
                cost = reservation.amount
            await self.budgets.settle(reservation, cost)
            self._refresh_soon()
        output = getattr(completion, "output", None)
        if key is not None and call.outcome == "ok" and isinstance(output, dict) and output:
            await self.cache.put(key, output)
            return output
        return None

    def _longest_call_s(self, deadline: float | None) -> float:
        """How long a call admitted now may still run: to its deadline, else every attempt
        of every billed call at the upstream timeout."""
        s = self._settings
        longest = s.upstream_timeout_s * s.max_attempts * (s.max_reasks + 1)
        return longest if deadline is None else min(longest, deadline - time.monotonic())

    def _refresh_soon(self) -> None:
        """Refresh the budget gauges at most once a second, off the call's path."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._refreshed < 1.0:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshed = loop.time()
            self._refreshing = asyncio.create_task(self.refresh_metrics())

    async def refresh_metrics(self) -> None:
        """Read every budget's current periods into the gauges."""
        if self.budgets is None:
            return
        try:
            self.metrics.budgets(await self.budgets.spend())
        except StoreUnavailable as exc:
            log.warning("budget.metrics_unavailable", error=str(exc))

    def _paced(self, outcome: str) -> None:
        self.metrics.paced.add(1, {"tiergate.outcome": outcome})

    def _invalid_reading(self, kind: str) -> None:
        self.metrics.invalid_readings.add(1, {"tiergate.kind": kind})

    def _lock_ttl_s(self, wait_until: float) -> float:
        s = self._settings
        longest = s.upstream_timeout_s * s.max_attempts * (s.max_reasks + 1)
        return max(1.0, min(longest, wait_until - asyncio.get_running_loop().time()) + 1.0)

    async def observe_response(self, response: httpx2.Response, model: str) -> None:
        """The rate-limit headers of a model call's response (``model`` is the one it asked
        for), for the pacing of every replica; readings are per model, as the API's limits
        are."""
        if (
            self.pacer is None
            or not model
            or not response.request.url.path.endswith("/v1/messages")
        ):
            return
        # Only the rate-limit headers, from the raw bytes: decoding all of them through the
        # header map costs more than the whole reading.
        headers = {
            key.decode("latin-1").lower(): value.decode("latin-1")
            for key, value in response.headers.raw
            if key[: len(_RATE_LIMIT_PREFIX)].lower() == _RATE_LIMIT_PREFIX
        }
        await self.pacer.observe(model, headers)


_RATE_LIMIT_PREFIX = ratelimits.PREFIX.encode()


def cached_usage(rpc: RpcContext) -> usage_pb2.Usage:
    """The ``Usage`` of an answer served from the response cache: nothing billed."""
    return usage_pb2.Usage(
        model=rpc.model, tier=rpc.tier.value, from_cache=True, cost=usage_pb2.Cost()
    )
