"""Bad requests get INVALID_ARGUMENT with field violations and never reach the model."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from harness import Upstream, rich_status
from samples import DOCUMENTS, TICKET_LABELS
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
OBJECT_SCHEMA = '{"type": "object", "properties": {"a": {"type": "string"}}}'
BIG = "word " * 250_000  # about 250,000 tokens: beyond every model's 200,000-token window

CASES: list[tuple[str, str, Message, str]] = [
    ("Classify", "empty text", pb.ClassifyRequest(text="", labels=TICKET_LABELS), "text"),
    ("Classify", "blank text", pb.ClassifyRequest(text=" \n\t", labels=TICKET_LABELS), "text"),
    ("Classify", "no labels", pb.ClassifyRequest(text="hi"), "labels"),
    (
        "Classify",
        "one label",
        pb.ClassifyRequest(text="hi", labels=[pb.Label(name="only")]),
        "labels",
    ),
    (
        "Classify",
        "duplicate labels",
        pb.ClassifyRequest(text="hi", labels=[pb.Label(name="a"), pb.Label(name="a")]),
        "labels[1].name",
    ),
    (
        "Classify",
        "blank label name",
        pb.ClassifyRequest(text="hi", labels=[pb.Label(name="a"), pb.Label(name=" ")]),
        "labels[1].name",
    ),
    (
        "Classify",
        "example with an unknown label",
        pb.ClassifyRequest(
            text="hi",
            labels=TICKET_LABELS,
            examples=[pb.ClassifyExample(text="x", label="nope")],
        ),
        "examples[0].label",
    ),
    ("Summarize", "blank text", pb.SummarizeRequest(text="  "), "text"),
    ("Summarize", "negative max_words", pb.SummarizeRequest(text="a", max_words=-5), "max_words"),
    (
        "Summarize",
        "unknown format",
        pb.SummarizeRequest(text="a", format=9),  # type: ignore[arg-type]  # an unknown enum value on purpose
        "format",
    ),
    (
        "Extract",
        "schema not JSON",
        pb.ExtractRequest(text="a", json_schema="{type:"),
        "json_schema",
    ),
    ("Extract", "empty schema", pb.ExtractRequest(text="a", json_schema=""), "json_schema"),
    (
        "Extract",
        "invalid JSON Schema",
        pb.ExtractRequest(text="a", json_schema='{"type": 12}'),
        "json_schema/type",
    ),
    (
        "Extract",
        "schema of an array",
        pb.ExtractRequest(text="a", json_schema='{"type": "array"}'),
        "json_schema",
    ),
    ("Extract", "schema is a list", pb.ExtractRequest(text="a", json_schema="[]"), "json_schema"),
    ("Extract", "blank text", pb.ExtractRequest(text="", json_schema=OBJECT_SCHEMA), "text"),
    ("Answer", "no documents", pb.AnswerRequest(question="why?"), "documents"),
    ("Answer", "blank question", pb.AnswerRequest(question=" ", documents=DOCUMENTS), "question"),
    (
        "Answer",
        "duplicate document ids",
        pb.AnswerRequest(
            question="why?",
            documents=[pb.Document(id="a", text="x"), pb.Document(id="a", text="y")],
        ),
        "documents[1].id",
    ),
    (
        "Answer",
        "blank document text",
        pb.AnswerRequest(question="why?", documents=[pb.Document(id="a", text=" ")]),
        "documents[0].text",
    ),
    ("Moderate", "blank text", pb.ModerateRequest(text=""), "text"),
    (
        "Moderate",
        "duplicate categories",
        pb.ModerateRequest(
            text="a",
            categories=[pb.ModerationCategory(name="x"), pb.ModerationCategory(name="x")],
        ),
        "categories[1].name",
    ),
    ("Reason", "blank question", pb.ReasonRequest(question="\n"), "question"),
]


def violations(error: grpc.RpcError) -> tuple[str, list[str]]:
    """The ErrorInfo reason and the BadRequest field names of a failed call."""
    status = rich_status(error)
    assert status is not None
    reason, fields = "", []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "tiergate"
            reason = info.reason
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
            assert all(v.description for v in bad.field_violations)
    return reason, fields


class TestInvalidRequests:
    @pytest.mark.parametrize(
        ("rpc", "case", "request_", "field"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
    )
    def test_rejected_with_field_violation_before_the_model(
        self, stub: Stub, upstream: Upstream, rpc: str, case: str, request_: Message, field: str
    ) -> None:
        """INVALID_ARGUMENT, reason INVALID_REQUEST, a violation on the field, no model call."""
        with pytest.raises(grpc.RpcError) as caught:
            getattr(stub, rpc)(request_, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reason, fields = violations(caught.value)
        assert reason == "INVALID_REQUEST"
        assert field in fields
        assert upstream.requests == []

    def test_all_violations_are_reported_at_once(self, stub: Stub) -> None:
        """Several problems in one request come back together."""
        request = pb.ClassifyRequest(text="", labels=[pb.Label(name="a"), pb.Label(name="a")])
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(request, timeout=10)
        _, fields = violations(caught.value)
        assert fields == ["text", "labels[1].name"]

    @pytest.mark.parametrize("rpc", ["Classify", "Summarize", "Moderate"])
    def test_text_beyond_the_context_window(self, stub: Stub, upstream: Upstream, rpc: str) -> None:
        """A text too large for the model's context window is refused before any call."""
        request = {
            "Classify": pb.ClassifyRequest(text=BIG, labels=TICKET_LABELS),
            "Summarize": pb.SummarizeRequest(text=BIG),
            "Moderate": pb.ModerateRequest(text=BIG),
        }[rpc]
        with pytest.raises(grpc.RpcError) as caught:
            getattr(stub, rpc)(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reason, fields = violations(caught.value)
        assert reason == "REQUEST_TOO_LARGE"
        assert fields == ["text"]
        assert upstream.requests == []

    def test_error_message_does_not_quote_the_request(self, stub: Stub) -> None:
        """The status message names fields, never the caller's text."""
        secret = "card 4111-1111-1111-1111"
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(pb.ClassifyRequest(text=secret), timeout=10)
        assert secret not in (caught.value.details() or "")
        assert secret not in str(rich_status(caught.value))
