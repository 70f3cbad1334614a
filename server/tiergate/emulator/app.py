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
The answer path every road shares is :mod:`tiergate.emulator.messages`; configuration is
:mod:`tiergate.emulator.config`.

    >>> emulator = Emulator()
    >>> base_url = await emulator.start()  # doctest: +SKIP
    >>> client = anthropic.AsyncAnthropic(base_url=base_url, api_key="anything")  # doctest: +SKIP
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from .batches import BatchQueue, batch_routes
from .cache import PrefixCache
from .cloud_auth import IssuedKeys, sts_routes, token_route
from .config import EmulatorConfig
from .control import control_routes
from .edge import EMULATOR_HEADER, ApiHandler, drop_connection, guarded, read_body
from .errors import ApiError
from .faults import Fault, FaultQueue
from .latency import LatencyModel
from .messages import answer_batched, serve_message
from .queues import CountedQueue
from .ratelimits import RateLimiter
from .roads import PREFIXES, ROADS, Road, authenticate, credential_kind, road_body
from .scripts import Script
from .validation import validate_request

__all__ = ["Emulator", "EmulatorConfig"]  # EmulatorConfig is re-exported: callers import it here


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
        """Accepted ``/v1/messages`` bodies (never headers), newest last."""
        self.abandoned = 0
        """Requests whose client hung up before the answer (a cancelled or expired call)."""
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
        self.latency = LatencyModel(
            self.config.latency, self.config.latency_scale, self.config.fixed_delay_s
        )
        self.batches = BatchQueue(partial(answer_batched, self), self.config.batch_delay_s)
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
                web.post("/v1/messages", guarded(self._messages)),
                web.post(PREFIXES["bedrock"] + "/v1/messages", guarded(self._road("bedrock"))),
                web.post(
                    PREFIXES["bedrock-invoke"] + "/model/{model}/invoke",
                    guarded(self._road("bedrock-invoke")),
                ),
                web.post(
                    PREFIXES["bedrock-invoke"] + "/model/{model}/invoke-with-response-stream",
                    guarded(self._road("bedrock-invoke", streamed=True)),
                ),
                web.post(
                    PREFIXES["vertex"] + "/projects/{project}/locations/{region}"
                    "/publishers/anthropic/models/{model}:rawPredict",
                    guarded(self._road("vertex")),
                ),
                web.post(
                    PREFIXES["vertex"] + "/projects/{project}/locations/{region}"
                    "/publishers/anthropic/models/{model}:streamRawPredict",
                    guarded(self._road("vertex")),
                ),
                web.post(PREFIXES["foundry"] + "/v1/messages", guarded(self._road("foundry"))),
                web.post("/v1/messages/count_tokens", guarded(self._count_tokens)),
                token_route(
                    self.config.road_keys.google_accounts,
                    self.config.road_keys.vertex,
                    self.token_grants,
                ),
                *sts_routes(self.config.road_keys.aws_web_identities, self.aws_issued),
                *control_routes(self, guarded),
                *batch_routes(self.batches, guarded, self._authenticate),
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

    def _authenticate(self, request: web.Request) -> None:
        """Check the configured API key (``x-api-key`` or ``Authorization: Bearer``)."""
        expected = self.config.api_key
        if expected is None:
            return  # no key configured: anything goes
        bearer = request.headers.get("authorization", "")
        if request.headers.get("x-api-key") == expected or bearer == f"Bearer {expected}":
            return
        raise ApiError(401, "authentication_error", "invalid x-api-key")

    async def _messages(self, request: web.Request, request_id: str) -> web.StreamResponse:
        if "anthropic" in self.down:
            return drop_connection(request)
        self._authenticate(request)
        body = await read_body(request)
        return await serve_message(self, request, request_id, body, "anthropic", None)

    def _road(self, road: Road, *, streamed: bool = False) -> ApiHandler:
        """The handler of one cloud road: its own checks, then the shared core; ``streamed``:
        the path asks for a stream (Bedrock's ``invoke-with-response-stream``)."""

        async def handle(request: web.Request, request_id: str) -> web.StreamResponse:
            if road in self.down:
                return drop_connection(request)
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
                road, await read_body(request), request.headers, path_model, keys, streamed
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
            return await serve_message(self, request, request_id, body, road, wire_model)

        return handle

    async def _count_tokens(self, request: web.Request, request_id: str) -> web.StreamResponse:
        self._authenticate(request)
        body = await read_body(request)
        message = validate_request(body, models=self.config.models, count_only=True)
        headers = {"request-id": request_id, EMULATOR_HEADER: "1"}
        return web.json_response({"input_tokens": message.prompt.total_tokens}, headers=headers)
