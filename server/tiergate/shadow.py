"""Shadow comparisons: mirror a share of live calls to another tier and score the agreement.

``TIERGATE_SHADOW=Classify=balanced:0.05,Extract=balanced:0.02`` sends 5% of successful
Classify calls and 2% of Extract calls again, on the balanced tier, once the caller's reply has
gone out. The shadow answer is scored against the primary one with the task's own scorer
(:mod:`tiergate.evaluation.scorers`), and exported as ``tiergate.shadow.agreement``.

The caller never notices: the mirror starts when the RPC is done, its cost never enters the
caller's ``Usage``, its failures are counted and logged, never raised. It is bounded: at most
``TIERGATE_SHADOW_CONCURRENCY`` calls in flight (beyond that a mirror is dropped, counted) and at
most ``TIERGATE_SHADOW_BUDGET_USD`` spent per UTC day (a day's spend may overshoot by the calls
already in flight when it is reached). The tier binding stays fixed: callers choose nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

import grpc
import structlog
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GEN_AI_REQUEST_MODEL

from tiergate import errors
from tiergate.config import Settings, env_name
from tiergate.evaluation import home_tier, parse_tier
from tiergate.evaluation.judge import Judge
from tiergate.evaluation.scorers import Scorer, as_json, scorer_for
from tiergate.tasks import TASKS, Task
from tiergate.telemetry import INSTRUMENTATION_SCOPE
from tiergate.telemetry.instruments import RATIO_BUCKETS, CostLedger
from tiergate.telemetry.spans import TASK, TIER
from tiergate.tiers import Tier
from tiergate.upstream.model_client import Completion

if TYPE_CHECKING:
    from tiergate.calls.runner import TaskRunner
    from tiergate.ledger import PriceTable
    from tiergate.upstream.model_client import ModelClient

log = structlog.get_logger("tiergate.shadow")

AGREEMENT = "tiergate.shadow.agreement"
COST = "tiergate.shadow.cost"
CALLS = "tiergate.shadow.calls"
SHADOW_TIER = "tiergate.shadow_tier"
OUTCOME = "tiergate.outcome"
NANOS_PER_USD = 1_000_000_000


@dataclass(frozen=True)
class Route:
    """Mirror ``fraction`` of ``rpc``'s successful calls to ``tier``."""

    rpc: str
    tier: Tier
    fraction: float


@dataclass(frozen=True)
class ShadowPlan:
    routes: Mapping[str, Route]
    budget_nanos: int
    """Most shadow calls may spend per UTC day."""
    concurrency: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ShadowPlan | None:
        """The plan, None when shadowing is off; ValueError naming the variable when invalid."""
        return parse(settings.shadow, settings.shadow_budget_usd, settings.shadow_concurrency)


def parse(spec: str, budget_usd: str, concurrency: int) -> ShadowPlan | None:
    """Parse ``Task=tier:fraction,...`` and the daily budget; None when ``spec`` is empty."""
    name = env_name("shadow")
    if not spec.strip():
        return None
    routes: dict[str, Route] = {}
    for entry in spec.split(","):
        rpc, _, target = entry.strip().partition("=")
        tier_label, _, raw_fraction = target.partition(":")
        if rpc not in TASKS or not tier_label or not raw_fraction:
            raise ValueError(
                f"{name}: {entry.strip()!r} is not TASK=TIER:FRACTION with TASK one of"
                f" {', '.join(TASKS)}"
            )
        try:
            tier = parse_tier(tier_label)
            fraction = float(raw_fraction)
        except ValueError as exc:
            raise ValueError(f"{name}: {entry.strip()!r}: {exc}") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"{name}: {rpc}'s fraction must be above 0 and at most 1")
        if tier is home_tier(TASKS[rpc]):
            raise ValueError(f"{name}: {rpc} already runs on {tier.label}; shadow another tier")
        if rpc in routes:
            raise ValueError(f"{name}: {rpc} is listed twice")
        routes[rpc] = Route(rpc, tier, fraction)
    budget = env_name("shadow_budget_usd")
    try:
        nanos = Decimal(budget_usd.strip()) * NANOS_PER_USD
    except InvalidOperation:
        raise ValueError(f"{budget} is required with {name}: US dollars per UTC day") from None
    if not nanos.is_finite() or nanos <= 0 or nanos != nanos.to_integral_value():
        raise ValueError(f"{budget} must be a positive amount of US dollars (nano-dollar exact)")
    if concurrency < 1:
        raise ValueError(f"{env_name('shadow_concurrency')} must be at least 1")
    return ShadowPlan(routes, int(nanos), concurrency)


