"""The gRPC handlers: each RPC runs its task on its tier through one shared path.

bytes -> identity, request -> task (validate, prompt) -> admission -> model client -> ledger
-> task (typed response). The handlers are made from the service descriptor and
:data:`~tiergate.tasks.TASKS`, one generic handler per RPC, with no per-RPC code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any, Protocol

import grpc
import structlog
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry import trace

from tiergate import errors, sizing, status
from tiergate.admission import Admission
from tiergate.auth import Authenticator
from tiergate.config import Settings
from tiergate.ledger import Bill, ModelFacts, PriceTable
from tiergate.model_client import Completion, ModelClient
from tiergate.prompt import Prompt
from tiergate.rpc import RpcContext
from tiergate.shared.response_cache import wants_cache
from tiergate.tasks import TASKS, Task
from tiergate.telemetry import Rpc, Telemetry
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2

if TYPE_CHECKING:
    from tiergate.shared.gate import SharedState

log = structlog.get_logger("tiergate.rpc")

SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]


class Mirror(Protocol):
    """What the runner hands each successful call to (the shadow of :mod:`tiergate.shadow`)."""

    def offer(
        self,
        task: Task[Any, Any],
        request: Any,
        response: Any,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None: ...


class TaskRunner:
    """Runs any task: the shared mechanics every handler delegates to."""

    def __init__(
        self,
        settings: Settings,
        prices: PriceTable,
        model_client: ModelClient,
        telemetry: Telemetry | None = None,
        *,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._settings = settings
        self._prices = prices
        self._model_client = model_client
        self._telemetry = telemetry or Telemetry(prices=prices)
        self._auth = authenticator or Authenticator()
        self.admission = Admission(
            limit=settings.max_concurrency,
            max_queue=settings.max_queue,
            max_wait_s=settings.queue_timeout_s,
        )
        self.shadow: Mirror | None = None
        """Mirrors a share of successful calls to another tier (``TIERGATE_SHADOW``)."""
        self.shared: SharedState | None = None
        """Budgets, response cache, coalescing and rate-limit pacing (``tiergate.shared``)."""

    async def run(
        self,
        task: Task[Any, Any],
        request_type: type[Message],
        raw: bytes,
        context: grpc.aio.ServicerContext[bytes, Message],
    ) -> Message:
        """Answer one task RPC from its request bytes; every failure leaves as a rich status."""
        tier = task.tier
        started = time.perf_counter()
        metadata = tuple(context.invocation_metadata() or ())
        rpc = RpcContext(
            task=task.rpc,
            tier=tier,
            model=self._settings.model_for(tier),
            caller=self._auth.identify(context, metadata),
            deadline=_deadline(context),
            response_cache=wants_cache(metadata),
        )
        bill: Bill | None = None
        outcome = "OK"
        traced = self._telemetry.rpc_started(
            rpc, method=f"/{SERVICE.full_name}/{task.rpc}", metadata=metadata, peer=context.peer()
        )
        try:
            if self._auth.required and not rpc.caller.verified:
                raise errors.Unauthenticated("a valid bearer token is required")
            request = _parse(request_type, raw)
            if request.ByteSize() > self._settings.max_message_bytes:
                raise errors.RequestTooLarge(
                    [
                        errors.FieldViolation(
                            sizing.largest_field(request),
                            f"the request exceeds {self._settings.max_message_bytes} bytes",
                        )
                    ]
                )
            response: Message
            response, bill = await self.execute(
                task, request, tier, deadline=rpc.deadline, admission=self.admission, rpc=rpc
            )
            if self.shadow is not None:
                self.shadow.offer(task, request, response, context)
            return response
        except errors.TiergateError as err:
            outcome = err.code.name
            if isinstance(err.completion, Completion):
                bill = self.bill(tier, err.completion)
            await context.abort_with_status(
                status.grpc_status(err, time_left_s=context.time_remaining())
            )
        except asyncio.CancelledError:
            # The caller went away or its deadline passed: the upstream request is cancelled
            # with this task; nobody is left to answer.
            outcome = grpc.StatusCode.CANCELLED.name
            raise
        except Exception:
            # A bug: log it with its traceback, answer INTERNAL without internals.
            outcome = grpc.StatusCode.INTERNAL.name
            log.exception("rpc.bug", task=task.rpc)
            bug = errors.TiergateError("internal error; the service logged it")
            await context.abort_with_status(status.grpc_status(bug))
        finally:
            duration_s = time.perf_counter() - started
            self._telemetry.rpc_replied(traced)
            # The span's totals, the metrics and the log line wait until the answer is sent:
            # none of them is worth a caller's time.
            asyncio.get_running_loop().call_soon(
                self._finish, rpc, traced, bill, outcome, duration_s
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _finish(
        self, rpc: RpcContext, traced: Rpc, bill: Bill | None, outcome: str, duration_s: float
    ) -> None:
        with trace.use_span(traced.span, end_on_exit=False):  # the log line's trace ids
            try:
                self._log(rpc, bill, outcome, duration_s)
            finally:
                self._telemetry.rpc_finished(traced, bill, outcome)

    async def execute(
        self,
        task: Task[Any, Any],
        request: Any,
        tier: Tier,
        *,
        deadline: float | None = None,
        admission: Admission | None = None,
        rpc: RpcContext | None = None,
    ) -> tuple[Any, Bill]:
        """The task on ``tier`` without gRPC: validate, prompt, model call, typed response.

        The handler, ``tiergate eval`` and shadow calls all run tasks through here. Raises
        ``TiergateError`` (with what was billed in ``err.completion``); else the typed response
        and its bill.
        """
        task.validate(request)
        prompt = task.prompt(request)
        facts = self._prices.facts(self._settings.model_for(tier))
        await self._check_fits(request, prompt, facts, deadline)
        slot = admission.slot(tier, deadline=deadline) if admission else contextlib.nullcontext()
        # Shared state (budget, response cache, coalescing, pacing) around the model call.
        gate = self.shared.call(rpc, request, prompt, facts) if self.shared and rpc else None
        async with gate or contextlib.nullcontext() as shared_call:
            if shared_call is not None and shared_call.hit_usage is not None:
                cached = Completion(output=shared_call.hit or {}, model=facts.model)
                bill = self.bill(tier, cached, from_cache=True)
                return task.respond(request, cached.output, bill.usage()), bill
            async with slot:
                completion = await self._model_client.complete(
                    prompt,
                    facts=facts,
                    check=functools.partial(task.check, request),
                    size_field=functools.partial(sizing.largest_field, request),
                    deadline=deadline,
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

    def bill(
        self, tier: Tier, completion: Completion, *, batch: bool = False, from_cache: bool = False
    ) -> Bill:
        """What ``completion`` billed on ``tier``, priced once by the ledger; ``batch``: billed
        through the Message Batches API, at its price; ``from_cache``: answered from the
        response cache, nothing billed."""
        tokens = completion.usage
        return Bill(
            model=completion.model,
            tier=tier,
            tokens=tokens,
            cost=self._prices.cost(self._settings.model_for(tier), tokens, batch=batch),
            billed_calls=completion.billed_calls,
            attempts=completion.attempts,
            request_id=completion.request_id,
            service_tier="batch" if batch else "",
            from_cache=from_cache,
        )

    def _log(self, rpc: RpcContext, bill: Bill | None, outcome: str, duration_s: float) -> None:
        model = rpc.model
        fields: dict[str, Any] = {
            "task": rpc.task,
            "caller": rpc.caller.label,
            "tier": rpc.tier.label,
            "model": model,
            "status": outcome,
            "duration_ms": round(duration_s * 1000, 2),
        }
        if rpc.caller.claimed:
            fields["claimed_caller"] = rpc.caller.claimed
        if bill is not None and bill.billed_calls:
            tokens = bill.tokens
            fields.update(
                input_tokens=tokens.input_tokens,
                cache_creation_input_tokens=tokens.cache_creation_input_tokens,
                cache_read_input_tokens=tokens.cache_read_tokens,
                output_tokens=tokens.output_tokens,
                cost_nanos=bill.cost.total_nanos,
                billed_calls=bill.billed_calls,
                attempts=bill.attempts,
            )
        log.info("rpc", **fields)


def _deadline(context: grpc.aio.ServicerContext[bytes, Message]) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _parse(request_type: type[Message], raw: bytes) -> Message:
    """The request message of ``raw``; bytes that are no such message are the caller's fault."""
    try:
        return request_type.FromString(raw)
    except DecodeError:
        # Nothing in undecodable bytes can be trusted to name a field, so the violation names
        # none: an empty path stands for the request as a whole.
        raise errors.InvalidRequest(
            [
                errors.FieldViolation(
                    "",
                    f"the request is not a valid {request_type.DESCRIPTOR.full_name}"
                    " (truncated, or a string field that is not UTF-8)",
                )
            ]
        ) from None


def _serialize(response: Message) -> bytes:
    return response.SerializeToString()


def _handler(
    runner: TaskRunner, task: Task[Any, Any], request_type: type[Message]
) -> grpc.RpcMethodHandler[bytes, Message]:
    async def behaviour(raw: bytes, context: grpc.aio.ServicerContext[bytes, Message]) -> Message:
        return await runner.run(task, request_type, raw, context)

    # No request deserializer: the handler parses the bytes itself, so a malformed request
    # gets INVALID_ARGUMENT instead of the UNKNOWN gRPC answers a failed deserializer with.
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=None, response_serializer=_serialize
    )


def task_handlers(runner: TaskRunner) -> dict[str, grpc.RpcMethodHandler[bytes, Message]]:
    """One handler per RPC of ``TaskService``, from its descriptor and :data:`TASKS`."""
    return {
        method.name: _handler(
            runner, TASKS[method.name], message_factory.GetMessageClass(method.input_type)
        )
        for method in SERVICE.methods
    }


def add_task_service(runner: TaskRunner, server: grpc.aio.Server) -> None:
    """Serve ``tiergate.v1.TaskService`` on ``server``, every RPC through ``runner``."""
    handlers = task_handlers(runner)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)
