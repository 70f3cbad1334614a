"""The Message Batches API: ``/v1/messages/batches`` and its results as JSONL.

A batch is answered asynchronously: after ``batch_delay_s`` (``EmulatorConfig``; a cancel
during the wait cancels every item) each request is answered in turn by the same path as
``POST /v1/messages`` (validation, faults, scripts, prefix cache) without latency or rate
limits, and its usage says ``service_tier: "batch"``.
Results come back in reverse order, since the API promises no order. Tests script an item's
outcome with :meth:`BatchQueue.script` (``errored``, ``expired``, ``canceled`` or ``succeeded``,
FIFO over items in the order they are processed); a cancelled batch cancels the items it has
not reached.

Routes: ``POST /v1/messages/batches``, ``GET /v1/messages/batches``, ``GET .../{id}``,
``GET .../{id}/results``, ``POST .../{id}/cancel``, ``DELETE .../{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from .edge import ApiHandler, Guard, Handler
from .errors import ApiError, invalid_request, not_found

MAX_REQUESTS = 100_000
"""Requests per batch."""
MAX_BATCH_BYTES = 256 * 1024 * 1024
"""Bytes of one batch's request body."""
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EXPIRES_AFTER = datetime.timedelta(hours=24)

Outcome = Literal["succeeded", "errored", "expired", "canceled"]
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "errored", "expired", "canceled")
Answerer = Callable[[Any], dict[str, Any]]
"""Answers one request's ``params`` with a message body, or raises ``ApiError``."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp(when: datetime.datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


@dataclass
class _Batch:
    id: str
    requests: list[tuple[str, Any]]
    created_at: datetime.datetime = field(default_factory=_now)
    status: Literal["in_progress", "canceling", "ended"] = "in_progress"
    results: list[dict[str, Any]] = field(default_factory=list)
    ended_at: datetime.datetime | None = None
    cancel_initiated_at: datetime.datetime | None = None
    worker: asyncio.Task[None] | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    """Set by a reset: the worker stops before answering another item."""

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
        for result in self.results:
            counts[result["result"]["type"]] += 1
        return {"processing": len(self.requests) - len(self.results), **counts}

    def body(self, base_url: str) -> dict[str, Any]:
        ended = self.status == "ended"
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": self.counts(),
            "created_at": _stamp(self.created_at),
            "expires_at": _stamp(self.created_at + _EXPIRES_AFTER),
            "ended_at": _stamp(self.ended_at),
            "archived_at": None,
            "cancel_initiated_at": _stamp(self.cancel_initiated_at),
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }


class BatchQueue:
    """The emulator's batches, in memory, each answered by a background task."""

    def __init__(self, answer: Answerer, delay_s: float) -> None:
        self._answer = answer
        self._delay_s = delay_s
        self.batches: dict[str, _Batch] = {}
        self._outcomes: list[Outcome] = []

    def script(self, *outcomes: str) -> None:
        """Queue the outcomes of the next batch items processed (FIFO)."""
        for outcome in outcomes:
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown batch outcome {outcome!r}; expected {OUTCOMES}")
        self._outcomes.extend(outcome for outcome in outcomes if outcome in OUTCOMES)

    def clear(self) -> None:
        # clear() may be called from another thread, where cancelling a task is not safe: each
        # worker sees its batch dropped and stops before it takes another script or outcome.
        for batch in self.batches.values():
            batch.dropped = True
        self.batches.clear()
        self._outcomes.clear()

    def create(self, body: Any, size: int) -> _Batch:
        if size > MAX_BATCH_BYTES:
            raise ApiError(413, "request_too_large", "Batch exceeds the 256 MB limit")
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            raise invalid_request("requests: Field required")
        requests = body["requests"]
        if not requests:
            raise invalid_request("requests: List should have at least 1 item")
        if len(requests) > MAX_REQUESTS:
            raise invalid_request(f"requests: at most {MAX_REQUESTS} requests per batch")
        seen: set[str] = set()
        items: list[tuple[str, Any]] = []
        for i, request in enumerate(requests):
            custom_id = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise invalid_request(f"requests.{i}.custom_id: must match {_CUSTOM_ID.pattern}")
            if custom_id in seen:
                raise invalid_request(f"requests.{i}.custom_id: duplicate custom_id {custom_id}")
            if not isinstance(request.get("params"), dict):
                raise invalid_request(f"requests.{i}.params: Field required")
            seen.add(custom_id)
            items.append((custom_id, request["params"]))
        batch = _Batch(id=f"msgbatch_emu_{uuid.uuid4().hex[:24]}", requests=items)
        self.batches[batch.id] = batch
        batch.worker = asyncio.get_running_loop().create_task(self._process(batch))
        return batch

    def get(self, batch_id: str) -> _Batch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise not_found(f"message_batch {batch_id} not found")
        return batch

    def cancel(self, batch_id: str) -> _Batch:
        batch = self.get(batch_id)
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = _now()
            batch.cancelled.set()
        return batch

    def delete(self, batch_id: str) -> None:
        batch = self.get(batch_id)
        if batch.status != "ended":
            raise invalid_request(f"Batch {batch_id} cannot be deleted while it is processing")
        del self.batches[batch_id]

    async def _process(self, batch: _Batch) -> None:
        if self._delay_s > 0:
            # A cancel ends the wait: the items not yet reached are cancelled at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(batch.cancelled.wait(), self._delay_s)
        for custom_id, params in batch.requests:
            if batch.dropped:
                return
            outcome = "canceled" if batch.status == "canceling" else self._next_outcome()
            batch.results.append({"custom_id": custom_id, "result": self._result(outcome, params)})
            await asyncio.sleep(0)  # other requests (polls, cancels) get their turn
        batch.status = "ended"
        batch.ended_at = _now()

    def _next_outcome(self) -> Outcome:
        return self._outcomes.pop(0) if self._outcomes else "succeeded"

    def _result(self, outcome: Outcome, params: Any) -> dict[str, Any]:
        if outcome == "succeeded":
            try:
                message = self._answer(params)
            except ApiError as error:
                return {"type": "errored", "error": error.body(f"req_emu_{uuid.uuid4().hex[:24]}")}
            message["usage"]["service_tier"] = "batch"
            return {"type": "succeeded", "message": message}
        if outcome == "errored":
            failure = ApiError(500, "api_error", "Internal server error")
            return {"type": "errored", "error": failure.body(f"req_emu_{uuid.uuid4().hex[:24]}")}
        return {"type": outcome}


