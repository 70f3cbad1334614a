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
from typing import TYPE_CHECKING, Any

import grpc
import structlog
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message

from tiergate import errors, sizing, status
from tiergate.admission import Admission
from tiergate.auth import Authenticator
from tiergate.config import Settings
from tiergate.ledger import ModelFacts, PriceTable
from tiergate.model_client import Completion, ModelClient
from tiergate.prompt import Prompt
from tiergate.rpc import RpcContext
from tiergate.tasks import TASKS, Task
from tiergate.telemetry import Telemetry
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2, usage_pb2

if TYPE_CHECKING:
    from tiergate.shadow import Shadow

log = structlog.get_logger("tiergate.rpc")

SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]


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
        self.shadow: Shadow | None = None
        """Mirrors a share of successful calls to another tier (``TIERGATE_SHADOW``)."""

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
        rpc = RpcContext(
            task=task.rpc,
            tier=tier,
            model=self._settings.model_for(tier),
            caller=self._auth.identify(context),
            deadline=_deadline(context),
        )
        completion: Completion | None = None
        outcome = "OK"
        traced = self._telemetry.rpc_started(rpc)
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
            response, completion = await self.execute(
                task, request, tier, deadline=rpc.deadline, admission=self.admission
            )
            if self.shadow is not None:
                self.shadow.offer(task, request, response, context)
            return response
        except errors.TiergateError as err:
            outcome = err.code.name
            if isinstance(err.completion, Completion):
                completion = err.completion
            await context.abort_with_status(status.grpc_status(err))
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
            self._telemetry.rpc_finished(traced, completion, outcome)
            self._log(rpc, completion, outcome, started)
        raise AssertionError("unreachable")  # pragma: no cover

    async def execute(
        self,
        task: Task[Any, Any],
        request: Any,
        tier: Tier,
        *,
        deadline: float | None = None,
        admission: Admission | None = None,
    ) -> tuple[Any, Completion]:
        """The task on ``tier`` without gRPC: validate, prompt, model call, typed response.

        The handler, ``tiergate eval`` and shadow calls all run tasks through here. Raises
        ``TiergateError`` (with what was billed in ``err.completion``).
        """
        task.validate(request)
        prompt = task.prompt(request)
        facts = self._prices.facts(self._settings.model_for(tier))
        await self._check_fits(request, prompt, facts, deadline)
        slot = admission.slot(tier, deadline=deadline) if admission else contextlib.nullcontext()
        async with slot:
            completion = await self._model_client.complete(
                prompt,
                facts=facts,
                check=functools.partial(task.check, request),
                size_field=functools.partial(sizing.largest_field, request),
                deadline=deadline,
            )
        return task.respond(request, completion.output, self.usage(tier, completion)), completion

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

    def usage(self, tier: Tier, completion: Completion) -> usage_pb2.Usage:
        """The ``Usage`` message for what ``completion`` billed, priced by the ledger."""
        tokens = completion.usage
        cost = self._prices.cost(self._settings.model_for(tier), tokens)
        return usage_pb2.Usage(
            model=completion.model,
            tier=tier.value,
            input_tokens=tokens.input_tokens,
            cache_creation_input_tokens=tokens.cache_creation_input_tokens,
            cache_read_input_tokens=tokens.cache_read_tokens,
            output_tokens=tokens.output_tokens,
            cache_creation_5m_input_tokens=tokens.cache_write_5m_tokens,
            cache_creation_1h_input_tokens=tokens.cache_write_1h_tokens,
            billed_calls=completion.billed_calls,
            attempts=completion.attempts,
            request_id=completion.request_id,
            inference_geo=tokens.inference_geo,
            cost=usage_pb2.Cost(
                input_nanos=cost.input_nanos,
                cache_write_nanos=cost.cache_write_nanos,
                cache_write_5m_nanos=cost.cache_write_5m_nanos,
                cache_write_1h_nanos=cost.cache_write_1h_nanos,
                cache_read_nanos=cost.cache_read_nanos,
                output_nanos=cost.output_nanos,
                total_nanos=cost.total_nanos,
                cache_savings_nanos=cost.cache_savings_nanos,
                cache_write_premium_nanos=cost.cache_write_premium_nanos,
            ),
        )

    def _log(
        self, rpc: RpcContext, completion: Completion | None, outcome: str, started: float
    ) -> None:
        model = rpc.model
        fields: dict[str, Any] = {
            "task": rpc.task,
            "caller": rpc.caller.label,
            "tier": rpc.tier.label,
            "model": model,
            "status": outcome,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if rpc.caller.claimed:
            fields["claimed_caller"] = rpc.caller.claimed
        if completion is not None and completion.billed_calls:
            tokens = completion.usage
            fields.update(
                input_tokens=tokens.input_tokens,
                cache_creation_input_tokens=tokens.cache_creation_input_tokens,
                cache_read_input_tokens=tokens.cache_read_tokens,
                output_tokens=tokens.output_tokens,
                cost_nanos=self._prices.cost(model, tokens).total_nanos,
                billed_calls=completion.billed_calls,
                attempts=completion.attempts,
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
