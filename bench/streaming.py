"""Streaming against the whole answer: at the seed's latency (time to first token and output
rate per model), the time to a stream's first partial message and to its complete one, per
streaming task, beside the unary RPC's time to its answer.

    .venv/bin/python -m bench.streaming          # this scenario alone (about half a minute)
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import grpc
from google.protobuf.message import Message

from bench.procs import EmulatorProcess, ServerProcess
from tiergate.v1 import stream_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

ROUNDS = 5
README_START = "<!-- bench-streaming:start -->"
README_END = "<!-- bench-streaming:end -->"
_TEXT = (
    "The quarterly review covered the payment migration, the support backlog and the hiring"
    " plan. The migration to the new payment provider slipped by two weeks because the"
    " reconciliation reports did not match; finance asked for a parallel run through the end"
    " of the month before the old provider is switched off. The support backlog fell from 420"
    " to 260 tickets after the help-center articles were rewritten, but refund requests still"
    " take four days on average. Two engineers join in March; the team will pair them with"
    " the on-call rotation from their second week. Dana owns the parallel run and reports"
    " daily; Omar will publish the refund policy changes on the status page before Friday."
)
_DOCUMENTS = [
    pb.Document(id="policy", text="Refunds are issued within 5 business days of approval."),
    pb.Document(id="plans", text="Annual plans can be cancelled at any time from the portal."),
]
TASKS: dict[str, Message] = {
    "Summarize": pb.SummarizeRequest(text=_TEXT, max_words=150, include_key_points=True),
    "Answer": pb.AnswerRequest(question="How long do refunds take?", documents=_DOCUMENTS),
    "Reason": pb.ReasonRequest(
        question="A train leaves at 9:40 and the trip takes 2 hours 35 minutes. When does it"
        " arrive, and is that before noon?",
        context=_TEXT,
    ),
}


def run(rounds: int = ROUNDS, scale: float = 1.0) -> dict[str, Any]:
    """Per task, medians over ``rounds`` calls each: unary answer, first partial, complete."""
    with (
        EmulatorProcess(latency="seed", latency_scale=scale) as upstream,
        ServerProcess(upstream.url, response_cache_ttl_s=0) as server,
        grpc.insecure_channel(server.target) as channel,
    ):
        unary = task_service_pb2_grpc.TaskServiceStub(channel)
        streams = stream_service_pb2_grpc.StreamServiceStub(channel)
        found: dict[str, Any] = {"latency": "seed", "latency_scale": scale, "rounds": rounds}
        for task, request in TASKS.items():
            whole, first, complete, partials = [], [], [], []
            for _ in range(rounds):
                began = time.perf_counter()
                reply = getattr(unary, task)(request, timeout=60)
                whole.append(time.perf_counter() - began)
                began = time.perf_counter()
                seen = 0
                for _message in getattr(streams, f"Stream{task}")(request, timeout=60):
                    seen += 1
                    if seen == 1:
                        first.append(time.perf_counter() - began)
                complete.append(time.perf_counter() - began)
                partials.append(seen - 1)
                upstream.reset()
            found[task] = {
                "output_tokens": reply.usage.output_tokens,
                "unary_s": round(statistics.median(whole), 3),
                "first_partial_s": round(statistics.median(first), 3),
                "stream_complete_s": round(statistics.median(complete), 3),
                "partials": round(statistics.median(partials)),
            }
        return found


def markdown(found: dict[str, Any]) -> str:
    """The scenario's table for bench/README.md."""
    lines = [
        f"Seed latency x{found['latency_scale']:g}, median of {found['rounds']} calls per task"
        " and path:",
        "",
        "| task | output tokens | unary answer | first partial | stream complete | partials |",
        "|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        row = found[task]
        lines.append(
            f"| {task} | {row['output_tokens']} | {row['unary_s']:.3f} s"
            f" | {row['first_partial_s']:.3f} s | {row['stream_complete_s']:.3f} s"
            f" | {row['partials']} |"
        )
    return "\n".join(lines)


def section(found: dict[str, Any]) -> str:
    """The scenario's table, as the bench prints it."""
    lines = [
        f"streaming at the seed's latency (median of {found['rounds']} calls each)",
        f"{'task':<10} {'output':>7} {'unary':>8} {'first partial':>14} {'stream end':>11}"
        f" {'partials':>9}",
    ]
    for task in TASKS:
        row = found[task]
        lines.append(
            f"{task:<10} {row['output_tokens']:>7} {row['unary_s']:>7.3f}s"
            f" {row['first_partial_s']:>13.3f}s {row['stream_complete_s']:>10.3f}s"
            f" {row['partials']:>9}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    result = run()
    print(section(result))
    print(markdown(result))
