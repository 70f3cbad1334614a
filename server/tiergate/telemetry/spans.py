"""What each RPC and each model call records: span attributes and metrics.

A task RPC has a SERVER span named after its gRPC method, with the attributes the gRPC
instrumentation gives other services' spans (``rpc.*``), continuing the caller's
``traceparent``. One CLIENT span per upstream attempt (each ``messages.create`` request,
retried or not), named ``chat {model}``, with the GenAI semantic-convention attributes, is its
child. The SERVER span gets tiergate's totals once the reply is on its way: :meth:`rpc_finished`
runs after the answer is sent, and ends the span at the instant the answer was ready.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anthropic
import grpc
from anthropic.types import Message
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.semconv.trace import SpanAttributes
from opentelemetry.trace import SpanKind, Status, StatusCode

from tiergate.ledger import Bill, ModelFacts, PriceTable, TokenUsage, price
from tiergate.telemetry.instruments import Instruments
from tiergate.tiers import Tier

if TYPE_CHECKING:
    from tiergate.serving.rpc import RpcContext

OPERATION = gen_ai.GenAiOperationNameValues.CHAT.value
PROVIDER = gen_ai.GenAiProviderNameValues.ANTHROPIC.value
ROAD_ATTRIBUTE = "tiergate.road"
"""The road an attempt took (``bedrock-invoke`` and ``bedrock`` share ``aws.bedrock``)."""
SCOPE_ATTRIBUTE = "tiergate.endpoint_scope"


@dataclass(frozen=True)
class RoadLabel:
    """The road of the model call in progress: spans name its provider and price at its facts."""

    road: str = "anthropic"
    provider: str = PROVIDER
    """``gen_ai.provider.name``: ``anthropic``, ``aws.bedrock``, ``gcp.vertex_ai``,
    ``azure.ai.inference``."""
    scope: str = "global"
    facts: ModelFacts | None = None
    """The prices of the road; None: the price table's facts of the requested model."""


ROAD: contextvars.ContextVar[RoadLabel | None] = contextvars.ContextVar(
    "tiergate_road", default=None
)
"""Set by the road client around each call, so the model client need not carry it."""
INPUT = gen_ai.GenAiTokenTypeValues.INPUT.value
OUTPUT = gen_ai.GenAiTokenTypeValues.OUTPUT.value

# tiergate's own attributes, beside the conventions'.
TASK = "tiergate.task"
TIER = "tiergate.tier"
CALLER = "tiergate.caller"
CLAIMED_CALLER = "tiergate.caller.claimed"
COST_NANOS = "tiergate.cost_nanos"
ATTEMPT = "tiergate.attempt"
ATTEMPTS = "tiergate.attempts"
BILLED_CALLS = "tiergate.billed_calls"
FIRST_MESSAGE_S = "tiergate.first_message_s"
STATUS = "tiergate.status"
REASON = "tiergate.reason"
RPC_GRPC_STATUS_CODE = SpanAttributes.RPC_GRPC_STATUS_CODE


@dataclass
class Rpc:
    """One task RPC in progress: what its model calls and its metrics are labelled with."""

    task: str
    tier: Tier
    model: str
    caller: str
    """The caller's metric label (verified name or a fixed label)."""
    span: trace.Span
    token: contextvars.Token[Rpc | None] | None = None
    attached: contextvars.Token[otel_context.Context] | None = None
    """The OpenTelemetry context token that makes ``span`` current while the RPC runs."""
    replied_ns: int | None = None
    """When the answer (or the error) was ready: the SERVER span's end."""
    first_message_s: float | None = None
    """A streamed RPC: seconds from the request to its first message (None: none sent)."""

    @property
    def labels(self) -> dict[str, str]:
        return {TASK: self.task, TIER: self.tier.label, gen_ai.GEN_AI_REQUEST_MODEL: self.model}


_current: contextvars.ContextVar[Rpc | None] = contextvars.ContextVar("tiergate_rpc", default=None)


