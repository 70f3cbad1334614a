"""Runs a task on a tier without gRPC: validate, prompt, size, model call, typed response, bill.

Every caller of the model goes through here: the gRPC handlers
(:mod:`tiergate.serving.task_service`), the batch worker, ``tiergate eval`` and shadow calls.

    runner = TaskRunner(settings, prices, model_client)
    response, bill = await runner.execute(TASKS["Classify"], request, Tier.FAST)
    bill.cost.total_nanos
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from google.protobuf.message import Message

from tiergate.calls import sizing
from tiergate.calls.partials import PARTIALS, Progress
from tiergate.calls.prompt import Prompt
from tiergate.config import Settings
from tiergate.ledger import Bill, ModelFacts, PriceTable, price
from tiergate.serving.rpc import RpcContext
from tiergate.tasks import Task
from tiergate.tasks.task import Serving
from tiergate.tiers import Tier
from tiergate.upstream.model_client import Completion, ModelClient
from tiergate.upstream.providers import otel_name

if TYPE_CHECKING:
    from tiergate.shared.gate import SharedState


class Slots(Protocol):
    """Bounds the calls in flight per tier (:class:`tiergate.serving.admission.Admission`)."""

    def slot(
        self, tier: Tier, *, deadline: float | None = None
    ) -> AbstractAsyncContextManager[Any]: ...


class TaskRunner:
    """Runs any task: the shared mechanics every caller of the model delegates to."""

    def __init__(self, settings: Settings, prices: PriceTable, model_client: ModelClient) -> None:
        self.settings = settings
        self.prices = prices
        self._model_client = model_client
        self.shared: SharedState | None = None
        """Budgets, response cache, coalescing and rate-limit pacing (``tiergate.shared``)."""

    async def execute(
        self,
        task: Task[Any, Any],
        request: Any,
        tier: Tier,
        *,
        deadline: float | None = None,
        admission: Slots | None = None,
        rpc: RpcContext | None = None,
        on_partial: Callable[[Message], Awaitable[None]] | None = None,
    ) -> tuple[Any, Bill]:
        """The task on ``tier`` without gRPC: validate, prompt, model call, typed response.

        The handler, ``tiergate eval`` and shadow calls all run tasks through here. Raises
        ``TiergateError`` (with what was billed in ``err.completion``); else the typed response
        and its bill. With ``on_partial`` (a task of :data:`~tiergate.calls.partials.PARTIALS`)
        the model's answer is streamed, and ``on_partial`` gets the response as far as it is
        written (:mod:`tiergate.calls.partials`); a response cache hit sends none.
        """
        task.validate(request)
        facts = self.facts(tier)
        if task.admit is not None:
            task.admit(request, Serving(facts, self.settings.upload_max_bytes))
        prompt = task.prompt(request)
        await self._check_fits(request, prompt, facts, deadline)
        slot = admission.slot(tier, deadline=deadline) if admission else contextlib.nullcontext()
        # Shared state (budget, response cache, coalescing, pacing) around the model call.
        # A budget reserves the dearest road the call may take.
        dearest = max(self._model_client.road_facts(facts), key=_worst_price)
        gate = self.shared.call(rpc, request, prompt, dearest) if self.shared and rpc else None
        async with gate or contextlib.nullcontext() as shared_call:
            if shared_call is not None and shared_call.hit_usage is not None:
                cached = Completion(output=shared_call.hit or {}, model=facts.model)
                bill = self.bill(tier, cached, from_cache=True)
                return task.respond(request, cached.output, bill.usage()), bill
            check = functools.partial(task.check, request)
            size_field = functools.partial(sizing.largest_field, request)
            async with slot:
                if on_partial is not None and task.rpc in PARTIALS:
                    completion = Completion(output={}, model=facts.model)
                    try:
                        await self._model_client.stream(
                            prompt,
                            facts=facts,
                            check=check,
                            size_field=size_field,
                            on_partial=Progress(PARTIALS[task.rpc], request, on_partial),
                            deadline=deadline,
                            completion=completion,
                        )
                    except asyncio.CancelledError:
                        if shared_call is not None:
                            shared_call.completed(completion)  # what is known of the bill
                        raise
                else:
                    completion = await self._model_client.complete(
                        prompt, facts=facts, check=check, size_field=size_field, deadline=deadline
                    )
            if shared_call is not None:
                shared_call.completed(completion)
        bill = self.bill(tier, completion)
        return task.respond(request, completion.output, bill.usage()), bill

    async def _check_fits(
        self, request: Any, prompt: Prompt, facts: ModelFacts, deadline: float | None
    ) -> None:
        """Refuse a prompt too large for the model's window before any billed call: by the
        estimate when it is certain, else by the free ``count_tokens`` endpoint."""
        fit = sizing.assess(prompt, facts)
        if fit is sizing.Fit.FITS:
            return
        counted = None
        if fit is sizing.Fit.UNSURE:
            counted = await self._model_client.count_tokens(prompt, facts=facts, deadline=deadline)
            if counted is None or counted <= sizing.room(facts, prompt.max_tokens):
                return
        tokens = counted if counted is not None else sizing.prompt_bounds(prompt, facts).low
        raise sizing.too_large(
            request, facts, prompt.max_tokens, tokens=tokens, counted=counted is not None
        )

    def facts(self, tier: Tier) -> ModelFacts:
        """The facts of the model that answers ``tier``."""
        return self.prices.facts(self.settings.model_for(tier))

    def bill(
        self, tier: Tier, completion: Completion, *, batch: bool = False, from_cache: bool = False
    ) -> Bill:
        """What ``completion`` billed on ``tier``, priced once by the ledger; ``batch``: billed
        through the Message Batches API, at its price; ``from_cache``: answered from the
        response cache, nothing billed."""
        tokens = completion.usage
        # Priced at the road that answered (its provider and endpoint scope), else list price.
        facts = completion.priced or self.facts(tier)
        called = completion.attempts > 0 and not from_cache
        return Bill(
            model=completion.model,
            tier=tier,
            tokens=tokens,
            cost=price(facts, tokens, batch=batch),
            billed_calls=completion.billed_calls,
            attempts=completion.attempts,
            request_id=completion.request_id,
            service_tier="batch" if batch else "",
            from_cache=from_cache,
            provider=completion.provider if called else "",
            provider_name=otel_name(completion.provider) if called else "",
            endpoint_scope=completion.scope if called else "",
        )


def _worst_price(facts: ModelFacts) -> tuple[int, int]:
    """Orders a model's facts on several roads by what a call may cost there."""
    return facts.output * facts.us_inference_percent, facts.input * facts.us_inference_percent
