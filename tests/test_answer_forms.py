"""Bare answers in the forms a real model writes them, over real gRPC to the scripted emulator.

Each row states exactly what the model says (a script) and what the caller gets: the label in
one billed call when the text names exactly one of the caller's labels, else a second,
structured call, whose answer is always one of the caller's labels.
"""

from __future__ import annotations

import json

import pytest

from bench.plain import ANSWER_FORMS, ARTICLE_LABELS
from harness import Upstream
from tiergate.emulator import Script
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
ARTICLE = [label.name for label in ARTICLE_LABELS]
PREFIXED = ["Bill", "Billing", "Billing dispute"]
CASED = ["billing", "Billing", "Technical"]

# (labels, what the model writes, the label read in one call or None for a re-ask)
ADVERSARIAL: list[tuple[list[str], str, str | None]] = [
    # A label that is a prefix of another: the longer mention is the one named.
    (PREFIXED, "Bill", "Bill"),
    (PREFIXED, "billing.", "Billing"),
    (PREFIXED, "The ticket is a Billing dispute.", "Billing dispute"),
    (PREFIXED, "**Billing Dispute**", "Billing dispute"),
    (PREFIXED, "Bill or Billing?", None),
    # Labels differing only in case: the exact spelling decides, a third spelling cannot.
    (CASED, "billing", "billing"),
    (CASED, "Billing", "Billing"),
    (CASED, "It is about Billing.", "Billing"),
    (CASED, "BILLING", None),
    (CASED, "technical", "Technical"),
    # A label named inside a refusal or a denial is not chosen.
    (ARTICLE, "I can't classify this as Billing without more details.", None),
    (ARTICLE, "I'm sorry, but I cannot determine whether this is Technical.", None),
    (ARTICLE, "Not Billing.", None),
    # None, several, or something that is no label.
    (ARTICLE, "Sales", None),
    (ARTICLE, "Billing, Technical", None),
    (ARTICLE, "It could be Billing or Account.", None),
    (ARTICLE, "", None),
    (ARTICLE, "Billing-related", "Billing"),
    (ARTICLE, " ".join(["This ticket mentions an invoice"] * 6) + " so Billing.", None),
]


def classify(stub: Stub, labels: list[str]) -> pb.ClassifyResponse:
    request = pb.ClassifyRequest(
        text="I was charged twice.", labels=[pb.Label(name=n) for n in labels]
    )
    reply: pb.ClassifyResponse = stub.Classify(request, timeout=10)
    return reply


@pytest.mark.parametrize(("text", "label"), ANSWER_FORMS)
def test_realistic_forms_are_taken_in_one_call(
    stub: Stub, upstream: Upstream, text: str, label: str
) -> None:
    """Every common form of a label is that label, in the call already paid for."""
    upstream.script(Script(text=text))
    reply = classify(stub, ARTICLE)
    assert (reply.label, reply.usage.billed_calls) == (label, 1)
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(("labels", "text", "label"), ADVERSARIAL)
def test_adversarial_forms(
    stub: Stub, upstream: Upstream, labels: list[str], text: str, label: str | None
) -> None:
    """What names exactly one label is it; anything else is asked again with the schema,
    and the label is always one of the caller's."""
    fallback = labels[-1]
    upstream.script(Script(text=text), Script(text=json.dumps({"label": fallback})))
    reply = classify(stub, labels)
    assert reply.label in labels
    if label is None:
        assert (reply.label, reply.usage.billed_calls) == (fallback, 2)
        assert "output_config" in upstream.requests[1]
    else:
        assert (reply.label, reply.usage.billed_calls) == (label, 1)