def _labels(rpc: str, tier: Tier, shadow: Tier) -> dict[str, str]:
    """Log fields of a mirror (the names the per-RPC log line uses)."""
    return {"task": rpc, "tier": tier.label, "shadow_tier": shadow.label}


def _attributes(labels: dict[str, str]) -> dict[str, str]:
    """Metric attributes of a mirror (the names the service's other metrics use)."""
    return {TASK: labels["task"], TIER: labels["tier"], SHADOW_TIER: labels["shadow_tier"]}


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


class DailyBudget:
    """Nano-dollars spent per UTC day against a limit; a new day starts from zero."""

    def __init__(self, limit_nanos: int, today: Callable[[], datetime.date] = utc_today) -> None:
        self.limit_nanos = limit_nanos
        self._today = today
        self._day = today()
        self._spent = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._spent = day, 0

    @property
    def spent_nanos(self) -> int:
        with self._lock:
            self._roll()
            return self._spent

    def open(self) -> bool:
        """Whether today's spend is still under the limit."""
        return self.spent_nanos < self.limit_nanos

    def spend(self, nanos: int) -> None:
        with self._lock:
            self._roll()
            self._spent += nanos


class ShadowInstruments:
    """The shadow's metrics, on the service's meter."""

    def __init__(self, meter: Meter) -> None:
        self.agreement = meter.create_histogram(
            AGREEMENT,
            unit="1",
            description="1 when a shadow answer agrees with the primary one by the task's"
            " scorer, else 0; by task, tier and shadow tier.",
            explicit_bucket_boundaries_advisory=list(RATIO_BUCKETS),
        )
        self.cost = CostLedger()
        meter.create_observable_counter(
            COST,
            callbacks=[self.cost.observe],
            unit="USD",
            description="What shadow calls (and their judging) cost; never billed to callers.",
        )
        self.calls = meter.create_counter(
            CALLS,
            unit="{call}",
            description="Shadow calls by outcome: agreed, disagreed, failed, or dropped because"
            " the shadow was full or over its daily budget.",
        )


