"""The batch scenario: 10,000 Classify items end to end through ``BatchService``, against the
same items sent interactively, on real processes (the emulator and ``tiergate serve``).

    .venv/bin/python -m bench.batch            # this scenario alone (about a minute)
    .venv/bin/python -m bench.batch --items 500

Reports the batch's wall time (CreateBatch to the last result read), the server's memory
(resident before, peak during), and the cost of the batch against the same items interactively,
each from an empty prompt cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from typing import Any

import grpc

from bench.procs import EmulatorProcess, ServerProcess
from bench.workloads import _WORDS, TICKET_LABELS
from tiergate.client import ENDED_STATES, batch_item
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

ITEMS = 10_000
_INTERACTIVE_CONCURRENCY = 64
_POLL_S = 0.2
_MAX_MESSAGE = 512 * 1024 * 1024


def tickets(count: int) -> list[pb.ClassifyRequest]:
    """Deterministic, distinct support tickets."""
    rng = random.Random(16)
    return [
        pb.ClassifyRequest(
            text=f"Ticket {i}: " + " ".join(rng.choices(_WORDS, k=rng.randint(12, 40))),
            labels=TICKET_LABELS,
        )
        for i in range(count)
    ]


def _through_batch(server: ServerProcess, requests: list[pb.ClassifyRequest]) -> dict[str, Any]:
    options = [("grpc.max_send_message_length", _MAX_MESSAGE)]
    with grpc.insecure_channel(server.target, options=options) as channel:
        stub = batch_service_pb2_grpc.BatchServiceStub(channel)
        rss_before = server.rss_mb()
        started = time.perf_counter()
        items = [batch_item(f"t{i}", request) for i, request in enumerate(requests)]
        created = stub.CreateBatch(bpb.CreateBatchRequest(items=items), timeout=600)
        accepted_s = time.perf_counter() - started
        batch = created
        while batch.state not in ENDED_STATES:
            time.sleep(_POLL_S)
            batch = stub.GetBatch(bpb.GetBatchRequest(name=created.name), timeout=60)
        ended_s = time.perf_counter() - started
        read = 0
        token = ""
        while True:
            page = stub.ListBatchResults(
                bpb.ListBatchResultsRequest(parent=created.name, page_size=1000, page_token=token),
                timeout=60,
            )
            read += len(page.results)
            token = page.next_page_token
            if not token:
                break
        wall_s = time.perf_counter() - started
    return {
        "items": len(requests),
        "state": bpb.Batch.State.Name(batch.state),
        "succeeded": batch.counts.succeeded,
        "results_read": read,
        "accepted_s": round(accepted_s, 2),
        "ended_s": round(ended_s, 2),
        "wall_s": round(wall_s, 2),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(server.peak_rss_mb(), 1),
        "cost_nanos": batch.usage.cost.total_nanos,
    }


async def _interactive(target: str, requests: list[pb.ClassifyRequest]) -> dict[str, Any]:
    queue = list(reversed(requests))
    total = 0
    failed = 0
    started = time.perf_counter()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)

        async def worker() -> None:
            nonlocal total, failed
            while queue:
                request = queue.pop()
                try:
                    reply = await stub.Classify(request, timeout=120)
                except grpc.RpcError:
                    failed += 1
                    continue
                total += reply.usage.cost.total_nanos

        await asyncio.gather(*(worker() for _ in range(_INTERACTIVE_CONCURRENCY)))
    return {
        "cost_nanos": total,
        "failed": failed,
        "wall_s": round(time.perf_counter() - started, 2),
        "concurrency": _INTERACTIVE_CONCURRENCY,
    }


def batch_scenario(items: int = ITEMS) -> dict[str, Any]:
    """The batch end to end, then the same items interactively, each from an empty cache."""
    requests = tickets(items)
    with (
        tempfile.TemporaryDirectory() as store,
        EmulatorProcess() as upstream,
        ServerProcess(
            upstream.url, batch_dir=store, batch_poll_s=_POLL_S, max_message_bytes=8 << 20
        ) as server,
    ):
        batch = _through_batch(server, requests)
        upstream.reset()
        interactive = asyncio.run(_interactive(server.target, requests))
    saved = 1 - batch["cost_nanos"] / interactive["cost_nanos"] if interactive["cost_nanos"] else 0
    return {
        "batch": batch,
        "interactive": interactive,
        "batch_over_interactive": round(1 - saved, 4),
    }


def rows(found: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """The report's rows for this scenario."""
    if not found:
        return []
    b, i = found["batch"], found["interactive"]
    return [
        (
            f"batch of {b['items']:,} Classify items, end to end",
            f"{b['wall_s']:.1f} s ({b['accepted_s']:.1f} s to accept), peak RSS"
            f" {b['peak_rss_mb']:.0f} MB",
            "every item accounted for",
            "yes" if b["results_read"] == b["items"] == b["succeeded"] else "no",
        ),
        (
            "batch cost vs the same items interactively",
            f"${b['cost_nanos'] / 1e9:.4f} vs ${i['cost_nanos'] / 1e9:.4f}"
            f" ({found['batch_over_interactive'] * 100:.1f}%)",
            "50%",
            "yes" if b["cost_nanos"] * 2 == i["cost_nanos"] else "no",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__)
    parser.add_argument("--items", type=int, default=ITEMS)
    found = batch_scenario(parser.parse_args().items)
    print(json.dumps(found, indent=2))
    for row in rows(found):
        print("  ".join(row))


if __name__ == "__main__":
    main()