class Recorder:
    """Turns RPCs and model calls into spans and metrics, pricing them with the ledger's table."""

    def __init__(
        self,
        tracer: trace.Tracer,
        instruments: Instruments,
        prices: PriceTable,
        *,
        capture_content: bool,
    ) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._prices = prices
        self._capture_content = capture_content

    # --- RPCs -------------------------------------------------------------------------------

    def rpc_started(
        self,
        context: RpcContext,
        *,
        method: str,
        metadata: Sequence[tuple[str, str | bytes]],
        peer: str,
    ) -> Rpc:
        """Start the RPC's SERVER span (a child of the caller's ``traceparent``), make it
        current, and count the RPC in flight. ``method`` is the gRPC path,
        ``/tiergate.v1.TaskService/Classify``."""
        caller = context.caller
        service, _, name = method.lstrip("/").partition("/")
        attributes: dict[str, Any] = {
            SpanAttributes.RPC_SYSTEM: "grpc",
            SpanAttributes.RPC_SERVICE: service,
            SpanAttributes.RPC_METHOD: name,
            RPC_GRPC_STATUS_CODE: grpc.StatusCode.OK.value[0],
            TASK: context.task,
            TIER: context.tier.label,
            gen_ai.GEN_AI_REQUEST_MODEL: context.model,
            CALLER: caller.label,
            **_peer_attributes(peer),
        }
        if caller.claimed:
            # A span is one call's record, not an aggregate: the claimed name may go here.
            attributes[CLAIMED_CALLER] = caller.claimed
        carrier = {key: value for key, value in metadata if isinstance(value, str)}
        span = self._tracer.start_span(
            method,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        rpc = Rpc(
            task=context.task,
            tier=context.tier,
            model=context.model,
            caller=caller.label,
            span=span,
        )
        rpc.attached = otel_context.attach(trace.set_span_in_context(span))
        rpc.token = _current.set(rpc)
        self._instruments.in_flight.add(1, {TASK: rpc.task, TIER: rpc.tier.label})
        return rpc

    def rpc_replied(self, rpc: Rpc) -> None:
        """The answer is ready: the span stops being current; :meth:`rpc_finished` may now
        run after the answer is sent."""
        rpc.replied_ns = time.time_ns()
        if rpc.token is not None:
            _current.reset(rpc.token)
            rpc.token = None
        if rpc.attached is not None:
            otel_context.detach(rpc.attached)
            rpc.attached = None

    def rpc_finished(
        self,
        rpc: Rpc,
        bill: Bill | None,
        status: str,
        *,
        reason: str = "",
        duration_s: float | None = None,
    ) -> None:
        """Record what the RPC billed, how it ended and how long it took, and end its SERVER
        span at the instant of :meth:`rpc_replied`; ``status`` is a gRPC status code name,
        ``reason`` the error's ``ErrorInfo`` reason (none when it succeeded)."""
        try:
            self._finish_rpc(rpc, bill, status, reason, duration_s)
        finally:
            rpc.span.end(end_time=rpc.replied_ns)

    def _finish_rpc(
        self, rpc: Rpc, bill: Bill | None, status: str, reason: str, duration_s: float | None
    ) -> None:
        self._instruments.in_flight.add(-1, {TASK: rpc.task, TIER: rpc.tier.label})
        if duration_s is not None:
            outcome = {TASK: rpc.task, TIER: rpc.tier.label, CALLER: rpc.caller, STATUS: status}
            if reason:
                outcome[REASON] = reason
            self._instruments.rpc_duration.record(duration_s, outcome)
            if rpc.first_message_s is not None:
                self._instruments.first_message.record(rpc.first_message_s, outcome)
                rpc.span.set_attribute(FIRST_MESSAGE_S, rpc.first_message_s)
        if status != "OK":
            # The span opened as OK; a failed RPC says how it ended.
            rpc.span.set_attribute(RPC_GRPC_STATUS_CODE, _status_value(status))
            rpc.span.set_status(Status(StatusCode.ERROR, status))
            rpc.span.set_attribute(ERROR_TYPE, status)
        if bill is None:
            return
        rpc.span.set_attributes({ATTEMPTS: bill.attempts, BILLED_CALLS: bill.billed_calls})
        if not bill.billed_calls:
            return
        usage = bill.tokens
        nanos = bill.cost.total_nanos
        rpc.span.set_attributes(
            {
                COST_NANOS: nanos,
                gen_ai.GEN_AI_RESPONSE_MODEL: bill.model,
                **({gen_ai.GEN_AI_PROVIDER_NAME: bill.provider_name} if bill.provider else {}),
                **_usage_attributes(usage),
            }
        )
        provider = {gen_ai.GEN_AI_PROVIDER_NAME: bill.provider_name} if bill.provider else {}
        billed = {**rpc.labels, CALLER: rpc.caller, **provider}
        self._instruments.cost.add(nanos, billed)
        self._instruments.cache_saved.add(bill.cost.cache_savings_nanos, billed)
        self._instruments.cache_write_premium.add(bill.cost.cache_write_premium_nanos, billed)
        if usage.prompt_tokens:
            self._instruments.cache_read_ratio.record(
                usage.cache_read_tokens / usage.prompt_tokens, rpc.labels
            )

    # --- model calls ------------------------------------------------------------------------

    @contextmanager
    def model_call(self, params: Mapping[str, Any], *, attempt: int) -> Iterator[ModelCall]:
        """A CLIENT span around one upstream attempt; call ``answered`` with its message."""
        model = str(params["model"])
        rpc = _current.get()
        labels = rpc.labels if rpc is not None else {}
        road = ROAD.get() or RoadLabel()
        attributes: dict[str, Any] = {
            gen_ai.GEN_AI_OPERATION_NAME: OPERATION,
            gen_ai.GEN_AI_PROVIDER_NAME: road.provider,
            ROAD_ATTRIBUTE: road.road,
            SCOPE_ATTRIBUTE: road.scope,
            gen_ai.GEN_AI_REQUEST_MODEL: model,
            gen_ai.GEN_AI_REQUEST_MAX_TOKENS: int(params["max_tokens"]),
            ATTEMPT: attempt,
            **{k: v for k, v in labels.items() if k != gen_ai.GEN_AI_REQUEST_MODEL},
        }
        if self._capture_content:
            attributes.update(_input_content(params))
        metric_labels = {
            gen_ai.GEN_AI_OPERATION_NAME: OPERATION,
            gen_ai.GEN_AI_PROVIDER_NAME: road.provider,
            gen_ai.GEN_AI_REQUEST_MODEL: model,
        }
        if attempt > 1:
            self._instruments.retries.add(1, {**labels, gen_ai.GEN_AI_REQUEST_MODEL: model})
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"{OPERATION} {model}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            # Exception messages may quote upstream bodies; the error type is enough.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = ModelCall(
                span, model, self._prices, capture_content=self._capture_content, road=road
            )
            try:
                yield call
            except BaseException as exc:
                error = type(exc).__name__
                span.set_attribute(ERROR_TYPE, error)
                if isinstance(exc, anthropic.APIStatusError):
                    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, exc.status_code)
                span.set_status(Status(StatusCode.ERROR, error))
                metric_labels[ERROR_TYPE] = error
                raise
            finally:
                if call.message is not None:
                    metric_labels[gen_ai.GEN_AI_RESPONSE_MODEL] = call.message.model
                    self._record_tokens(call.usage, metric_labels)
                self._instruments.operation_duration.record(
                    time.perf_counter() - started, metric_labels
                )

    def _record_tokens(self, usage: TokenUsage, labels: Mapping[str, str]) -> None:
        self._instruments.token_usage.record(
            usage.prompt_tokens, {**labels, gen_ai.GEN_AI_TOKEN_TYPE: INPUT}
        )
        self._instruments.token_usage.record(
            usage.output_tokens, {**labels, gen_ai.GEN_AI_TOKEN_TYPE: OUTPUT}
        )


