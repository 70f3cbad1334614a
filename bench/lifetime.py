"""Cache lifetime on a low-traffic workload: one call every 8 minutes for a day.

The real model client sends each call through the SDK to an emulator whose cache runs on a
manual clock, advanced between calls (no real waiting), once per TTL setting: 5m, 1h and auto
(the per-prefix choice from observed reuse). The ledger prices what the emulator billed.

    .venv/bin/python -m bench.lifetime
"""

from __future__ import annotations

import asyncio
import functools
import random
from typing import Any

import anthropic

from bench.workloads import TICKET_LABELS, prose
from tiergate.calls.reuse import ReuseTracker
from tiergate.config import CacheTtl, Settings
from tiergate.emulator.app import EmulatorConfig
from tiergate.emulator.testing import ManualClock, ThreadedEmulator
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.tasks import TASKS
from tiergate.upstream.model_client import ModelClient
from tiergate.v1 import task_service_pb2 as pb

MODEL = "claude-haiku-4-5"
GAP_S = 8 * 60
CALLS = 24 * 60 * 60 // GAP_S
SHAPE = "800-token ticket after a 5,000-token policy, one call every 8 minutes for a day"


def _requests(count: int) -> list[pb.ClassifyRequest]:
    rng = random.Random(17)
    policy = "Support policy for ticket triage.\n" + prose(rng, 5000)
    return [
        pb.ClassifyRequest(text=prose(rng, 800), labels=TICKET_LABELS, instructions=policy)
        for _ in range(count)
    ]


async def _day(ttl: CacheTtl, requests: list[pb.ClassifyRequest]) -> TokenUsage:
    clock = ManualClock()
    task = TASKS["Classify"]
    facts = PriceTable.load().facts(MODEL)
    usage = TokenUsage()
    with ThreadedEmulator(EmulatorConfig(clock=clock)) as served:
        sdk = anthropic.AsyncAnthropic(base_url=served.base_url, api_key="bench")
        client = ModelClient(sdk, Settings(cache_ttl=ttl), reuse=ReuseTracker(clock=clock))
        try:
            for request in requests:
                completion = await client.complete(
                    task.prompt(request),
                    facts=facts,
                    check=functools.partial(task.check, request),
                    size_field=lambda: "text",
                )
                usage += completion.usage
                clock.advance(GAP_S)
        finally:
            await client.close()
    return usage


def run(calls: int = CALLS) -> dict[str, Any]:
    """Cost of the day per TTL setting, and auto's saving against each fixed one."""
    requests = _requests(calls)
    prices = PriceTable.load()
    nanos: dict[str, int] = {}
    usages: dict[str, dict[str, int]] = {}
    for ttl in ("5m", "1h", "auto"):
        usage = asyncio.run(_day(ttl, requests))
        nanos[ttl] = prices.cost(MODEL, usage).total_nanos
        usages[ttl] = {
            "input": usage.input_tokens,
            "cache_write_5m": usage.cache_write_5m_tokens,
            "cache_write_1h": usage.cache_write_1h_tokens,
            "cache_read": usage.cache_read_tokens,
            "output": usage.output_tokens,
        }
    return {
        "shape": SHAPE,
        "calls": calls,
        "nanos": nanos,
        "usage": usages,
        "auto_saving_vs_5m_pct": round(100 * (1 - nanos["auto"] / nanos["5m"]), 1),
    }


def markdown(found: dict[str, Any]) -> str:
    n = found["nanos"]
    return (
        f"Cache lifetime, {found['shape']} ({found['calls']} calls, emulator on a manual clock):"
        f" ${n['5m'] / 1e9:.4f} with 5m breakpoints, ${n['1h'] / 1e9:.4f} with 1h,"
        f" ${n['auto'] / 1e9:.4f} with `auto`: {found['auto_saving_vs_5m_pct']:.1f}% saved"
        " against 5m.\n"
    )


if __name__ == "__main__":
    print(markdown(run()))
