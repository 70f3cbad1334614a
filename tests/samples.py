"""Valid requests for every RPC, shared by the tests."""

from __future__ import annotations

import json
import pathlib

from google.protobuf.message import Message

from tiergate.v1 import task_service_pb2 as pb

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

TICKET_LABELS = [
    pb.Label(name="billing", description="charges, refunds, invoices and payment problems"),
    pb.Label(name="technical", description="errors, crashes, bugs and outages"),
    pb.Label(name="account", description="login, password and profile changes"),
]

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "date": {"type": "string"},
    },
    "required": ["email", "amount"],
}

DOCUMENTS = [
    pb.Document(
        id="refunds",
        title="Refund policy",
        text="Refunds are issued within 14 days of a request. "
        "Annual plans are refunded pro rata after the first month.",
    ),
    pb.Document(
        id="security",
        title="Security",
        text="Passwords are hashed with Argon2. Sessions expire after 12 hours of inactivity.",
    ),
]

MEETING = (
    "The team met to plan the March release. The release date moves to March 14 because the "
    "payment migration is late. Dana will finish the migration by Friday. Omar must update the "
    "status page before the release. Everyone agreed to freeze features on March 7."
)

# Classify and Reason ask for a confidence: the structured-outputs path, whose re-asks the
# failure tests pin.
CLASSIFY = pb.ClassifyRequest(
    text="I was charged twice for my subscription this month.",
    labels=TICKET_LABELS,
    include_confidence=True,
)

SUMMARIZE = pb.SummarizeRequest(text=MEETING, max_words=40)

EXTRACT = pb.ExtractRequest(
    text="Invoice sent to ana@example.com on 2026-11-02 for a total of 129.50 dollars.",
    json_schema=json.dumps(INVOICE_SCHEMA),
)

ANSWER = pb.AnswerRequest(question="How long do refunds take?", documents=DOCUMENTS)

MODERATE = pb.ModerateRequest(text="Thanks for the quick fix, the dashboard works again.")

REASON = pb.ReasonRequest(
    question="If a ticket costs 0.5 cents on the fast tier, what do 500 tickets cost?",
    context="Costs add up linearly per ticket.",
    include_confidence=True,
)

# Every RPC's sample, by RPC name: the contract test asks for one per RPC.
READ = pb.ReadRequest(
    documents=[
        pb.ReadDocument(
            data=(EXAMPLES / "invoice.pdf").read_bytes(),
            media_type="application/pdf",
            name="invoice.pdf",
        )
    ],
    json_schema=(EXAMPLES / "invoice.schema.json").read_text(encoding="utf-8"),
)

SAMPLES: dict[str, Message] = {
    "Classify": CLASSIFY,
    "Summarize": SUMMARIZE,
    "Extract": EXTRACT,
    "Answer": ANSWER,
    "Moderate": MODERATE,
    "Reason": REASON,
    "Read": READ,
}


def long_policy(words: int = 6000) -> str:
    """A stable instruction block far above every model's minimum cacheable length."""
    rules = [
        f"Rule {i}: tickets that mention topic {i} go to the queue that owns topic {i}."
        for i in range(words // 16)
    ]
    return "\n".join(rules)
