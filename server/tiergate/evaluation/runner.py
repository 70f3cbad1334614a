"""Run every item on every tier through the server's own task code, and collect the verdict.

Each call goes through :meth:`tiergate.calls.runner.TaskRunner.execute`, the path the
gRPC handlers take (validation, prompt, model client with its retries and re-asks, checks, typed
response and its priced ``Usage``), with the task's tier replaced by the tier under test. At
most ``concurrency`` calls are in flight; a failed call is counted by status and never stops
the run.

    async with connect(settings) as model_client:
        verdict = await evaluate(task, dataset.items, tiers, settings, prices, model_client)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from tiergate import errors
from tiergate.calls.runner import TaskRunner
from tiergate.config import Settings
from tiergate.emulator import Emulator, EmulatorConfig
from tiergate.evaluation.dataset import Item
from tiergate.evaluation.judge import Judge
from tiergate.evaluation.scorers import Score, Scorer, as_json, scorer_for
from tiergate.evaluation.verdict import TierResult, Verdict, recommend
from tiergate.ledger import PriceTable
from tiergate.tasks import Task
from tiergate.tiers import Tier
from tiergate.upstream.failover import RoadClient
from tiergate.upstream.model_client import Completion, ModelClient
from tiergate.upstream.providers import ProviderTable
from tiergate.upstream.roads import build_roads, check_roads
from tiergate.upstream.transport import upstream_client

# Placeholder credential for the embedded emulator, which checks none.
_EMULATOR_KEY = "emulator-no-key"


def uses_emulator(settings: Settings) -> bool:
    """Whether calls go to the embedded emulator rather than the configured API."""
    return settings.uses_emulator


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[ModelClient]:
    """The model client ``tiergate serve`` would use: the embedded emulator when chosen."""
    emulator: Emulator | None = None
    base_url, api_key = settings.anthropic_base_url, settings.anthropic_api_key
    if uses_emulator(settings):
        emulator = Emulator(
            EmulatorConfig(
                latency=settings.emulator_latency, fixed_delay_s=settings.emulator_fixed_delay_s
            )
        )
        base_url, api_key = await emulator.start(host="127.0.0.1"), _EMULATOR_KEY
    client: ModelClient
    if emulator is not None:
        client = ModelClient(
            upstream_client(api_key=api_key or _EMULATOR_KEY, base_url=base_url, settings=settings),
            settings,
        )
    else:
        # The roads `tiergate serve` would take, failover included.
        table = ProviderTable.load()
        check_roads(settings, os.environ, table, PriceTable.load())
        client = RoadClient(build_roads(settings, os.environ, table=table), settings)
    try:
        yield client
    finally:
        await client.close()
        if emulator is not None:
            await emulator.stop()


class Progress:
    """A one-line progress bar on a terminal; silent otherwise (pipes, files, CI logs)."""

    def __init__(self, label: str, total: int, stream: TextIO, width: int = 30) -> None:
        self._label, self._total, self._stream, self._width = label, total, stream, width
        self._done = 0
        self.shown = stream.isatty()

    def advance(self) -> None:
        self._done += 1
        if not self.shown:
            return
        filled = self._width * self._done // max(1, self._total)
        bar = "#" * filled + "." * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {self._done}/{self._total}")
        if self._done >= self._total:
            self._stream.write("\n")
        self._stream.flush()


@dataclass(frozen=True)
class Outcome:
    """One item on one tier."""

    tier: Tier
    line: int
    status: str
    """``OK``, a gRPC status name, or ``JUDGE_`` and one when the judge failed."""
    cost_nanos: int
    latency_ms: float
    score: Score | None = None
    judge_cost_nanos: int = 0


async def run_item(
    runner: TaskRunner, task: Task[Any, Any], scorer: Scorer, item: Item, tier: Tier
) -> Outcome:
    """Run ``item`` on ``tier`` and score it; failures become an outcome, never an exception."""
    started = time.perf_counter()
    try:
        response, _ = await runner.execute(task, item.request, tier)
    except errors.TiergateError as err:
        latency = (time.perf_counter() - started) * 1000
        cost = _billed(runner, tier, err.completion)
        return Outcome(tier, item.line, err.code.name, cost, latency)
    latency = (time.perf_counter() - started) * 1000
    cost = int(response.usage.cost.total_nanos)
    try:
        score = await scorer.score(item.request, as_json(response), item.expected)
    except errors.TiergateError as err:
        judged = _billed(runner, Tier.FRONTIER, err.completion)
        return Outcome(tier, item.line, f"JUDGE_{err.code.name}", cost, latency, None, judged)
    return Outcome(tier, item.line, "OK", cost, latency, score, score.judge_cost_nanos)


def _billed(runner: TaskRunner, tier: Tier, completion: object | None) -> int:
    if not isinstance(completion, Completion) or not completion.billed_calls:
        return 0
    return runner.bill(tier, completion).cost.total_nanos


async def evaluate(
    task: Task[Any, Any],
    items: Sequence[Item],
    tiers: Sequence[Tier],
    settings: Settings,
    prices: PriceTable,
    model_client: ModelClient,
    *,
    concurrency: int = 4,
    progress: TextIO | None = None,
    skipped_lines: int = 0,
) -> Verdict:
    """Every item on every tier, at most ``concurrency`` at once; the verdict over them."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    runner = TaskRunner(settings, prices, model_client)
    judge = Judge(model_client, settings, prices)
    scorer = scorer_for(task.rpc, judge)
    total = len(items) * len(tiers)
    bar = Progress(f"eval {task.rpc.lower()}", total, progress) if progress else None
    jobs: asyncio.Queue[tuple[Item, Tier]] = asyncio.Queue()
    for item in items:
        for tier in tiers:
            jobs.put_nowait((item, tier))
    outcomes: list[Outcome] = []

    async def worker() -> None:
        while not jobs.empty():
            item, tier = jobs.get_nowait()
            outcomes.append(await run_item(runner, task, scorer, item, tier))
            if bar is not None:
                bar.advance()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, jobs.qsize()) or 1)))
    results = [tally(tier, settings.model_for(tier), outcomes) for tier in tiers]
    return Verdict(
        task=task.rpc,
        items=len(items),
        tiers=results,
        recommendation=recommend(results),
        scorer=scorer.name,
        judged=scorer.judged,
        unit=scorer.unit,
        judge_model=judge.model if scorer.judged else None,
        judge_cost_nanos=sum(o.judge_cost_nanos for o in outcomes),
        skipped_lines=skipped_lines,
    )


def tally(tier: Tier, model: str, outcomes: Sequence[Outcome]) -> TierResult:
    """One tier's totals from its outcomes."""
    mine = [o for o in outcomes if o.tier is tier]
    scores = [o.score for o in mine if o.score is not None]
    errors_by_status: dict[str, int] = {}
    for outcome in mine:
        if outcome.score is None:
            errors_by_status[outcome.status] = errors_by_status.get(outcome.status, 0) + 1
    return TierResult(
        tier=tier,
        model=model,
        scored=len(scores),
        correct=sum(1 for s in scores if s.correct),
        errors=errors_by_status,
        cost_nanos=sum(o.cost_nanos for o in mine),
        latencies_ms=tuple(o.latency_ms for o in mine),
        matched=sum(s.matched for s in scores),
        predicted=sum(s.predicted for s in scores),
        expected=sum(s.expected for s in scores),
    )
