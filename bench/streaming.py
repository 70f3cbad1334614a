"""Streaming against the whole answer: at the seed's latency (time to first token and output
rate per model), the time to a stream's first partial message and to its complete one, per
streaming task, beside the unary RPC's time to its answer; and the CPU it takes to read a
streamed answer's JSON as it is written, per delta, for a short answer and a long one (read
once, the cost per delta does not grow with the answer).

    .venv/bin/python -m bench.streaming          # this scenario alone (about half a minute)
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import grpc
from google.protobuf.message import Message

from bench.procs import EmulatorProcess, ServerProcess
from tiergate.upstream.written import Written
from tiergate.v1 import stream_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

ROUNDS = 5
READING_SIZES = (4_000, 50_000)
"""Answers of about 1,000 and 12,500 tokens, in characters."""
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


_DELTA_CHARS = 4
"""About one token of English text: the size of a typical text_delta."""


def reading(size_chars: int, rounds: int = 5) -> float:
    """Microseconds of CPU per delta to read an answer of about ``size_chars`` characters
    (a summary and five key points) arriving in 4-character deltas, as a stream reads it:
    each delta fed once, the answer as far as written taken after each (best of ``rounds``)."""
    words = _TEXT.split()
    summary = " ".join(words * (size_chars // len(_TEXT) + 1))[:size_chars]
    text = json.dumps({"summary": summary, "key_points": [" ".join(words[:12])] * 5})
    deltas = [text[i : i + _DELTA_CHARS] for i in range(0, len(text), _DELTA_CHARS)]
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        written = Written()
        for delta in deltas:
            if written.feed(delta):
                _ = written.growing, written.complete
        best = min(best, time.process_time() - began)
    return round(best / len(deltas) * 1e6, 2)


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
        found["reading_us_per_delta"] = {str(size): reading(size) for size in READING_SIZES}
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
    cost = found.get("reading_us_per_delta", {})
    if cost:
        per = ", ".join(f"{cost[str(n)]:.2f} µs at {n // 1000} KB" for n in READING_SIZES)
        lines += [
            "",
            f"Reading the answer's JSON as it streams ({_DELTA_CHARS}-character deltas,"
            f" `upstream/written.py`), CPU per delta: {per}.",
        ]
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
    cost = found.get("reading_us_per_delta", {})
    if cost:
        per = ", ".join(f"{cost[str(n)]:.2f} us at {n // 1000} KB" for n in READING_SIZES)
        lines.append(f"reading the streamed JSON, CPU per delta: {per}")
    return "\n".join(lines)


if __name__ == "__main__":
    result = run()
    print(section(result))
    print(markdown(result))