class ModelCall:
    """The span of one upstream attempt, filled in when the API answers."""

    def __init__(
        self,
        span: trace.Span,
        model: str,
        prices: PriceTable,
        *,
        capture_content: bool,
        road: RoadLabel | None = None,
    ) -> None:
        self._span = span
        self._road = road or RoadLabel()
        self._model = model
        self._prices = prices
        self._capture_content = capture_content
        self.message: Message | None = None
        self.usage = TokenUsage()

    def answered(self, message: Message, usage: TokenUsage) -> None:
        """The API answered ``message``, billing ``usage`` (priced as the requested model)."""
        self.message = message
        self.usage = usage
        if not self._span.is_recording():
            return  # nothing would keep the attributes: no cost to price, no JSON to write
        attributes: dict[str, Any] = {
            gen_ai.GEN_AI_RESPONSE_MODEL: message.model,
            gen_ai.GEN_AI_RESPONSE_ID: message.id,
            gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: [message.stop_reason or ""],
            COST_NANOS: self._cost(usage),
            **_usage_attributes(usage),
        }
        if self._capture_content:
            attributes[gen_ai.GEN_AI_OUTPUT_MESSAGES] = json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": _parts(block.model_dump() for block in message.content),
                        "finish_reason": message.stop_reason or "",
                    }
                ]
            )
        self._span.set_attributes(attributes)

    def _cost(self, usage: TokenUsage) -> int:
        facts = self._road.facts
        if facts is None:
            return self._prices.cost(self._model, usage).total_nanos
        return price(facts, usage, batch=False).total_nanos


def _peer_attributes(peer: str) -> dict[str, str]:
    """``net.peer.ip`` and ``net.peer.port`` of a gRPC peer (``ipv4:127.0.0.1:57284``,
    ``ipv6:[::1]:57284``), as the gRPC instrumentation records them; none for other peers."""
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return {}
    ip, _, port = address.split(",")[0].rpartition(":")
    if not ip or not port:
        return {}
    return {SpanAttributes.NET_PEER_IP: unquote(ip), SpanAttributes.NET_PEER_PORT: port}


def _usage_attributes(usage: TokenUsage) -> dict[str, int]:
    # The conventions count every prompt token as input, cached or not, and break out the cache.
    return {
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS: usage.prompt_tokens,
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
        gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: usage.cache_creation_input_tokens,
        gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_tokens,
    }


def _input_content(params: Mapping[str, Any]) -> dict[str, str]:
    system = params.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    messages = [
        {"role": m["role"], "parts": _parts(_blocks(m["content"]))} for m in params["messages"]
    ]
    return {
        gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS: json.dumps(_parts(system)),
        gen_ai.GEN_AI_INPUT_MESSAGES: json.dumps(messages),
    }


def _blocks(content: str | Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _parts(blocks: Iterator[Mapping[str, Any]] | Sequence[Mapping[str, Any]]) -> list[Any]:
    return [
        {"type": "text", "content": b["text"]} if b.get("type") == "text" else {"type": b["type"]}
        for b in blocks
    ]


def _status_value(name: str) -> int:
    code = getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)
    value: int = code.value[0]
    return value
