"""The emulator's HTTP server: the Messages API routes plus a few control routes.

Routes:

- ``POST /v1/messages`` (whole, or with ``stream: true`` as server-sent events, see
  :mod:`tiergate.emulator.streaming`) and ``POST /v1/messages/count_tokens``, as the API.
- The Message Batches API (:mod:`tiergate.emulator.batches`), answered asynchronously.
- The cloud roads under their prefixes (:mod:`tiergate.emulator.roads`): Bedrock's Messages API
  endpoint and InvokeModel (streamed: ``invoke-with-response-stream``, in AWS event-stream
  framing, :mod:`tiergate.emulator.eventstream`), Vertex AI's ``:rawPredict`` and
  ``:streamRawPredict``, Foundry; ``POST /_emulator/faults?road=``
  queues faults for one road, ``POST /_emulator/down`` (``{"down": [road, ...]}``) makes roads
  drop their connections.
- ``POST /_emulator/faults`` (a JSON list of faults), ``POST /_emulator/script`` (a JSON list of
  scripted replies, or one), ``POST /_emulator/batch_script`` (a JSON list of batch item
  outcomes: ``succeeded``, ``errored``, ``expired``, ``canceled``), ``GET /_emulator/requests``
  (recorded bodies, newest last),
  ``POST /_emulator/reset`` and ``GET /_emulator/health``.

Every response carries ``request-id`` and ``x-tiergate-emulator: 1``; message ids start with
``msg_emu_``. The answers are heuristics (see :mod:`tiergate.emulator.responder`), not a model's.

    >>> emulator = Emulator()
    >>> base_url = await emulator.start()  # doctest: +SKIP
    >>> client = anthropic.AsyncAnthropic(base_url=base_url, api_key="anything")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from .batches import BatchQueue, batch_routes
from .cache import CachePlan, PrefixCache
from .cloud_auth import IssuedKeys, sts_routes, token_route
from .control import EMULATOR_HEADER, control_routes
from .errors import ApiError, invalid_request, new_request_id
from .eventstream import EVENT_STREAM
from .evidence import Evidence
from .faults import Fault, FaultQueue, apply_output_fault, reshaped_response
from .files import MAX_REQUEST_BYTES
from .latency import LatencyModel
from .models import MODELS, ModelLimits, resolve_model
from .queues import CountedQueue
from .ratelimits import RateLimiter, RateLimits
from .responder import Output, respond
from .roads import PREFIXES, ROADS, Road, RoadKeys, authenticate, credential_kind, road_body
from .scripts import Script
from .streaming import SSE, STREAM_FAULTS, StreamFault, stream_message
from .tokens import truncate_to_tokens
from .validation import INFERENCE_GEOS, MessageRequest, validate_request

_log = logging.getLogger(__name__)
# Faults that let the normal answer (scripted or heuristic) through, delayed or broken off.
_PASSING_FAULTS = frozenset({"slow", *STREAM_FAULTS})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ApiHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves; the defaults answer at once and accept any key."""

    api_key: str | None = None
    """When set, requests must carry it (``x-api-key`` or ``Authorization: Bearer``), else 401."""
    latency: Literal["none", "seed"] = "none"
    """``seed`` simulates the seed article's per-family first-token time and output rate."""
    latency_scale: float = 1.0
    """Multiplies the seed latency (tests use small values)."""
    fixed_delay_s: float = 0.0
    """Seconds added before every response begins, in either latency mode."""
    models: Mapping[str, ModelLimits] = field(default_factory=lambda: dict(MODELS))
    """Context window, max output and cache minimum per model; its keys are the known models
    (others get 404). Defaults to the emulator's own table (:mod:`tiergate.emulator.models`)."""
    default_inference_geo: str = "global"
    """The workspace's ``default_inference_geo``: ``usage.inference_geo`` when a request sets
    none (``global`` or ``us``)."""
    rate_limits: RateLimits = field(default_factory=RateLimits)
    """Requests, input and output tokens per minute, one set of buckets per model."""
    clock: Callable[[], float] = time.monotonic
    """Clock for cache TTLs, injectable so tests can advance time."""
    batch_delay_s: float = 0.0
    """Seconds a message batch waits before its requests are answered (then all at once)."""
    road_keys: RoadKeys = field(default_factory=RoadKeys)
    """Credentials and policies of the cloud roads (:mod:`tiergate.emulator.roads`)."""
    max_recorded_requests: int = 1000
    """How many request bodies ``requests`` keeps, newest last; a long-running emulator
    (``tiergate serve`` without a key) must not grow without bound."""

    def __post_init__(self) -> None:
        if self.default_inference_geo not in INFERENCE_GEOS:
            raise ValueError(f"default_inference_geo must be one of {INFERENCE_GEOS}")
        if not self.models:
            raise ValueError("models must name at least one model")


