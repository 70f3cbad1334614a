"""The benchmark scenarios, each returning plain figures for the report.

- ``overhead``: the same Classify through the SDK directly (a) and through tiergate (b), one
  emulator behind both, alternating: latency at concurrency 1, throughput at concurrency 64.
  tiergate's response cache is skipped (``x-tiergate-cache: off``) so both reach the model on
  every call; a last stretch times the repeat that the response cache answers.
- ``model_paced``: the throughput comparison again with an emulator that answers after a
  model-like delay, where the upstream, not CPU, sets the pace (as in production).
- ``in_flight``: N RPCs at once against an emulator that answers after 2 s.
- ``startup``: process start to health SERVING.
- ``cache_costs``: the seed article's workloads priced by the ledger, tiergate's cache layout
  against the same prompts without breakpoints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import grpc

from bench.load import (
    MODEL,
    Call,
    DirectCall,
    GatewayCall,
    Run,
    burst,
    closed_loop,
    describe,
    percentile,
    timed,
)
from bench.procs import EmulatorProcess, FloorProcess, ServerProcess, cpu_s
from bench.workloads import OVERHEAD_REQUEST, CostWorkload
from tiergate.calls.prompt import render_params
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2_grpc, usage_pb2

THROUGHPUT_CONCURRENCY = 64
IN_FLIGHT_SETTINGS = {"max_concurrency": 10000, "queue_timeout_s": 30}
"""The per-tier limit (default 256) would turn most of a 5,000 burst away by design."""


async def overhead(
    upstream: EmulatorProcess,
    server: ServerProcess,
    *,
    pairs: int,
    rounds: int,
    seconds: float,
    floor: FloorProcess | None = None,
) -> dict[str, Any]:
    direct = DirectCall(upstream.url, OVERHEAD_REQUEST)
    gateway = GatewayCall(server.target, OVERHEAD_REQUEST, response_cache=False)
    bare = GatewayCall(floor.target, OVERHEAD_REQUEST) if floor else None
    try:
        for _ in range(50):  # warm the connection pools and the processes' code paths
            await direct()
            await gateway()
            if bare:
                await bare()
        upstream.reset()
        # Latency at concurrency 1: a and b alternate call by call, the order flipping each pair.
        lat_a, lat_b = Run(), Run()
        for i in range(pairs):
            first, second = ((direct, lat_a), (gateway, lat_b))[:: 1 if i % 2 else -1]
            await timed(*first)
            await timed(*second)
        # The same call again with the response cache on: after the first, tiergate answers.
        repeat = GatewayCall(server.target, OVERHEAD_REQUEST)
        cached = Run()
        try:
            for _ in range(pairs // 3):
                await timed(repeat, cached)
        finally:
            await repeat.close()
        upstream.reset()
        # Throughput at concurrency 64: a and b alternate stretch by stretch.
        paths: list[tuple[str, Call, int]] = [
            ("direct", direct, 0),
            ("tiergate", gateway, server.pid),
        ]
        if bare and floor:
            paths.append(("floor", bare, floor.pid))
        per_round = await _throughput_rounds(upstream, paths, rounds=rounds, seconds=seconds)
    finally:
        await direct.close()
        await gateway.close()
        if bare:
            await bare.close()
    floors = [r["floor_ratio"] for r in per_round if "floor_ratio" in r]
    return {
        "pairs": pairs,
        "direct_c1": describe(lat_a),
        "tiergate_c1": describe(lat_b),
        "added_p50_ms": _added(lat_a, lat_b, 50),
        "added_p99_ms": _added(lat_a, lat_b, 99),
        "cached_c1": describe(cached),
        **_throughput_summary(per_round, seconds),
        **(
            {
                "floor_rps": statistics.median(r["floor"]["throughput_rps"] for r in per_round),
                "floor_ratio": statistics.median(floors),
                "floor_ratio_range": [min(floors), max(floors)],
            }
            if floors
            else {}
        ),
        "cpu_ms_per_call": {
            path: {
                key: statistics.median(r[path]["cpu_ms_per_call"][key] for r in per_round)
                for key in ("client", "server", "emulator")
            }
            for path in ("direct", "tiergate", *(("floor",) if floors else ()))
        },
    }


def model_paced(delay_s: float, *, rounds: int, seconds: float) -> dict[str, Any]:
    """Direct and tiergate at concurrency 64, alternating stretch by stretch, against an
    emulator that answers after ``delay_s``: what a caller sees when the model's time, not CPU,
    bounds the rate."""
    with EmulatorProcess(fixed_delay_s=delay_s) as upstream, ServerProcess(upstream.url) as server:
        return asyncio.run(_model_paced(upstream, server, delay_s, rounds, seconds))


async def _model_paced(
    upstream: EmulatorProcess, server: ServerProcess, delay_s: float, rounds: int, seconds: float
) -> dict[str, Any]:
    direct = DirectCall(upstream.url, OVERHEAD_REQUEST)
    gateway = GatewayCall(server.target, OVERHEAD_REQUEST, response_cache=False)
    try:
        await asyncio.gather(direct(), gateway())  # connect first
        paths: list[tuple[str, Call, int]] = [
            ("direct", direct, 0),
            ("tiergate", gateway, server.pid),
        ]
        per_round = await _throughput_rounds(upstream, paths, rounds=rounds, seconds=seconds)
    finally:
        await direct.close()
        await gateway.close()
    return {"upstream_delay_s": delay_s, **_throughput_summary(per_round, seconds)}


async def _throughput_rounds(
    upstream: EmulatorProcess, paths: list[tuple[str, Call, int]], *, rounds: int, seconds: float
) -> list[dict[str, Any]]:
    """Each path at concurrency 64 in turn, the order reversed every round, with where each
    call's CPU went; ``paths`` are (name, call, server pid or 0), ``direct`` first. Each round's
    ``ratio`` is tiergate's throughput over the direct call's (``floor_ratio`` the floor's)."""
    per_round: list[dict[str, Any]] = []
    for i in range(rounds):
        figures: dict[str, Any] = {}
        for name, call, server_pid in paths[:: 1 if i % 2 == 0 else -1]:
            processes = {"emulator": upstream.pid, "server": server_pid}
            before = {key: cpu_s(pid) if pid else 0.0 for key, pid in processes.items()}
            client_before = time.process_time()
            run = await closed_loop(call, THROUGHPUT_CONCURRENCY, seconds)
            used = {key: cpu_s(pid) - before[key] if pid else 0.0 for key, pid in processes.items()}
            used["client"] = time.process_time() - client_before
            # Where the CPU of one call goes, per process: on 2 cores this bounds throughput.
            figures[name] = {
                **describe(run),
                "cpu_ms_per_call": {
                    key: round(seconds_used / max(run.completed, 1) * 1000, 3)
                    for key, seconds_used in used.items()
                },
            }
            upstream.reset()
        direct_rps = figures["direct"]["throughput_rps"]
        figures["ratio"] = round(figures["tiergate"]["throughput_rps"] / direct_rps, 3)
        if "floor" in figures:
            figures["floor_ratio"] = round(figures["floor"]["throughput_rps"] / direct_rps, 3)
        per_round.append(figures)
    return per_round


def _throughput_summary(per_round: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    ratios = [r["ratio"] for r in per_round]
    return {
        "concurrency": THROUGHPUT_CONCURRENCY,
        "seconds_per_stretch": seconds,
        "rounds": per_round,
        "direct_rps": statistics.median(r["direct"]["throughput_rps"] for r in per_round),
        "tiergate_rps": statistics.median(r["tiergate"]["throughput_rps"] for r in per_round),
        "throughput_ratio": statistics.median(ratios),
        "throughput_ratio_range": [min(ratios), max(ratios)],
    }


def _added(a: Run, b: Run, q: float) -> float:
    return round((percentile(b.latencies_s, q) - percentile(a.latencies_s, q)) * 1000, 3)


@contextmanager
def rss_sampler(server: ServerProcess, every_s: float = 0.05) -> Iterator[list[float]]:
    """Sample the server's VmRSS while the block runs (VmHWM gives the exact peak)."""
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            samples.append(server.rss_mb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def in_flight(counts: tuple[int, ...], delay_s: float) -> list[dict[str, Any]]:
    """Each burst on a fresh server, so each peak RSS is its own."""
    results = []
    with EmulatorProcess(fixed_delay_s=delay_s) as upstream:
        for count in counts:
            upstream.reset()
            with ServerProcess(upstream.url, **IN_FLIGHT_SETTINGS) as server:
                idle_mb = server.rss_mb()
                with rss_sampler(server) as samples:
                    run = asyncio.run(_burst(server.target, count))
                figures = describe(run)
                results.append(
                    {
                        "in_flight": count,
                        "upstream_delay_s": delay_s,
                        "settings": IN_FLIGHT_SETTINGS,
                        **figures,
                        "error_count": sum(run.errors.values()),
                        "idle_rss_mb": round(idle_mb, 1),
                        "sampled_max_rss_mb": round(max(samples, default=0.0), 1),
                        "peak_rss_mb": round(server.peak_rss_mb(), 1),
                    }
                )
    return results


async def _burst(target: str, count: int) -> Run:
    gateway = GatewayCall(target, OVERHEAD_REQUEST, response_cache=False)
    try:
        await gateway()  # connect first: the burst measures calls, not the TCP handshake
        return await burst(gateway, count)
    finally:
        await gateway.close()


def startup(upstream: EmulatorProcess, runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        with ServerProcess(upstream.url) as server:
            times.append(server.startup_s)
    return {
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "all_s": [round(t, 3) for t in times],
    }


async def cache_costs(
    upstream: EmulatorProcess, target: str, workloads: list[CostWorkload], concurrency: int = 8
) -> list[dict[str, Any]]:
    """Per workload: cost per 1,000 requests with tiergate's layout and with no breakpoint."""
    prices = PriceTable.load()
    results = []
    for workload in workloads:
        upstream.reset()
        cached = await _through_tiergate(target, workload, concurrency)
        upstream.reset()
        uncached = await _without_breakpoints(upstream.url, workload, concurrency)
        upstream.reset()
        per_1000 = 1000 / len(workload.requests)
        on = prices.cost(MODEL, cached.usage).total_nanos * per_1000
        off = prices.cost(MODEL, uncached.usage).total_nanos * per_1000
        results.append(
            {
                "workload": workload.name,
                "rpc": workload.rpc,
                "shape": workload.description,
                "requests": len(workload.requests),
                "cached_usage": dataclasses.asdict(cached.usage),
                "uncached_usage": dataclasses.asdict(uncached.usage),
                "cached_billed_calls": cached.billed_calls,
                "uncached_billed_calls": uncached.billed_calls,
                "ledger_matches_service": cached.service_nanos
                == prices.cost(MODEL, cached.usage).total_nanos,
                "cached_usd_per_1000": round(on / 1e9, 6),
                "uncached_usd_per_1000": round(off / 1e9, 6),
                "saving_pct": round(100 * (1 - on / off), 1),
            }
        )
    return results


class _Tally:
    """Usage summed over a workload's calls, as the emulator reported it."""

    def __init__(self) -> None:
        self.usage = TokenUsage()
        self.billed_calls = 0
        self.service_nanos = 0
        self.errors = 0


async def _through_tiergate(target: str, workload: CostWorkload, concurrency: int) -> _Tally:
    tally = _Tally()
    async with grpc.aio.insecure_channel(target) as channel:
        rpc = getattr(task_service_pb2_grpc.TaskServiceStub(channel), workload.rpc)

        async def one(request: Any) -> None:
            usage: usage_pb2.Usage = (await rpc(request, timeout=120)).usage
            tally.usage += TokenUsage(
                input_tokens=usage.input_tokens,
                cache_write_5m_tokens=usage.cache_creation_5m_input_tokens,
                cache_write_1h_tokens=usage.cache_creation_1h_input_tokens,
                cache_read_tokens=usage.cache_read_input_tokens,
                output_tokens=usage.output_tokens,
            )
            tally.billed_calls += usage.billed_calls
            tally.service_nanos += usage.cost.total_nanos

        await _first_then_concurrent(one, workload.requests, concurrency)
    return tally


async def _without_breakpoints(base_url: str, workload: CostWorkload, concurrency: int) -> _Tally:
    """The same request bodies tiergate sends, every ``cache_control`` removed, via the SDK."""
    tally = _Tally()
    task = TASKS[workload.rpc]
    facts = PriceTable.load().facts(MODEL)
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="bench") as client:

        async def one(request: Any) -> None:
            params = render_params(task.prompt(request), facts=facts, ttl="5m")
            for block in params["system"]:
                block.pop("cache_control", None)
            usage = (await client.messages.create(**params, timeout=120)).usage
            tally.usage += TokenUsage(
                input_tokens=usage.input_tokens,
                cache_write_5m_tokens=usage.cache_creation_input_tokens or 0,
                cache_read_tokens=usage.cache_read_input_tokens or 0,
                output_tokens=usage.output_tokens,
            )
            tally.billed_calls += 1

        await _first_then_concurrent(one, workload.requests, concurrency)
    return tally


async def _first_then_concurrent(one: Any, requests: tuple[Any, ...], concurrency: int) -> None:
    """The first call alone (it writes the cache), then the rest ``concurrency`` at a time."""
    await one(requests[0])
    queue = iter(requests[1:])

    async def worker() -> None:
        for request in queue:
            await one(request)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
