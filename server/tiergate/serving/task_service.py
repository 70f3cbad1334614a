"""The gRPC handlers: each RPC runs its task on its tier through one shared path.

bytes -> identity, request -> task (validate, prompt) -> admission -> model client -> ledger
-> task (typed response); from the request on, :class:`~tiergate.calls.runner.TaskRunner` does
the work. The handlers are made from the service descriptor and
:data:`~tiergate.tasks.TASKS`, one generic handler per RPC, with no per-RPC code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
import structlog
from google.protobuf.message import DecodeError, Message
from opentelemetry import trace

from tiergate import errors
from tiergate.calls import sizing
from tiergate.calls.runner import TaskRunner
from tiergate.ledger import Bill
from tiergate.serving import status
from tiergate.serving.admission import Admission
from tiergate.serving.auth import Authenticator
from tiergate.serving.rpc import RpcContext
from tiergate.shared.response_cache import wants_cache
from tiergate.tasks import TASKS, Task
from tiergate.telemetry import Rpc, Telemetry
from tiergate.upstream.model_client import Completion
from tiergate.v1 import stream_service_pb2, task_service_pb2

log = structlog.get_logger("tiergate.rpc")

SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"]
STREAM_SERVICE = stream_service_pb2.DESCRIPTOR.services_by_name["StreamService"]


class Mirror(Protocol):
    """What the servicer hands each successful call to (the shadow of :mod:`tiergate.shadow`)."""

    def offer(
        self,
        task: Task[Any, Any],
        request: Any,
        response: Any,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None: ...


class TaskServicer:
    """Serves every task RPC: identity, parsing, admission and telemetry around the runner."""

    def __init__(
        self,
        runner: TaskRunner,
        telemetry: Telemetry | None = None,
        *,
        authenticator: Authenticator | None = None,
    ) -> None:
        settings = runner.settings
        self.runner = runner
        self._settings = settings
        self._telemetry = telemetry or Telemetry(prices=runner.prices)
        self._auth = authenticator or Authenticator()
        self.admission = Admission(
            limit=settings.max_concurrency,
            max_queue=settings.max_queue,
            max_wait_s=settings.queue_timeout_s,
        )
        self.shadow: Mirror | None = None
        """Mirrors a share of successful calls to another tier (``TIERGATE_SHADOW``)."""

    async def run(
        self,
        task: Task[Any, Any],
        request_type: type[Message],
        raw: bytes,
        context: grpc.aio.ServicerContext[bytes, Message],
        stream_type: type[Message] | None = None,
        send: Callable[[Message], Awaitable[None]] | None = None,
    ) -> Message:
        """Answer one task RPC from its request bytes; every failure leaves as a rich status.

        With ``stream_type`` (a ``StreamService`` RPC), the response goes out as messages of
        that type handed to ``send``: partials as the model writes, then the complete one;
        the stream is one call to budgets, shadow, metrics, spans and the log line.
        """
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
        reason = ""
        traced = self._telemetry.rpc_started(
            rpc, method=_method(task, stream_type), metadata=metadata, peer=context.peer()
        )
        try:
            if self._auth.required and not rpc.caller.verified:
                raise errors.Unauthenticated("a valid bearer token is required")
            request = _parse(request_type, raw)
            # Tasks that send files take requests up to the provider's request-size limit.
            limit = self._settings.max_message_bytes
            if task.admit is not None:
                limit = self._settings.upload_max_bytes
            if request.ByteSize() > limit:
                raise errors.RequestTooLarge(
                    [
                        errors.FieldViolation(
                            sizing.largest_field(request), f"the request exceeds {limit} bytes"
                        )
                    ]
                )
            response: Message
            on_partial = None
            if stream_type is not None and send is not None:
                streamed, sink = stream_type, send

                async def on_partial(partial: Message) -> None:
                    if traced.first_message_s is None:
                        traced.first_message_s = time.perf_counter() - started
                    await sink(streamed(response=partial))

            response, bill = await self.runner.execute(
                task,
                request,
                tier,
                deadline=rpc.deadline,
                admission=self.admission,
                rpc=rpc,
                on_partial=on_partial,
            )
            if self.shadow is not None:
                self.shadow.offer(task, request, response, context)
            if stream_type is None or send is None:
                return response
            if traced.first_message_s is None:
                traced.first_message_s = time.perf_counter() - started
            await send(stream_type(response=response, complete=True))
            return response
        except errors.TiergateError as err:
            outcome, reason = err.code.name, err.reason
            # Partials sent: a client's automatic retry would answer anew over them.
            err.answer_begun = traced.first_message_s is not None
            if isinstance(err.completion, Completion):
                bill = self.runner.bill(tier, err.completion)
            await context.abort_with_status(
                status.grpc_status(err, time_left_s=context.time_remaining())
            )
        except asyncio.CancelledError:
            # The caller went away or its deadline passed: the upstream request is cancelled
            # with this task; nobody is left to answer.
            outcome = reason = grpc.StatusCode.CANCELLED.name
            raise
        except Exception:
            # A bug: log it with its traceback, answer INTERNAL without internals.
            outcome = reason = grpc.StatusCode.INTERNAL.name
            log.exception("rpc.bug", task=task.rpc)
            bug = errors.TiergateError("internal error; the service logged it")
            await context.abort_with_status(status.grpc_status(bug))
        finally:
            duration_s = time.perf_counter() - started
            self._telemetry.rpc_replied(traced)
            # The span's totals, the metrics and the log line wait until the answer is sent:
            # none of them is worth a caller's time.
            asyncio.get_running_loop().call_soon(
                self._finish, rpc, traced, bill, outcome, reason, duration_s
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _finish(
        self,
        rpc: RpcContext,
        traced: Rpc,
        bill: Bill | None,
        outcome: str,
        reason: str,
        duration_s: float,
    ) -> None:
        with trace.use_span(traced.span, end_on_exit=False):  # the log line's trace ids
            try:
                self._log(rpc, bill, outcome, duration_s, traced.first_message_s)
            finally:
                self._telemetry.rpc_finished(
                    traced, bill, outcome, reason=reason, duration_s=duration_s
                )

    def _log(
        self,
        rpc: RpcContext,
        bill: Bill | None,
        outcome: str,
        duration_s: float,
        first_message_s: float | None,
    ) -> None:
        model = rpc.model
        fields: dict[str, Any] = {
            "task": rpc.task,
            "caller": rpc.caller.label,
            "tier": rpc.tier.label,
            "model": model,
            "status": outcome,
            "duration_ms": round(duration_s * 1000, 2),
        }
        if first_message_s is not None:  # a streamed RPC
            fields["first_message_ms"] = round(first_message_s * 1000, 2)
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
                provider=bill.provider,
                endpoint_scope=bill.endpoint_scope,
            )
        log.info("rpc", **fields)


def _method(task: Task[Any, Any], stream_type: type[Message] | None) -> str:
    if stream_type is None:
        return f"/{SERVICE.full_name}/{task.rpc}"
    return f"/{STREAM_SERVICE.full_name}/Stream{task.rpc}"


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
    servicer: TaskServicer, task: Task[Any, Any], request_type: type[Message]
) -> grpc.RpcMethodHandler[bytes, Message]:
    async def behaviour(raw: bytes, context: grpc.aio.ServicerContext[bytes, Message]) -> Message:
        return await servicer.run(task, request_type, raw, context)

    # No request deserializer: the handler parses the bytes itself, so a malformed request
    # gets INVALID_ARGUMENT instead of the UNKNOWN gRPC answers a failed deserializer with.
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=None, response_serializer=_serialize
    )


def _stream_handler(
    servicer: TaskServicer, task: Task[Any, Any], stream_type: type[Message]
) -> grpc.RpcMethodHandler[bytes, Message]:
    async def behaviour(
        raw: bytes, context: grpc.aio.ServicerContext[bytes, Message]
    ) -> AsyncIterator[Message]:
        # The call runs as a task of its own that hands its messages over a queue: a handler
        # that writes to the context itself would bypass the server's interceptors (spans).
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        call = asyncio.ensure_future(
            servicer.run(task, task.request_type, raw, context, stream_type, queue.put)
        )
        call.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (message := await queue.get()) is not None:
                yield message
            await call  # its abort (a rich status) ends the stream
        finally:
            # A caller that went away cancels the call: the upstream stream closes at once.
            call.cancel()

    return grpc.unary_stream_rpc_method_handler(
        behaviour, request_deserializer=None, response_serializer=_serialize
    )


def stream_handlers(servicer: TaskServicer) -> dict[str, grpc.RpcMethodHandler[bytes, Message]]:
    """One handler per RPC of ``StreamService``: ``Stream<Task>`` streams the task ``<Task>``."""
    return {
        method.name: _stream_handler(
            servicer,
            TASKS[method.name.removeprefix("Stream")],
            getattr(stream_service_pb2, method.output_type.name),
        )
        for method in STREAM_SERVICE.methods
    }


def task_handlers(servicer: TaskServicer) -> dict[str, grpc.RpcMethodHandler[bytes, Message]]:
    """One handler per RPC of ``TaskService``, from its descriptor and :data:`TASKS`."""
    return {
        method.name: _handler(servicer, TASKS[method.name], TASKS[method.name].request_type)
        for method in SERVICE.methods
    }


def add_task_service(servicer: TaskServicer, server: grpc.aio.Server) -> None:
    """Serve ``tiergate.v1.TaskService`` and ``tiergate.v1.StreamService`` on ``server``, every
    RPC through ``servicer``."""
    for service, handlers in (
        (SERVICE, task_handlers(servicer)),
        (STREAM_SERVICE, stream_handlers(servicer)),
    ):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.full_name, handlers),)
        )
        server.add_registered_method_handlers(service.full_name, handlers)