class Shadow:
    """Mirrors successful calls of the routed tasks; ``offer`` is all the handler calls."""

    def __init__(
        self,
        plan: ShadowPlan,
        runner: TaskRunner,
        settings: Settings,
        meter: Meter,
        judge: Judge | None = None,
        *,
        sample: Callable[[], float] = random.random,
        today: Callable[[], datetime.date] = utc_today,
    ) -> None:
        self.plan = plan
        self.budget = DailyBudget(plan.budget_nanos, today)
        self.outcomes: dict[str, int] = {}
        """Shadow calls by outcome, as counted in ``tiergate.shadow.calls``."""
        self._runner = runner
        self._settings = settings
        self._judge = judge
        self.sample = sample
        """Draws a number in [0, 1) per call; below the route's fraction, the call is mirrored."""
        self._instruments = ShadowInstruments(meter)
        self._reserved = 0
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Mirrors accepted and not finished (waiting for their RPC's end, or running)."""
        return self._reserved

    def offer(
        self,
        task: Task[Any, Any],
        request: Any,
        response: Any,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """Maybe mirror this successful call once its RPC is done; never raises."""
        try:
            route = self.plan.routes.get(task.rpc)
            if route is None or self.sample() >= route.fraction:
                return
            home = home_tier(task)
            labels = _labels(task.rpc, home, route.tier)
            if self._reserved >= self.plan.concurrency:
                self._count("dropped_full", labels)
                return
            if not self.budget.open():
                self._count("dropped_budget", labels)
                return
            self._reserved += 1
            loop = asyncio.get_running_loop()

            def start(_context: object) -> None:
                if self._closed:
                    self._reserved -= 1
                    return
                # A fresh context: the mirror is not part of the caller's RPC (span, labels).
                coro = self._mirror(task, request, response, home, route.tier)
                mirror = loop.create_task(coro, context=contextvars.Context())
                self._running.add(mirror)
                mirror.add_done_callback(self._finished)

            # Runs when the RPC is over, the reply sent: the caller never waits for a mirror.
            # The stubs want their own callback class; any one-argument callable is what grpc takes.
            done = cast(
                "grpc.aio._DoneCallback[Any, Any]",
                lambda ctx: loop.call_soon_threadsafe(start, ctx),
            )
            context.add_done_callback(done)
        except Exception:
            log.exception("shadow.bug", task=task.rpc)

    def _finished(self, mirror: asyncio.Task[None]) -> None:
        self._running.discard(mirror)
        self._reserved -= 1

    async def _mirror(
        self, task: Task[Any, Any], request: Any, primary: Any, tier: Tier, shadow: Tier
    ) -> None:
        labels = _labels(task.rpc, tier, shadow)
        scorer = scorer_for(task.rpc, self._judge)
        model = self._settings.model_for(shadow)
        try:
            response, _ = await self._runner.execute(task, request, shadow)
            self._spend_nanos(int(response.usage.cost.total_nanos), labels, model)
            await self.compare(scorer, request, primary, response, labels)
        except errors.TiergateError as err:
            self._spend(err.completion, shadow, labels, model)
            self._count("failed", labels)
            log.warning("shadow.failed", **labels, status=err.code.name, reason=err.reason)
        except Exception:
            # A bug must not end as an unobserved task exception: count it and say where.
            self._count("failed", labels)
            log.exception("shadow.bug", **labels)

    async def compare(
        self,
        scorer: Scorer,
        request: Any,
        primary: Any,
        response: Any,
        labels: dict[str, str],
    ) -> None:
        """Score ``response`` against ``primary``; record it, and log a disagreement."""
        try:
            score = await scorer.score(
                request, as_json(response), scorer.reference(request, primary)
            )
        except errors.TiergateError as err:
            judge_model = self._settings.model_for(Tier.FRONTIER)
            self._spend(err.completion, Tier.FRONTIER, labels, judge_model)
            self._count("failed", labels)
            log.warning("shadow.judge_failed", **labels, status=err.code.name)
            return
        if score.judge_cost_nanos:
            judge_model = self._settings.model_for(Tier.FRONTIER)
            self._spend_nanos(score.judge_cost_nanos, labels, judge_model)
        self._instruments.agreement.record(1.0 if score.correct else 0.0, _attributes(labels))
        self._count("agreed" if score.correct else "disagreed", labels)
        if not score.correct:
            # Ids and counts only: request and answer text never enter a log line.
            log.info(
                "shadow.disagreement",
                **labels,
                primary_request_id=primary.usage.request_id,
                shadow_request_id=response.usage.request_id,
                primary_model=primary.usage.model,
                shadow_model=response.usage.model,
                matched=score.matched,
                expected=score.expected,
                judged=scorer.judged,
            )

    def _spend(
        self, completion: object | None, tier: Tier, labels: dict[str, str], model: str
    ) -> None:
        if isinstance(completion, Completion) and completion.billed_calls:
            nanos = self._runner.bill(tier, completion).cost.total_nanos
            self._spend_nanos(nanos, labels, model)

    def _spend_nanos(self, nanos: int, labels: dict[str, str], model: str) -> None:
        self.budget.spend(nanos)
        self._instruments.cost.add(nanos, {**_attributes(labels), GEN_AI_REQUEST_MODEL: model})

    def _count(self, outcome: str, labels: dict[str, str]) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self._instruments.calls.add(1, {**_attributes(labels), OUTCOME: outcome})

    async def wait_idle(self) -> None:
        """Wait until every accepted mirror has finished (tests use it)."""
        while self._reserved:
            if self._running:
                await asyncio.gather(*list(self._running), return_exceptions=True)
            else:
                await asyncio.sleep(0.01)  # accepted; starts when its RPC is done

    async def close(self) -> None:
        """Cancel every mirror still running and start no more (the process is stopping)."""
        self._closed = True
        for mirror in list(self._running):
            mirror.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)


def shadow_for(
    plan: ShadowPlan,
    settings: Settings,
    prices: PriceTable,
    meters: MeterProvider,
    runner: TaskRunner,
    model_client: ModelClient,
) -> Shadow:
    """The shadow of a starting service, on its meter provider and model client."""
    judge = Judge(model_client, settings, prices)
    return Shadow(plan, runner, settings, meters.get_meter(INSTRUMENTATION_SCOPE), judge)
