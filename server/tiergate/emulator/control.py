"""The emulator's control routes: what tests and benchmarks tell it, over HTTP.

``POST /_emulator/faults`` (a JSON list of faults; ``?road=`` for one road's), ``POST
/_emulator/down`` (``{"down": [road, ...]}``: those roads drop their connections), ``POST
/_emulator/script`` (scripted replies), ``POST /_emulator/batch_script`` (batch item outcomes),
``GET /_emulator/requests``, ``POST /_emulator/reset`` and ``GET /_emulator/health``.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from .batches import BatchQueue
from .edge import EMULATOR_HEADER, Guard, read_body
from .errors import invalid_request
from .faults import Fault, FaultQueue
from .queues import CountedQueue
from .roads import ROADS, Road
from .scripts import Script


class Controlled(Protocol):
    """What the control routes reach in the emulator."""

    faults: FaultQueue
    road_faults: dict[Road, FaultQueue]
    down: set[Road]
    scripts: CountedQueue[Script]
    batches: BatchQueue
    requests: list[dict[str, Any]]
    abandoned: int

    def reset(self) -> None: ...


def control_routes(emulator: Controlled, guarded: Guard) -> list[web.RouteDef]:
    """The control routes of ``emulator``; ``guarded`` turns ``ApiError`` into the API's body."""

    async def post_faults(request: web.Request, request_id: str) -> web.StreamResponse:
        data = await read_body(request)
        if not isinstance(data, list):
            raise invalid_request("expected a JSON list of faults")
        road = request.query.get("road")
        if road is not None and road not in ROADS:
            raise invalid_request(f"road: must be one of {list(ROADS)}")
        faults = [Fault.from_json(item) for item in data]
        queue = emulator.faults if road is None else emulator.road_faults[road]
        queue.push(*faults)
        return _control({"queued": len(faults), "pending": queue.pending()})

    async def post_down(request: web.Request, request_id: str) -> web.StreamResponse:
        data = await read_body(request)
        if not isinstance(data, dict) or not isinstance(data.get("down"), list):
            raise invalid_request('expected {"down": [road, ...]}')
        unknown = [road for road in data["down"] if road not in ROADS]
        if unknown:
            raise invalid_request(f"unknown roads: {unknown}")
        emulator.down = set(data["down"])
        return _control({"down": sorted(emulator.down)})

    async def post_script(request: web.Request, request_id: str) -> web.StreamResponse:
        data = await read_body(request)
        items = data if isinstance(data, list) else [data]
        scripts = [Script.from_json(item) for item in items]
        emulator.scripts.push(*scripts)
        return _control({"queued": len(scripts), "pending": emulator.scripts.pending()})

    async def post_batch_script(request: web.Request, request_id: str) -> web.StreamResponse:
        data = await read_body(request)
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise invalid_request("expected a JSON list of batch item outcomes")
        try:
            emulator.batches.script(*data)
        except ValueError as exc:
            raise invalid_request(str(exc)) from exc
        return _control({"queued": len(data)})

    async def get_requests(request: web.Request, request_id: str) -> web.StreamResponse:
        return _control({"requests": emulator.requests, "abandoned": emulator.abandoned})

    async def post_reset(request: web.Request, request_id: str) -> web.StreamResponse:
        emulator.reset()
        return _control({"reset": True})

    async def health(request: web.Request, request_id: str) -> web.StreamResponse:
        return _control({"status": "ok", "emulator": True})

    return [
        web.post("/_emulator/faults", guarded(post_faults)),
        web.post("/_emulator/down", guarded(post_down)),
        web.post("/_emulator/script", guarded(post_script)),
        web.post("/_emulator/batch_script", guarded(post_batch_script)),
        web.get("/_emulator/requests", guarded(get_requests)),
        web.post("/_emulator/reset", guarded(post_reset)),
        web.get("/_emulator/health", guarded(health)),
    ]


def _control(payload: dict[str, Any]) -> web.StreamResponse:
    return web.json_response(payload, headers={EMULATOR_HEADER: "1"})
