"""What the benchmarks send: a Classify-shaped call, and the seed article's three workloads.

Texts are synthetic but deterministic (a seeded generator over a support-desk vocabulary), and
sized with the emulator's own token counter, the one that bills them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import Message

from tiergate.emulator.tokens import count_tokens, truncate_to_tokens
from tiergate.v1 import task_service_pb2 as pb

_WORDS = tuple(
    " ".join(
        (
            "account invoice refund charge subscription plan annual monthly payment card bank",
            "dashboard login password reset email address profile export report error crash",
            "outage latency timeout upgrade downgrade renewal cancellation trial discount coupon",
            "receipt tax region team member admin role permission token integration webhook api",
            "limit quota storage backup restore migration release feature request bug screen",
            "mobile browser customer agent escalation priority response resolution policy days",
            "hours business week",
        )
    ).split()
)

TICKET_LABELS = (
    pb.Label(name="Billing", description="charges, refunds, invoices, payment methods and taxes"),
    pb.Label(name="Technical", description="errors, crashes, outages, bugs and integrations"),
    pb.Label(name="Account", description="login, password, profile, team members and roles"),
    pb.Label(name="General", description="anything else: questions, feedback, sales"),
)

OVERHEAD_REQUEST = pb.ClassifyRequest(
    text="I was charged twice for my subscription this month.", labels=TICKET_LABELS
)
"""The Classify-shaped call of the overhead benchmark: a short ticket, four labels."""


def prose(rng: random.Random, tokens: int) -> str:
    """Sentences of support-desk words holding exactly ``tokens`` emulator tokens."""
    sentences: list[str] = []
    counted = 0
    # Whitespace never joins two tokens, so a text's count is the sum of its sentences'.
    while counted < tokens:
        sentence = " ".join(rng.choices(_WORDS, k=rng.randint(8, 18))).capitalize() + "."
        sentences.append(sentence)
        counted += count_tokens(sentence)
    return truncate_to_tokens(" ".join(sentences), tokens)


@dataclass(frozen=True)
class CostWorkload:
    """One of the seed article's workloads: a stable context and a stream of requests."""

    name: str
    rpc: str
    description: str
    requests: tuple[Message, ...]


def ticket_classification(count: int, seed: int = 7) -> CostWorkload:
    """Support tickets of 800 tokens, classified after a 5,000-token support policy."""
    rng = random.Random(seed)
    policy = "Support policy for ticket triage.\n" + prose(rng, 5000)
    requests = tuple(
        pb.ClassifyRequest(text=prose(rng, 800), labels=TICKET_LABELS, instructions=policy)
        for _ in range(count)
    )
    return CostWorkload(
        "ticket classification",
        "Classify",
        "800-token ticket after a 5,000-token policy",
        requests,
    )


def document_summarization(count: int, seed: int = 11) -> CostWorkload:
    """Distinct 2,000-token documents: only the task's fixed instructions are stable."""
    rng = random.Random(seed)
    requests = tuple(
        pb.SummarizeRequest(text=prose(rng, 2000), max_words=120) for _ in range(count)
    )
    return CostWorkload(
        "document summarization", "Summarize", "2,000-token document, 120 words", requests
    )


def answer_over_documents(count: int, seed: int = 13) -> CostWorkload:
    """Questions over one 20,000-token set of ten documents."""
    rng = random.Random(seed)
    documents = [
        pb.Document(id=f"doc-{i}", title=f"Handbook part {i}", text=prose(rng, 2000))
        for i in range(10)
    ]
    questions = _questions(rng)
    requests = tuple(
        pb.AnswerRequest(question=next(questions), documents=documents) for _ in range(count)
    )
    return CostWorkload(
        "answer over documents", "Answer", "question over a 20,000-token document set", requests
    )


def _questions(rng: random.Random) -> Iterator[str]:
    while True:
        a, b, c = rng.sample(_WORDS, 3)
        yield f"What does the handbook say about the {a} {b} when the {c} changes?"


def cost_workloads(count: int) -> list[CostWorkload]:
    return [
        ticket_classification(count),
        document_summarization(count),
        answer_over_documents(count),
    ]
