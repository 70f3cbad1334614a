"""The gRPC handlers: each RPC runs its task on its tier through one shared path.

handler -> task (validate, prompt) -> model client -> ledger -> task (typed response).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import grpc
import structlog

from tiergate import errors, status
from tiergate.admission import Admission
from tiergate.auth import caller_of
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.model_client import Completion, ModelClient
from tiergate.prompt import Prompt, canonical_json
from tiergate.tasks import TASKS, Task
from tiergate.telemetry import Telemetry
from tiergate.tiers import Tier
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc, usage_pb2
from tiergate.validation import check_fits

log = structlog.get_logger("tiergate.rpc")


class TaskRunner:
    """Runs any task: the shared mechanics every handler delegates to."""

    def __init__(
        self,
        settings: Settings,
        prices: PriceTable,
        model_client: ModelClient,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._settings = settings
        self._prices = prices
        self._model_client = model_client
        self._telemetry = telemetry or Telemetry(prices=prices)
        self.admission = Admission(
            limit=settings.max_concurrency, queue_timeout_s=settings.queue_timeout_s
        )
        self.draining = False
        """Set on SIGTERM: calls that still arrive are refused with DRAINING."""

    async def run(
        self, task: Task[Any, Any], request: Any, context: grpc.aio.ServicerContext
    ) -> Any:
        tier = task.tier
        model = self._settings.model_for(tier)
        started = time.perf_counter()
        completion: Completion | None = None
        outcome = "OK"
        caller = caller_of(context)
        traced = self._telemetry.rpc_started(task.rpc, tier, model, caller)
        try:
            if self.draining:
                raise errors.Draining(
                    "this replica is shutting down; retry on another", retry_after_s=0.1
                )
            if request.ByteSize() > self._settings.max_message_bytes:
                raise errors.RequestTooLarge(
                    [
                        errors.FieldViolation(
                            "*", f"the request exceeds {self._settings.max_message_bytes} bytes"
                        )
                    ]
                )
            task.validate(request)
            prompt = task.prompt(request)
            facts = self._prices.facts(model)
            check_fits(
                task.size_field,
                _prompt_chars(prompt),
                context_window_tokens=facts.context_window_tokens,
                max_tokens=prompt.max_tokens,
            )
            async with self.admission.slot(tier):
                completion = await self._model_client.complete(
                    prompt,
                    model=model,
                    check=functools.partial(task.check, request),
                    deadline=_deadline(context),
                )
            return task.respond(request, completion.output, self.usage(tier, completion))
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
            self._log(task.rpc, tier, model, completion, outcome, started, caller)
        raise AssertionError("unreachable")  # pragma: no cover

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
        self,
        rpc: str,
        tier: Tier,
        model: str,
        completion: Completion | None,
        outcome: str,
        started: float,
        caller: str,
    ) -> None:
        fields: dict[str, Any] = {
            "task": rpc,
            "caller": caller,
            "tier": tier.label,
            "model": model,
            "status": outcome,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
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


def _prompt_chars(prompt: Prompt) -> int:
    parts = (prompt.instructions, *prompt.context, prompt.request)
    return sum(map(len, parts)) + len(canonical_json(prompt.output_schema))


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class TaskService(task_service_pb2_grpc.TaskServiceServicer):
    """``tiergate.v1.TaskService``: one line per RPC, the tier comes from its task."""

    def __init__(self, runner: TaskRunner) -> None:
        self._runner = runner

    async def Classify(
        self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ClassifyResponse:
        return await self._runner.run(TASKS["Classify"], request, context)  # type: ignore[no-any-return]

    async def Summarize(
        self, request: pb.SummarizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.SummarizeResponse:
        return await self._runner.run(TASKS["Summarize"], request, context)  # type: ignore[no-any-return]

    async def Extract(
        self, request: pb.ExtractRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExtractResponse:
        return await self._runner.run(TASKS["Extract"], request, context)  # type: ignore[no-any-return]

    async def Answer(
        self, request: pb.AnswerRequest, context: grpc.aio.ServicerContext
    ) -> pb.AnswerResponse:
        return await self._runner.run(TASKS["Answer"], request, context)  # type: ignore[no-any-return]

    async def Moderate(
        self, request: pb.ModerateRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModerateResponse:
        return await self._runner.run(TASKS["Moderate"], request, context)  # type: ignore[no-any-return]

    async def Reason(
        self, request: pb.ReasonRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReasonResponse:
        return await self._runner.run(TASKS["Reason"], request, context)  # type: ignore[no-any-return]
