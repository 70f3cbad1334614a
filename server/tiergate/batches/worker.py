"""The batch worker: moves every running batch forward, one step at a time, from the store.

Each pass claims the running batches this replica owns or whose owner's lease lapsed (a killed
replica), then for each: cancels what a caller cancelled, sends the chunks not yet sent, polls
the sent ones, and collects the results of those that ended, each chunk's outcomes written in
one transaction. A replica killed anywhere repeats at most its last step: a chunk sent but not
yet recorded is the one window where a restart sends it again (and pays twice); everything else
is idempotent (results are fetched again until recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from typing import Any

import anthropic
import structlog
from anthropic.types.messages import MessageBatchIndividualResponse
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from tiergate import errors
from tiergate.calls.runner import TaskRunner
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.serving import status
from tiergate.tasks import TASKS
from tiergate.upstream import errors as upstream_errors

from . import intake
from .results import cancelled, failed, outcome_of, request_of
from .store import BatchStore, Chunk, ItemOutcome, State

log = structlog.get_logger("tiergate.batches")

BATCHES_IN_FLIGHT = "tiergate.batches.in_flight"
ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")


class BatchWorker:
    """Runs in the service's event loop until stopped."""

    def __init__(
        self,
        store: BatchStore,
        client: anthropic.AsyncAnthropic,
        runner: TaskRunner,
        settings: Settings,
        prices: PriceTable,
        *,
        meter: Meter | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._runner = runner
        self._settings = settings
        self._prices = prices
        self.owner = uuid.uuid4().hex
        """This replica's lease owner id."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._in_flight = 0
        if meter is not None:
            # Each running batch is leased to one replica at a time, so the replicas' gauges
            # add up to the running batches of the whole service.
            meter.create_observable_gauge(
                BATCHES_IN_FLIGHT,
                callbacks=[self._observe_in_flight],
                unit="{batch}",
                description="Running batches this replica worked on in its last pass.",
            )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """Take a step now (a batch was created or cancelled)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop polling and close the worker's upstream client (its own: left open, aiohttp
        logs "Unclosed client session" at exit)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # The worker's own upstream client: its connections close with it.
        await self._client.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch.worker_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.batch_poll_s)

    async def step(self) -> None:
        """One pass over every batch this replica may work on; purge expired results."""
        now = time.time()
        self._store.purge(now - self._settings.batch_retention_s)
        claimed = self._store.claim(self.owner, now, self._settings.batch_lease_s)
        for batch_id in claimed:
            try:
                await self._advance(batch_id)
            except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
                if upstream_errors.is_retryable_upstream(exc):
                    log.warning("batch.upstream_retry", batch=batch_id, error=type(exc).__name__)
                    continue
                self._fail(batch_id, upstream_errors.from_upstream(exc, size_field=""))
        records = [self._store.get(batch_id) for batch_id in claimed]
        self._in_flight = sum(1 for r in records if r is not None and r.state not in ENDED)

    def _observe_in_flight(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(self._in_flight)]

    async def _advance(self, batch_id: str) -> None:
        batch = self._store.get(batch_id)
        if batch is None:
            return
        for chunk in self._store.chunks(batch_id):
            if chunk.state == "collected":
                continue
            if batch.cancel_requested and chunk.state == "new":
                items = self._store.items(batch_id, chunk.number)
                self._store.record(batch_id, chunk.number, [cancelled(i) for i in items])
                continue
            if batch.cancel_requested and not chunk.cancel_sent:
                await self._client.messages.batches.cancel(chunk.upstream_id)
                self._store.update_chunk(batch_id, dataclasses.replace(chunk, cancel_sent=True))
            if chunk.state == "new":
                await self._send(batch_id, chunk)
            else:
                await self._collect(batch_id, chunk)
        if all(c.state == "collected" for c in self._store.chunks(batch_id)):
            state: State = "CANCELLED" if batch.cancel_requested else "SUCCEEDED"
            self._store.finish(batch_id, state, time.time())
            log.info("batch.ended", batch=batch_id, state=state)

    def _requests(self, batch_id: str, chunk: Chunk) -> list[Any]:
        requests: list[Any] = []
        for item in self._store.items(batch_id, chunk.number):
            task = TASKS[item.task]
            params = intake.upstream_params(task, request_of(item), self._settings, self._prices)
            requests.append(
                {"custom_id": f"{intake.UPSTREAM_ID_PREFIX}{item.index}", "params": params}
            )
        return requests

    async def _send(self, batch_id: str, chunk: Chunk) -> None:
        # Rendering (and, in _collect, checking) up to 100,000 items is CPU work: off the event
        # loop, so the task RPCs this replica serves meanwhile are not held up.
        requests = await asyncio.to_thread(self._requests, batch_id, chunk)
        sent = await self._client.messages.batches.create(requests=requests)
        self._store.update_chunk(
            batch_id, dataclasses.replace(chunk, state="submitted", upstream_id=sent.id)
        )
        log.info(
            "batch.sent", batch=batch_id, chunk=chunk.number, upstream=sent.id, items=len(requests)
        )

    async def _collect(self, batch_id: str, chunk: Chunk) -> None:
        upstream = await self._client.messages.batches.retrieve(chunk.upstream_id)
        if upstream.processing_status != "ended":
            return
        answers = [a async for a in await self._client.messages.batches.results(chunk.upstream_id)]
        outcomes = await asyncio.to_thread(self._outcomes, batch_id, chunk, answers)
        await asyncio.to_thread(self._store.record, batch_id, chunk.number, outcomes)
        log.info("batch.collected", batch=batch_id, chunk=chunk.number, items=len(outcomes))

    def _outcomes(
        self, batch_id: str, chunk: Chunk, answers: list[MessageBatchIndividualResponse]
    ) -> list[ItemOutcome]:
        """One outcome per item of ``chunk``, whatever the results said or left out."""
        items = {i.index: i for i in self._store.items(batch_id, chunk.number)}
        outcomes: dict[int, ItemOutcome] = {}
        for answer in answers:
            index = _index(answer.custom_id)
            item = items.get(index)
            if item is None or index in outcomes:
                log.warning("batch.unknown_result", batch=batch_id, custom_id=answer.custom_id)
                continue
            outcomes[index] = outcome_of(item, answer, self._runner)
        # An item the results never mention is accounted for all the same.
        missing = errors.UpstreamUnavailable("the model API returned no result for the item")
        for index, item in items.items():
            if index not in outcomes:
                outcomes[index] = failed(item, "failed", status.to_status(missing))
        return list(outcomes.values())

    def _fail(self, batch_id: str, err: errors.TiergateError) -> None:
        log.warning("batch.failed", batch=batch_id, reason=err.reason)
        self._store.finish(
            batch_id, "FAILED", time.time(), status.to_status(err).SerializeToString()
        )


def _index(custom_id: str) -> int:
    digits = custom_id.removeprefix(intake.UPSTREAM_ID_PREFIX)
    return int(digits) if digits.isdigit() else -1