class Emulator:
    """An in-process Messages API emulator served over real HTTP."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.cache = PrefixCache(
            {name: limits.min_cacheable_tokens for name, limits in self.config.models.items()},
            self.config.clock,
        )
        self.rate_limiter = RateLimiter(self.config.rate_limits, self.config.clock)
        self.requests: list[dict[str, Any]] = []
        self.abandoned = 0
        """Requests whose client hung up before the answer (a cancelled or expired call)."""
        """Accepted ``/v1/messages`` bodies (never headers), newest last."""
        self.faults = FaultQueue()
        self.road_faults: dict[Road, FaultQueue] = {road: FaultQueue() for road in ROADS}
        """Faults for one road only, consulted before :attr:`faults`."""
        self.down: set[Road] = set()
        """Roads that drop every connection, as an endpoint that is down."""
        self.road_requests: list[dict[str, Any]] = []
        """Per accepted call: its road, path, credential kind, model as sent and body."""
        self.token_grants: list[str] = []
        """Service accounts granted an access token by ``POST /oauth2/token``, in order."""
        self.aws_issued = IssuedKeys()
        """Temporary AWS credentials issued by ``POST /sts`` (IRSA's web identity)."""
        self.scripts: CountedQueue[Script] = CountedQueue()
        self._latency = LatencyModel(
            self.config.latency, self.config.latency_scale, self.config.fixed_delay_s
        )
        self.batches = BatchQueue(self._answer_batched, self.config.batch_delay_s)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running; await start() first")
        return self._base_url

    def inject(self, *faults: Fault, road: Road | None = None) -> None:
        """Queue faults for the next requests (FIFO), of one road when ``road`` is given."""
        (self.faults if road is None else self.road_faults[road]).push(*faults)

    def script(self, *scripts: Script) -> None:
        """Queue scripted replies for the next matching requests (FIFO)."""
        self.scripts.push(*scripts)

    def reset(self) -> None:
        """Clear the cache, the recorded requests, faults, scripts and rate-limit usage."""
        self.cache.clear()
        self.requests.clear()
        self.abandoned = 0
        self.faults.clear()
        for queue in self.road_faults.values():
            queue.clear()
        self.down.clear()
        self.road_requests.clear()
        self.token_grants.clear()
        self.aws_issued.clear()
        self.scripts.clear()
        self.rate_limiter.clear()
        self.batches.clear()

    def application(self) -> web.Application:
        """The aiohttp application, for mounting or custom runners."""
        # A message batch may be 256 MB; a single message is far smaller, but one limit serves.
        app = web.Application(client_max_size=257 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/v1/messages", self._guarded(self._messages)),
                web.post(
                    PREFIXES["bedrock"] + "/v1/messages", self._guarded(self._road("bedrock"))
                ),
                web.post(
                    PREFIXES["bedrock-invoke"] + "/model/{model}/invoke",
                    self._guarded(self._road("bedrock-invoke")),
                ),
                web.post(
                    PREFIXES["bedrock-invoke"] + "/model/{model}/invoke-with-response-stream",
                    self._guarded(self._road("bedrock-invoke", streamed=True)),
                ),
                web.post(
                    PREFIXES["vertex"] + "/projects/{project}/locations/{region}"
                    "/publishers/anthropic/models/{model}:rawPredict",
                    self._guarded(self._road("vertex")),
                ),
                web.post(
                    PREFIXES["vertex"] + "/projects/{project}/locations/{region}"
                    "/publishers/anthropic/models/{model}:streamRawPredict",
                    self._guarded(self._road("vertex")),
                ),
                web.post(
                    PREFIXES["foundry"] + "/v1/messages", self._guarded(self._road("foundry"))
                ),
                web.post("/v1/messages/count_tokens", self._guarded(self._count_tokens)),
                token_route(
                    self.config.road_keys.google_accounts,
                    self.config.road_keys.vertex,
                    self.token_grants,
                ),
                *sts_routes(self.config.road_keys.aws_web_identities, self.aws_issued),
                *control_routes(self, self._guarded),
                *batch_routes(self.batches, self._guarded, self._authenticate),
            ]
        )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port); return the base URL."""
        if self._runner is not None:
            return self.base_url
        # handler_cancellation: a client that hangs up cancels its request, as upstream does.
        runner = web.AppRunner(
            self.application(), access_log=None, handle_signals=False, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        """Stop serving; in-flight requests are dropped."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._base_url = None

    # -- request handling ---------------------------------------------------------------------

    def _guarded(self, handler: ApiHandler) -> Handler:
        """Turn ``ApiError`` into the API's error body; tag every response."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            request_id = new_request_id()
            try:
                return await handler(request, request_id)
            except ApiError as error:
                return _error_response(error, request_id)
            except Exception:
                # A bug in a heuristic must still look like the API's 500, not an HTML page.
                _log.exception("emulator failed on %s %s", request.method, request.path)
                return _error_response(
                    ApiError(500, "api_error", "Internal server error"), request_id
                )

        return guarded

    def _authenticate(self, request: web.Request) -> None:
        expected = self.config.api_key
        if expected is None:
            return  # no key configured: anything goes
        bearer = request.headers.get("authorization", "")
        if request.headers.get("x-api-key") == expected or bearer == f"Bearer {expected}":
            return
        raise ApiError(401, "authentication_error", "invalid x-api-key")

    async def _body(self, request: web.Request) -> Any:
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            # Drained first (bounded by client_max_size): a client still sending would
            # otherwise stall, and read a reset instead of the answer.
            await request.read()
            raise ApiError(
                413, "request_too_large", "Request exceeds the maximum allowed number of bytes."
            )
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise invalid_request(f"The request body is not valid JSON: {exc}") from exc

    def _validate(self, body: Any, count_only: bool = False) -> MessageRequest:
        return validate_request(body, models=self.config.models, count_only=count_only)

    async def _messages(self, request: web.Request, request_id: str) -> web.StreamResponse:
        if "anthropic" in self.down:
            return self._drop_connection(request)
        self._authenticate(request)
        body = await self._body(request)
        return await self._serve(request, request_id, body, "anthropic", None)

    def _road(self, road: Road, *, streamed: bool = False) -> ApiHandler:
        """The handler of one cloud road: its own checks, then the shared core; ``streamed``:
        the path asks for a stream (Bedrock's ``invoke-with-response-stream``)."""

        async def handle(request: web.Request, request_id: str) -> web.StreamResponse:
            if road in self.down:
                return self._drop_connection(request)
            keys = self.config.road_keys
            authenticate(
                road,
                request.headers,
                keys,
                method=request.method,
                target=request.raw_path,
                body=await request.read(),
                issued=self.aws_issued,
            )
            path_model = request.match_info.get("model")
            body, wire_model = road_body(
                road, await self._body(request), request.headers, path_model, keys, streamed
            )
            self.road_requests.append(
                {
                    "road": road,
                    "path": request.path,
                    "credential": credential_kind(request.headers),
                    "model": wire_model,
                    "body": await request.json(),
                }
            )
            if len(self.road_requests) > self.config.max_recorded_requests:
                del self.road_requests[0]
            return await self._serve(request, request_id, body, road, wire_model)

        return handle

    async def _serve(
        self,
        request: web.Request,
        request_id: str,
        body: Any,
        road: Road,
        wire_model: str | None,
    ) -> web.StreamResponse:
        """The Messages API core every road shares; ``wire_model`` is the model as the road's
        caller named it (the response names it so), None on the Claude API."""
        message = self._validate(body)
        self.requests.append(body)
        if len(self.requests) > self.config.max_recorded_requests:
            del self.requests[0]
        model_id = resolve_model(message.model, self.config.models)
        # Order: error faults, then rate limits, then the answer (fault, script or heuristic);
        # entries are peeked and only consumed once they decide the request. A road's own
        # faults come before the ones for every road.
        faults = self.road_faults[road]
        if faults.peek(message.model) is None:
            faults = self.faults
        fault = faults.peek(message.model)
        if fault is not None:
            error = fault.error()
            if error is not None:
                faults.take(message.model)
                error.headers.update(self.rate_limiter.headers(model_id))
                raise error  # error faults bill nothing and touch no cache
            if fault.kind == "disconnect":
                faults.take(message.model)
                return self._drop_connection(request)
            if fault.kind == "raw_body":
                faults.take(message.model)
                limits = self.rate_limiter.headers(model_id)
                return fault.raw_response({"request-id": request_id, **limits})
        # A fault that answers (a broken output) leaves the script for the next request.
        answering_fault = fault is not None and fault.kind not in _PASSING_FAULTS
        script = None if answering_fault else self.scripts.peek(message.model)
        prompt = message.prompt
        if script is not None and script.overrides_input_usage:
            plan = CachePlan(prompt.total_tokens, 0, ())  # no read, no write
        else:
            plan = self.cache.plan(message.model, prompt.segments)
        self.rate_limiter.admit(
            model_id,
            input_tokens=plan.input_tokens + plan.creation_tokens,
            max_tokens=message.max_tokens,
        )
        if fault is not None:
            faults.take(message.model)
        if script is not None:
            self.scripts.take(message.model)
        reply = self._reply(message, fault, script)
        if message.forced_tool is not None:
            reply = reply.as_tool_use(message.forced_tool)
        delays = self._latency.plan(message.model, reply.output_tokens)
        first_token_s = delays.first_token_s + (
            fault.delay_s if fault and fault.kind == "slow" else 0
        )
        body = self._message_body(message, plan, reply, self.config.default_inference_geo)
        if wire_model is not None:
            body["model"] = wire_model
        try:
            if first_token_s > 0:
                await asyncio.sleep(first_token_s)
            # The response has begun: only now do its cache writes become readable.
            self.cache.commit(plan)
            if message.stream:
                broken = None
                if fault is not None and fault.kind in STREAM_FAULTS:
                    broken = StreamFault(fault.kind, fault.after_deltas, fault.stream_error_type)
                # A stream's headers go first: its rate limits as reserved at the start.
                headers = self._headers(request_id, model_id, reply)
                return await stream_message(
                    request,
                    body,
                    headers,
                    generation_s=delays.generation_s,
                    fault=broken,
                    framing=EVENT_STREAM if road == "bedrock-invoke" else SSE,
                )
            if delays.generation_s > 0:
                await asyncio.sleep(delays.generation_s)
        except (asyncio.CancelledError, ConnectionResetError):
            # The client hung up (a cancelled call, a passed deadline): generation stops.
            self.abandoned += 1
            raise
        finally:
            # The output reservation shrinks to what was generated once the answer ends.
            used = reply.output_tokens
            self.rate_limiter.settle(model_id, reserved=message.max_tokens, used=used)
        return reshaped_response(fault, body, self._headers(request_id, model_id, reply))

    def _headers(self, request_id: str, model_id: str, reply: _Reply) -> dict[str, str]:
        return {
            "request-id": request_id,
            EMULATOR_HEADER: "1",
            **self.rate_limiter.headers(model_id),
            **reply.headers,
        }

    def _answer_batched(self, params: Any) -> dict[str, Any]:
        """One batch request's message: validation, faults, scripts and the prefix cache as
        ``POST /v1/messages``, without latency or rate limits; raises ``ApiError``."""
        message = self._validate(params)
        self.requests.append(params)
        if len(self.requests) > self.config.max_recorded_requests:
            del self.requests[0]
        fault = self.faults.peek(message.model)
        if fault is not None:
            self.faults.take(message.model)
            error = fault.error()
            if error is not None:
                raise error
            if fault.kind in ("disconnect", "raw_body"):
                raise ApiError(500, "api_error", "Internal server error")
        answering_fault = fault is not None and fault.kind not in _PASSING_FAULTS
        script = None if answering_fault else self.scripts.peek(message.model)
        if script is not None:
            self.scripts.take(message.model)
        if script is not None and script.overrides_input_usage:
            plan = CachePlan(message.prompt.total_tokens, 0, ())
        else:
            plan = self.cache.plan(message.model, message.prompt.segments)
        self.cache.commit(plan)
        reply = self._reply(message, fault, script)
        return self._message_body(message, plan, reply, self.config.default_inference_geo)

    @staticmethod
    def _reply(message: MessageRequest, fault: Fault | None, script: Script | None) -> _Reply:
        """The scripted reply verbatim, else the heuristic answer within the model's limits."""
        if script is not None:
            return _Reply.scripted(script)
        prompt = message.prompt
        evidence = Evidence(prompt.request_text, prompt.context_text, prompt.question)
        output = apply_output_fault(fault, respond(message.schema, evidence, message.max_tokens))
        room = message.room_tokens
        if output.text is not None and output.output_tokens > room:
            # The prompt fit but prompt + max_tokens did not: the answer stops at the window.
            output = Output(truncate_to_tokens(output.text, room), "model_context_window_exceeded")
        return _Reply.heuristic(output)

    def _drop_connection(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()  # the client sees the connection close without a response
        # aiohttp cannot write to an aborted transport and skips this response quietly.
        return web.Response(status=500)

    @staticmethod
    def _message_body(
        message: MessageRequest, plan: CachePlan, reply: _Reply, default_geo: str
    ) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": plan.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": plan.creation_tokens,
            "cache_read_input_tokens": plan.read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": plan.creation_5m_tokens,
                "ephemeral_1h_input_tokens": plan.creation_1h_tokens,
            },
            "service_tier": "standard",
            "inference_geo": message.inference_geo or default_geo,
        }
        return {
            "id": f"msg_emu_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": message.model,
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "stop_details": reply.stop_details,
            "usage": {**usage, **reply.usage},
        }

    async def _count_tokens(self, request: web.Request, request_id: str) -> web.StreamResponse:
        self._authenticate(request)
        message = self._validate(await self._body(request), count_only=True)
        headers = {"request-id": request_id, EMULATOR_HEADER: "1"}
        return web.json_response({"input_tokens": message.prompt.total_tokens}, headers=headers)


