"""Load generators: the two ways a Python caller gets a Classify answer, driven closed-loop.

(a) ``DirectCall``: the ``anthropic`` SDK straight to the Messages API, with the very body
tiergate would send, then the caller's own JSON parse; (b) ``GatewayCall``: one gRPC call to
tiergate. Both are Python asyncio clients on one connection pool each, so the difference
between them is tiergate itself, not the language of the load generator.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import grpc

from tiergate.calls.prompt import render_params
from tiergate.ledger import PriceTable
from tiergate.shared.response_cache import CACHE_HEADER
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Call = Callable[[], Awaitable[None]]
MODEL = "claude-haiku-4-5"
# Large enough that no benchmark RPC ever hits it, so a deadline never shapes a figure.
_DEADLINE_S = 120.0


class DirectCall:
    """A Classify done by hand with the SDK: what a caller without tiergate would run."""

    def __init__(self, base_url: str, request: pb.ClassifyRequest) -> None:
        self.client = anthropic.AsyncAnthropic(base_url=base_url, api_key="bench", max_retries=0)
        prompt = TASKS["Classify"].prompt(request)
        self.params = render_params(prompt, facts=PriceTable.load().facts(MODEL), ttl="5m")
        self.bare = prompt.bare_key is not None
        self.names = {label.name for label in request.labels}

    async def __call__(self) -> None:
        message = await self.client.messages.create(**self.params, timeout=_DEADLINE_S)
        text = next(block.text for block in message.content if block.type == "text")
        # What the caller would check by hand: the bare name, or the JSON object's label.
        label = text.strip() if self.bare else json.loads(text).get("label")
        if label not in self.names:
            raise ValueError(f"no label in {text!r}")

    async def close(self) -> None:
        await self.client.close()


class GatewayCall:
    """A Classify through tiergate over one gRPC channel; ``response_cache=False`` asks the
    server to skip its response cache, so every call reaches the model as a direct call does."""

    def __init__(
        self, target: str, request: pb.ClassifyRequest, *, response_cache: bool = True
    ) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = task_service_pb2_grpc.TaskServiceStub(self.channel)
        self.request = request
        self.metadata = () if response_cache else ((CACHE_HEADER, "off"),)

    async def __call__(self) -> None:
        reply = await self.stub.Classify(self.request, timeout=_DEADLINE_S, metadata=self.metadata)
        if not reply.label:
            raise ValueError("no label in the reply")

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class Run:
    """What one stretch of load produced."""

    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0


async def timed(call: Call, run: Run) -> None:
    started = time.perf_counter()
    try:
        await call()
    except grpc.aio.AioRpcError as exc:
        run.errors[exc.code().name] += 1
        return
    except Exception as exc:
        run.errors[type(exc).__name__] += 1
        return
    run.latencies_s.append(time.perf_counter() - started)


async def closed_loop(call: Call, concurrency: int, duration_s: float) -> Run:
    """``concurrency`` workers, each calling again as soon as its last call ends."""
    run = Run()
    until = time.perf_counter() + duration_s

    async def worker() -> None:
        while time.perf_counter() < until:
            await timed(call, run)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed_s = time.perf_counter() - started
    return run


async def burst(call: Call, count: int) -> Run:
    """``count`` calls started at once, all in flight together."""
    run = Run()
    started = time.perf_counter()
    await asyncio.gather(*(timed(call, run) for _ in range(count)))
    run.elapsed_s = time.perf_counter() - started
    return run


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def describe(run: Run) -> dict[str, Any]:
    """The figures of a run for the JSON report (latencies in milliseconds)."""
    return {
        "completed": run.completed,
        "errors": dict(run.errors),
        "elapsed_s": round(run.elapsed_s, 3),
        "throughput_rps": round(run.throughput, 1),
        "p50_ms": round(percentile(run.latencies_s, 50) * 1000, 3),
        "p99_ms": round(percentile(run.latencies_s, 99) * 1000, 3),
        "max_ms": round(max(run.latencies_s, default=float("nan")) * 1000, 3),
    }
