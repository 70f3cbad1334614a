"""Every RPC over real gRPC, through the real SDK, to the emulator: typed results and usage."""

from __future__ import annotations

import jsonschema
from google.protobuf import json_format

from harness import Upstream
from samples import DOCUMENTS, INVOICE_SCHEMA, MEETING, SAMPLES, TICKET_LABELS
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc, usage_pb2

Stub = task_service_pb2_grpc.TaskServiceStub
PRICES = PriceTable.load()


def assert_usage(usage: usage_pb2.Usage, model: str, tier: int) -> None:
    """Usage names what served the call and its cost is the ledger's price of its tokens."""
    assert usage.model == model
    assert usage.tier == tier
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.billed_calls == 1
    tokens = TokenUsage(
        input_tokens=usage.input_tokens,
        cache_write_5m_tokens=usage.cache_creation_5m_input_tokens,
        cache_write_1h_tokens=usage.cache_creation_1h_input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        output_tokens=usage.output_tokens,
    )
    expected = PRICES.cost(model, tokens)
    assert usage.cost.total_nanos == expected.total_nanos > 0
    assert usage.cost.input_nanos == usage.input_tokens * PRICES.facts(model).input
    assert usage.cost.output_nanos == usage.output_tokens * PRICES.facts(model).output
    parts = (usage.cost.input_nanos, usage.cost.cache_write_nanos, usage.cost.cache_read_nanos)
    assert sum(parts) + usage.cost.output_nanos == usage.cost.total_nanos


class TestClassify:
    def test_classify_returns_one_of_the_labels(self, stub: Stub) -> None:
        """The label is one of the caller's names; the emulator picks the best overlap."""
        reply = stub.Classify(SAMPLES["Classify"], timeout=10)
        assert reply.label == "billing"
        assert not reply.labels
        assert 0.0 <= reply.confidence <= 1.0
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_label_descriptions_guide_the_choice(self, stub: Stub) -> None:
        """A text sharing no word with any label name is matched through the descriptions."""
        request = pb.ClassifyRequest(
            text="My password reset link never arrives.", labels=TICKET_LABELS
        )
        assert stub.Classify(request, timeout=10).label == "account"

    def test_multi_label_returns_a_subset_with_the_label_first(self, stub: Stub) -> None:
        """With multi_label, labels is a non-empty subset of the names, led by label."""
        request = pb.ClassifyRequest(
            text="The app crashes with an error every time I try to pay my invoice.",
            labels=TICKET_LABELS,
            multi_label=True,
        )
        reply = stub.Classify(request, timeout=10)
        names = {label.name for label in TICKET_LABELS}
        assert reply.labels
        assert set(reply.labels) <= names
        assert reply.labels[0] == reply.label

    def test_schema_enumerates_the_callers_labels(self, stub: Stub, upstream: Upstream) -> None:
        """The structured-output schema limits label to the request's label names."""
        stub.Classify(SAMPLES["Classify"], timeout=10)
        schema = upstream.requests[-1]["output_config"]["format"]["schema"]
        assert schema["properties"]["label"]["enum"] == ["billing", "technical", "account"]
        assert "temperature" not in upstream.requests[-1]


class TestSummarize:
    def test_summarize_returns_summary_points_and_actions(self, stub: Stub) -> None:
        """A summary within max_words, key points, and the action items the text states."""
        reply = stub.Summarize(SAMPLES["Summarize"], timeout=10)
        assert reply.summary
        assert len(reply.summary.split()) <= 40
        assert reply.key_points
        assert any("Dana" in item or "Omar" in item for item in reply.action_items)
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_bullets_format_and_word_limit(self, stub: Stub) -> None:
        """Bullets come one per line starting with '- ', cut at the word limit."""
        request = pb.SummarizeRequest(
            text=MEETING,
            max_words=12,
            format=pb.SUMMARY_FORMAT_BULLETS,
        )
        reply = stub.Summarize(request, timeout=10)
        lines = reply.summary.splitlines()
        assert lines
        assert all(line.startswith("- ") for line in lines)
        words = sum(len(line.split()) - 1 for line in lines)
        assert words <= 12


class TestExtract:
    def test_extract_returns_data_valid_against_the_schema(self, stub: Stub) -> None:
        """data validates against the caller's schema and carries values from the text."""
        reply = stub.Extract(SAMPLES["Extract"], timeout=10)
        data = json_format.MessageToDict(reply.data)
        jsonschema.validate(data, INVOICE_SCHEMA)
        assert data["email"] == "ana@example.com"
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_output_schema_is_closed_and_without_bounds(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """The schema sent upstream is what structured outputs accept; the caller's is kept."""
        stub.Extract(SAMPLES["Extract"], timeout=10)
        sent = upstream.requests[-1]["output_config"]["format"]["schema"]
        assert sent["additionalProperties"] is False
        assert "minimum" not in sent["properties"]["amount"]
        assert INVOICE_SCHEMA["properties"]["amount"]["minimum"] == 0  # type: ignore[index]


class TestAnswer:
    def test_answer_cites_its_documents_verbatim(self, stub: Stub) -> None:
        """An answerable question gets an answer and citations quoted exactly."""
        reply = stub.Answer(SAMPLES["Answer"], timeout=10)
        assert reply.answerable
        assert reply.answer
        texts = {d.id: d.text for d in DOCUMENTS}
        assert reply.citations
        for citation in reply.citations:
            assert citation.quote in texts[citation.document_id]
        assert any(c.document_id == "refunds" for c in reply.citations)
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_unanswerable_question(self, stub: Stub) -> None:
        """A question the documents do not touch is not answerable and cites nothing."""
        request = pb.AnswerRequest(
            question="Which volcano erupted in Iceland?", documents=DOCUMENTS
        )
        reply = stub.Answer(request, timeout=10)
        assert not reply.answerable
        assert reply.answer == ""
        assert not reply.citations


class TestModerate:
    def test_moderate_clean_text_with_built_in_policy(self, stub: Stub) -> None:
        """Benign text is not flagged; every built-in category gets a verdict, in order."""
        reply = stub.Moderate(SAMPLES["Moderate"], timeout=10)
        assert not reply.flagged
        names = [c.name for c in reply.categories]
        assert names == ["harassment", "hate", "violence", "self_harm", "sexual", "spam"]
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_custom_policy_flags_matching_text(self, stub: Stub) -> None:
        """A caller's category is flagged when the text falls under it."""
        request = pb.ModerateRequest(
            text="I will hurt you and kill your dog if you post that again.",
            categories=[
                pb.ModerationCategory(name="violence", description="threats to hurt or kill"),
                pb.ModerationCategory(name="spam", description="advertising and junk"),
            ],
        )
        reply = stub.Moderate(request, timeout=10)
        verdicts = {c.name: c.flagged for c in reply.categories}
        assert reply.flagged
        assert verdicts == {"violence": True, "spam": False}


class TestReason:
    def test_reason_runs_on_the_balanced_tier(self, stub: Stub) -> None:
        """Reason answers with steps, on the balanced tier's model."""
        reply = stub.Reason(SAMPLES["Reason"], timeout=10)
        assert reply.answer
        assert reply.steps
        assert 0.0 <= reply.confidence <= 1.0
        assert_usage(reply.usage, "claude-sonnet-4-6", usage_pb2.TIER_BALANCED)