@dataclass(frozen=True)
class _Reply:
    """What the assistant message says, before usage is added."""

    content: list[dict[str, Any]]
    stop_reason: str
    stop_details: dict[str, Any] | None
    output_tokens: int
    stop_sequence: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    """Usage fields that replace the computed ones."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def as_tool_use(self, name: str) -> _Reply:
        """The answer as the forced tool's call: a JSON object text becomes its input."""
        texts = [block["text"] for block in self.content if block.get("type") == "text"]
        try:
            value = json.loads(texts[0]) if len(texts) == 1 else None
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or self.stop_reason != "end_turn":
            return self  # a broken answer stays broken text, for the caller to judge
        block = {"type": "tool_use", "id": f"toolu_emu_{uuid.uuid4().hex[:24]}", "name": name}
        return dataclasses.replace(
            self, content=[{**block, "input": value}], stop_reason="tool_use"
        )

    @classmethod
    def heuristic(cls, output: Output) -> _Reply:
        content = [] if output.text is None else [{"type": "text", "text": output.text}]
        return cls(content, output.stop_reason, output.stop_details, output.output_tokens)

    @classmethod
    def scripted(cls, script: Script) -> _Reply:
        details = None if script.stop_details is None else dict(script.stop_details)
        return cls(
            script.blocks(),
            script.stop_reason,
            details,
            script.output_tokens(),
            script.stop_sequence,
            script.usage,
            script.headers,
        )


def _error_response(error: ApiError, request_id: str) -> web.StreamResponse:
    headers = {"request-id": request_id, EMULATOR_HEADER: "1", **error.headers}
    return web.json_response(error.body(request_id), status=error.status, headers=headers)
