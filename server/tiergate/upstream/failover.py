"""Failover between the configured roads: the model client the service runs on.

A call tries the roads in order, skipping those whose breaker is open (:mod:`.breakers`), and
moves to the next road on a failure another road can fix::

    client = RoadClient(build_roads(settings, os.environ, table=table), settings, meter)
    completion = await client.complete(prompt, facts=facts, check=check, size_field=field)
    completion.provider, completion.scope, completion.priced  # who answered, at which price
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import structlog
from opentelemetry.metrics import Meter

from tiergate import errors
from tiergate.calls.prompt import JsonObject, Prompt
from tiergate.config import Settings
from tiergate.ledger import ModelFacts
from tiergate.telemetry.spans import ROAD
from tiergate.upstream.breakers import SharedBreakers
from tiergate.upstream.model_client import (
    Completion,
    ModelClient,
)
from tiergate.upstream.output import OutputCheck, SizeField
from tiergate.upstream.roads import Road
from tiergate.upstream.streamed import PartialSink

log = structlog.get_logger("tiergate.roads")


class RoadClient(ModelClient):
    """The model client of the configured roads, with failover between them.

    A call tries the roads in order, skipping those whose breaker is open. A failure another
    road can fix (429 rate or spend limit, 529, 5xx, network, an attempt's timeout) moves it to
    the next road at once, within the caller's deadline, as long as nothing was billed yet; a
    failure no road can fix (400, 413, a refusal, an unusable answer after its re-asks) does
    not. A re-ask after a bad answer stays on the road that answered (the model client asks
    it). When every road failed, the next round starts after the backoff, up to
    ``max_attempts`` rounds; a round retries only the roads whose retry budget allows it.
    A stream takes the same rounds as long as no partial went to its caller either. It keeps
    :class:`ModelClient`'s interface (``complete``, ``stream``, ``count_tokens``, ``close``) so
    the task runner, shadow calls and evaluation use it as is.
    """

    def __init__(
        self,
        roads: list[Road],
        settings: Settings,
        meter: Meter | None = None,
        shared: SharedBreakers | None = None,
    ) -> None:
        if not roads:
            raise ValueError("at least one road is needed")
        self.roads = roads
        self._shared = shared if len(roads) > 1 else None
        self._rounds = settings.max_attempts if len(roads) > 1 else 1
        self._failovers = (
            meter.create_counter(
                "tiergate.upstream.failovers",
                unit="{call}",
                description="Calls that left a road for the next one, by the road left.",
            )
            if meter is not None
            else None
        )

    async def close(self) -> None:
        for road in self.roads:
            await road.client.close()

    def road_facts(self, facts: ModelFacts) -> list[ModelFacts]:
        """``facts`` as billed on each road, in order."""
        return [road.table.facts(road.name, road.scope, facts) for road in self.roads]

    async def complete(
        self,
        prompt: Prompt,
        *,
        facts: ModelFacts,
        check: OutputCheck,
        size_field: SizeField,
        deadline: float | None = None,
    ) -> Completion:
        spent_attempts = 0

        async def call(road: Road, priced: ModelFacts) -> Completion:
            nonlocal spent_attempts
            try:
                completion = await road.client.complete(
                    prompt, facts=priced, check=check, size_field=size_field, deadline=deadline
                )
            except errors.TiergateError as err:
                spent = err.completion if isinstance(err.completion, Completion) else None
                if spent is not None:
                    _stamp(spent, road, priced)
                    spent.attempts += spent_attempts
                spent_attempts = spent.attempts if spent is not None else spent_attempts + 1
                raise
            completion.attempts += spent_attempts
            return _stamp(completion, road, priced)

        def settled(err: errors.TiergateError) -> bool:
            spent = err.completion if isinstance(err.completion, Completion) else None
            return not fixable_elsewhere(err) or (spent is not None and spent.billed_calls > 0)

        return await self._over_roads(facts, call, settled, deadline)

    async def stream(
        self,
        prompt: Prompt,
        *,
        facts: ModelFacts,
        check: OutputCheck,
        size_field: SizeField,
        on_partial: PartialSink,
        deadline: float | None = None,
        completion: Completion | None = None,
    ) -> Completion:
        """As :meth:`complete`, streamed (:meth:`ModelClient.stream`): the same rounds over
        the open roads, moving on only while nothing was billed or sent to the caller."""
        streamed = completion or Completion(output={}, model=facts.model)
        sent = False

        async def sink(growing: JsonObject, complete: JsonObject) -> bool:
            nonlocal sent
            moved = await on_partial(growing, complete)
            sent = sent or moved
            return moved

        async def call(road: Road, priced: ModelFacts) -> Completion:
            _stamp(streamed, road, priced)
            await road.client.stream(
                prompt,
                facts=priced,
                check=check,
                size_field=size_field,
                on_partial=sink,
                deadline=deadline,
                completion=streamed,
            )
            return streamed

        def settled(err: errors.TiergateError) -> bool:
            return sent or streamed.billed_calls > 0 or not fixable_elsewhere(err)

        return await self._over_roads(facts, call, settled, deadline)

    async def _over_roads(
        self,
        facts: ModelFacts,
        call: Callable[[Road, ModelFacts], Awaitable[Completion]],
        settled: Callable[[errors.TiergateError], bool],
        deadline: float | None,
    ) -> Completion:
        """``call`` on the open roads in order, with ``facts`` as each bills them, until one
        answers; a failure for which ``settled`` holds ends the call there. When every road
        failed, the next round starts after the backoff, up to ``max_attempts`` rounds, on the
        roads whose retry budget allows a retry."""
        last: errors.TiergateError | None = None
        for round_ in range(self._rounds):
            if self._shared is not None:
                for road in self.roads:
                    await self._shared.check(road.breaker)
            tried = False
            for road in self._open_roads(retry=round_ > 0):
                tried = True
                priced = road.table.facts(road.name, road.scope, facts)
                token = ROAD.set(road.label(priced))
                try:
                    completion = await call(road, priced)
                except errors.TiergateError as err:
                    if settled(err):
                        road.verdict(err)
                        raise
                    was = road.breaker.state
                    road.breaker.failed()
                    if self._shared is not None and was != "open" == road.breaker.state:
                        await self._shared.opened(road.breaker)
                    last = err
                    if self._failovers is not None:
                        self._failovers.add(1, {"road": road.name, "reason": type(err).__name__})
                    log.info("road.failover", road=road.name, error=type(err).__name__)
                    if _expired(deadline):
                        raise
                    continue
                finally:
                    ROAD.reset(token)
                was = road.breaker.state
                road.breaker.succeeded()
                if self._shared is not None and was != "closed":
                    await self._shared.closed(road.breaker)
                return completion
            if last is None or not tried:
                break  # no road was open to try, or none may be retried
            if round_ + 1 < self._rounds:
                wait = last.retry_after_s if last.retry_after_s is not None else 0.5 * 2**round_
                if deadline is not None and time.monotonic() + wait >= deadline:
                    raise last
                await asyncio.sleep(wait)
        if last is not None:
            raise last
        cooldown = min(road.breaker.cooldown_s for road in self.roads)
        raise errors.UpstreamUnavailable(
            "every road to the model is failing (each one's breaker is open)",
            retry_after_s=cooldown,
        )

    def _open_roads(self, *, retry: bool) -> Iterator[Road]:
        """The roads a call may take now, in order (a half-open one lets one probe through).
        A ``retry`` (a later round) takes only the roads whose retry budget allows it, so a
        sustained outage of every road is not multiplied by the rounds."""
        for road in self.roads:
            if retry and not road.client.retry_budget.may_retry():
                continue
            if len(self.roads) == 1 or road.breaker.allows():
                yield road

    async def count_tokens(
        self, prompt: Prompt, *, facts: ModelFacts, deadline: float | None = None
    ) -> int | None:
        # Counting is free and optional: ask the first road whose breaker is closed, never a
        # road that is down (a None lets the call itself decide).
        for road in self.roads:
            if road.breaker.state == "closed":
                return await road.client.count_tokens(prompt, facts=facts, deadline=deadline)
        return None


def fixable_elsewhere(err: errors.TiergateError) -> bool:
    """A failure another road may not have: rate or spend limits, overload, 5xx, network, an
    attempt's timeout. Not the request's own fault, a refusal, or an unusable answer."""
    return isinstance(
        err, (errors.UpstreamRateLimited, errors.UpstreamUnavailable, errors.UpstreamSpendLimit)
    )


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _stamp(completion: Completion, road: Road, priced: ModelFacts) -> Completion:
    completion.provider = road.name
    completion.scope = road.scope
    completion.priced = priced
    return completion
