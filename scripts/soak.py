"""Soak: N concurrent callers for T seconds against a real server and emulator, faults mixed in.

    .venv/bin/python scripts/soak.py --concurrency 200 --seconds 60

Starts a standalone emulator (seed-article latency) and ``tiergate serve`` pointed at it, keeps
``--concurrency`` callers busy with a mix of all six RPCs for ``--seconds``, and every second
queues a fault (429 with retry-after, 529, 500, 401, a slow answer, malformed, truncated, empty,
off-schema and refused output; some outlast the retries). Reports requests, outcomes by
status, latency p50/p99 and the server's RSS after warm-up and at the end; exits 1 if any call
ended in UNKNOWN or the RSS grew 10% or more.
Not part of ``make test``: it is a load run, and only ever targets loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from samples import SAMPLES  # the tests' valid requests, one per RPC
from tiergate.v1 import task_service_pb2_grpc

FAULTS: list[dict[str, Any]] = [
    {"kind": "rate_limit", "retry_after_s": 0.2},
    {"kind": "overloaded"},
    {"kind": "server_error"},
    {"kind": "slow", "delay_s": 1.0},
    {"kind": "malformed"},
    {"kind": "truncated"},
    {"kind": "empty"},
    {"kind": "refusal"},
    {"kind": "off_schema"},
    # Faults that outlast the retries or re-asks, so callers see every failure status too.
    {"kind": "overloaded", "count": 3},
    {"kind": "malformed", "count": 2},
    {"kind": "rate_limit", "retry_after_s": 30},
    {"kind": "unauthorized"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def inject(emulator_url: str, fault: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{emulator_url}/_emulator/faults",
        data=json.dumps([fault]).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()


async def wait_serving(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(200):
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("server did not become SERVING")


async def caller(
    stub: task_service_pb2_grpc.TaskServiceStub,
    until: float,
    outcomes: Counter[str],
    latencies: list[float],
) -> None:
    rpcs = list(SAMPLES)
    while time.monotonic() < until:
        rpc = random.choice(rpcs)
        started = time.perf_counter()
        try:
            await getattr(stub, rpc)(SAMPLES[rpc], timeout=10)
            outcomes["OK"] += 1
        except grpc.RpcError as error:
            outcomes[error.code().name] += 1
        latencies.append(time.perf_counter() - started)


class Service:
    """A standalone emulator (seed latency) and ``tiergate serve`` pointed at it."""

    def __init__(self, concurrency: int) -> None:
        emulator_port, self.port = free_port(), free_port()
        self.emulator_url = f"http://127.0.0.1:{emulator_port}"
        self.emulator = subprocess.Popen(
            [sys.executable, "-m", "tiergate.emulator", "--port", str(emulator_port),
             "--latency", "seed"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        env = dict(os.environ, ANTHROPIC_API_KEY="soak", ANTHROPIC_BASE_URL=self.emulator_url,
                   TIERGATE_HOST="127.0.0.1", TIERGATE_PORT=str(self.port),
                   TIERGATE_MAX_CONCURRENCY=str(concurrency * 2))  # fmt: skip
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tiergate.cli", "serve", "--log-level", "warning"], env=env
        )

    def stop(self) -> int:
        """SIGTERM the server (it drains); its exit code."""
        self.server.send_signal(signal.SIGTERM)
        code = self.server.wait(timeout=60)
        for process in (self.server, self.emulator):
            if process.poll() is None:
                process.kill()
            process.wait()
        return code


async def soak(
    service: Service, concurrency: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    target = f"127.0.0.1:{service.port}"
    await wait_serving(target)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)
        warm: Counter[str] = Counter()
        await asyncio.gather(
            *(caller(stub, time.monotonic() + warmup_s, warm, []) for _ in range(concurrency))
        )
        rss_start = rss_kib(service.server.pid)
        outcomes: Counter[str] = Counter()
        latencies: list[float] = []
        until = time.monotonic() + seconds

        async def faults() -> None:
            while time.monotonic() < until:
                await asyncio.to_thread(inject, service.emulator_url, random.choice(FAULTS))
                await asyncio.sleep(1)

        await asyncio.gather(
            faults(), *(caller(stub, until, outcomes, latencies) for _ in range(concurrency))
        )
        rss_end = rss_kib(service.server.pid)
    latencies.sort()
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "requests": sum(outcomes.values()),
        "requests_per_s": round(sum(outcomes.values()) / seconds, 1),
        "outcomes": dict(outcomes.most_common()),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "rss_growth_pct": round((rss_end - rss_start) / rss_start * 100, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup-s", type=float, default=5)
    args = parser.parse_args()
    service = Service(args.concurrency)
    try:
        report = asyncio.run(soak(service, args.concurrency, args.seconds, args.warmup_s))
    finally:
        report_exit = service.stop()
    report["server_exit_code"] = report_exit
    print(json.dumps(report, indent=2))
    healthy = (
        "UNKNOWN" not in report["outcomes"]
        and report["rss_growth_pct"] < 10
        and report["server_exit_code"] == 0
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