def batch_routes(
    queue: BatchQueue,
    guarded: Guard,
    authenticate: Callable[[web.Request], None],
) -> list[web.RouteDef]:
    """The Batches API routes over ``queue``; ``guarded`` wraps each as the emulator does."""

    def authed(handler: ApiHandler) -> Handler:
        async def checked(request: web.Request, request_id: str) -> web.StreamResponse:
            authenticate(request)
            return await handler(request, request_id)

        return guarded(checked)

    def base_url(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def create(request: web.Request, request_id: str) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise invalid_request(f"The request body is not valid JSON: {exc}") from exc
        batch = queue.create(body, len(raw))
        return web.json_response(batch.body(base_url(request)), headers={"request-id": request_id})

    async def retrieve(request: web.Request, request_id: str) -> web.StreamResponse:
        batch = queue.get(request.match_info["batch_id"])
        return web.json_response(batch.body(base_url(request)), headers={"request-id": request_id})

    async def listing(request: web.Request, request_id: str) -> web.StreamResponse:
        data = [b.body(base_url(request)) for b in reversed(queue.batches.values())]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        page = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        return web.json_response(page, headers={"request-id": request_id})

    async def results(request: web.Request, request_id: str) -> web.StreamResponse:
        batch = queue.get(request.match_info["batch_id"])
        if batch.status != "ended":
            raise invalid_request(f"Batch {batch.id} is still processing; results are not ready")
        lines = "".join(json.dumps(r) + "\n" for r in reversed(batch.results))
        return web.Response(
            text=lines, content_type="application/binary", headers={"request-id": request_id}
        )

    async def cancel(request: web.Request, request_id: str) -> web.StreamResponse:
        batch = queue.cancel(request.match_info["batch_id"])
        return web.json_response(batch.body(base_url(request)), headers={"request-id": request_id})

    async def delete(request: web.Request, request_id: str) -> web.StreamResponse:
        batch_id = request.match_info["batch_id"]
        queue.delete(batch_id)
        body = {"id": batch_id, "type": "message_batch_deleted"}
        return web.json_response(body, headers={"request-id": request_id})

    path = "/v1/messages/batches"
    return [
        web.post(path, authed(create)),
        web.get(path, authed(listing)),
        web.get(path + "/{batch_id}", authed(retrieve)),
        web.get(path + "/{batch_id}/results", authed(results)),
        web.post(path + "/{batch_id}/cancel", authed(cancel)),
        web.delete(path + "/{batch_id}", authed(delete)),
    ]
