"""Every RPC over real gRPC, through the real SDK, to the emulator: typed results and usage.

The emulator answers what each test scripts, so every test states the response it expects;
the few unscripted ones pin what holds whatever the model answers (the request sent upstream,
results drawn from the caller's own labels, documents and policy, exact usage). The tasks' own
logic, rule by rule, is pinned in process in ``tests/tasks/``.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from google.protobuf import json_format
from google.protobuf.message import Message

from harness import Upstream
from samples import (
    ANSWER,
    CLASSIFY,
    DOCUMENTS,
    EXTRACT,
    INVOICE_SCHEMA,
    MEETING,
    MODERATE,
    READ,
    REASON,
    SUMMARIZE,
    TICKET_LABELS,
)
from tiergate.emulator import Script
from tiergate.ledger import PriceTable, TokenUsage
from tiergate.tasks import TASKS
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


def sent_upstream(upstream: Upstream) -> dict[str, Any]:
    """The one request the RPC sent to the Messages API."""
    assert len(upstream.requests) == 1
    return upstream.requests[-1]


def assert_sent(upstream: Upstream, rpc: str, request: Message, model: str) -> None:
    """The task's own prompt went upstream: its schema (none for a bare answer), its model,
    the request text alone."""
    sent = sent_upstream(upstream)
    prompt = TASKS[rpc].prompt(request)
    assert sent["model"] == model
    if prompt.bare_key:
        assert "output_config" not in sent
    else:
        assert sent["output_config"]["format"]["schema"] == prompt.output_schema
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": prompt.request}]}
    ]
    assert "temperature" not in sent


def answers(upstream: Upstream, *outputs: dict[str, Any]) -> None:
    """The model's next answers, one per billed call."""
    upstream.script(*(Script(text=json.dumps(output)) for output in outputs))


class TestClassify:
    def test_scripted_label_and_clamped_confidence(self, stub: Stub, upstream: Upstream) -> None:
        """The model's label is the response's; a confidence above 1 comes back as 1."""
        answers(upstream, {"label": "technical", "confidence": 1.4})
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert (reply.label, list(reply.labels), reply.confidence) == ("technical", [], 1.0)
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_scripted_multi_label_leads_with_the_label_once(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Duplicates go and the primary label, missing from labels, comes first."""
        answers(upstream, {"label": "billing", "labels": ["technical", "technical"]})
        request = pb.ClassifyRequest(text="Crash on pay.", labels=TICKET_LABELS, multi_label=True)
        reply = stub.Classify(request, timeout=10)
        assert list(reply.labels) == ["billing", "technical"]

    def test_thinking_first_answer_is_read_from_its_text(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A reply opening with a thinking block is answered from its text block, in one call."""
        upstream.script(
            Script(
                content=[
                    {"type": "thinking", "thinking": '{"label": "account"}', "signature": "s"},
                    {"type": "text", "text": '{"label": "billing", "confidence": 0.9}'},
                ]
            )
        )
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert reply.label == "billing"
        assert reply.usage.billed_calls == 1

    def test_classify_returns_one_of_the_labels(self, stub: Stub, upstream: Upstream) -> None:
        """The label is one of the caller's names, priced on the fast tier's model."""
        reply = stub.Classify(CLASSIFY, timeout=10)
        assert reply.label in {label.name for label in TICKET_LABELS}
        assert not reply.labels
        assert 0.0 <= reply.confidence <= 1.0
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)
        assert_sent(upstream, "Classify", CLASSIFY, "claude-haiku-4-5")

    def test_multi_label_returns_a_subset_with_the_label_first(self, stub: Stub) -> None:
        """With multi_label, labels are distinct names of the request, led by label."""
        request = pb.ClassifyRequest(
            text="The app crashes with an error every time I try to pay my invoice.",
            labels=TICKET_LABELS,
            multi_label=True,
        )
        reply = stub.Classify(request, timeout=10)
        assert reply.labels[0] == reply.label
        assert set(reply.labels) <= {label.name for label in TICKET_LABELS}
        assert len(set(reply.labels)) == len(reply.labels)

    def test_schema_enumerates_the_callers_labels(self, stub: Stub, upstream: Upstream) -> None:
        """The structured-output schema limits label to the request's label names."""
        stub.Classify(CLASSIFY, timeout=10)
        schema = sent_upstream(upstream)["output_config"]["format"]["schema"]
        assert schema["properties"]["label"]["enum"] == ["billing", "technical", "account"]


class TestBareLabel:
    """Single-label Classify without a confidence: a bare name back, no schema sent."""

    REQUEST = pb.ClassifyRequest(text="I was charged twice.", labels=TICKET_LABELS)

    def test_no_schema_is_sent_and_the_name_is_the_label(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """The call carries no output_config; the bare answer is the label, in one call."""
        upstream.script(Script(text="technical\n"))
        reply = stub.Classify(self.REQUEST, timeout=10)
        assert (reply.label, reply.confidence, reply.usage.billed_calls) == ("technical", 0, 1)
        assert "output_config" not in sent_upstream(upstream)

    def test_a_foreign_name_falls_back_to_structured_outputs(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A name outside the labels is never returned: the re-ask carries the schema."""
        upstream.script(Script(text="Sales"), Script(text=json.dumps({"label": "account"})))
        reply = stub.Classify(self.REQUEST, timeout=10)
        assert (reply.label, reply.usage.billed_calls) == ("account", 2)
        first, second = upstream.requests
        assert "output_config" not in first
        schema = second["output_config"]["format"]["schema"]
        assert schema["properties"]["label"]["enum"] == ["billing", "technical", "account"]

    def test_without_a_script_the_answer_is_one_of_the_labels(self, stub: Stub) -> None:
        """Through the emulator the bare path answers one of the caller's names."""
        reply = stub.Classify(self.REQUEST, timeout=10)
        assert reply.label in {label.name for label in TICKET_LABELS}
        assert reply.usage.billed_calls == 1


class TestSummarize:
    def test_scripted_bullets_are_cut_at_the_word_limit(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A bulleted summary over max_words keeps whole bullets, then cuts one between words."""
        answers(
            upstream,
            {
                "summary": "- Release moves to March 14.\n- Dana finishes the migration by Friday.",
                "key_points": [" Release moves. "],
                "action_items": ["Dana: finish the migration"],
            },
        )
        request = pb.SummarizeRequest(
            text=MEETING,
            max_words=8,
            format=pb.SUMMARY_FORMAT_BULLETS,
            include_key_points=True,
            include_action_items=True,
        )
        reply = stub.Summarize(request, timeout=10)
        assert reply.summary == "- Release moves to March 14.\n- Dana finishes the..."
        assert list(reply.key_points) == ["Release moves."]
        assert list(reply.action_items) == ["Dana: finish the migration"]

    def test_summarize_returns_a_summary_within_max_words(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A non-blank summary within max_words, priced on the fast tier's model."""
        reply = stub.Summarize(SUMMARIZE, timeout=10)
        assert reply.summary.strip()
        assert len(reply.summary.split()) <= 40
        assert all(point.strip() == point and point for point in reply.key_points)
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)
        assert_sent(upstream, "Summarize", SUMMARIZE, "claude-haiku-4-5")

    def test_bullets_format_and_word_limit(self, stub: Stub) -> None:
        """Bullets come one per line starting with '- ', cut at the word limit."""
        request = pb.SummarizeRequest(text=MEETING, max_words=12, format=pb.SUMMARY_FORMAT_BULLETS)
        reply = stub.Summarize(request, timeout=10)
        lines = reply.summary.splitlines()
        assert lines
        assert all(line.startswith("- ") for line in lines)
        assert sum(len(line.split()) - 1 for line in lines) <= 12


class TestExtract:
    def test_extract_returns_data_valid_against_the_schema(self, stub: Stub) -> None:
        """data validates against the caller's schema, priced on the fast tier's model."""
        reply = stub.Extract(EXTRACT, timeout=10)
        jsonschema.validate(json_format.MessageToDict(reply.data), INVOICE_SCHEMA)
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)

    def test_output_schema_is_closed_and_without_bounds(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """The schema sent upstream is what structured outputs accept; the caller's is kept."""
        stub.Extract(EXTRACT, timeout=10)
        sent = sent_upstream(upstream)["output_config"]["format"]["schema"]
        assert sent["additionalProperties"] is False
        assert "minimum" not in sent["properties"]["amount"]
        assert INVOICE_SCHEMA["properties"]["amount"]["minimum"] == 0  # type: ignore[index]  # a JSON literal, typed as object


class TestAnswer:
    def test_scripted_numbers_become_verbatim_quotes(self, stub: Stub, upstream: Upstream) -> None:
        """The model cites sentence numbers; the server writes each sentence, in one call."""
        upstream.script(Script(text="Within 14 days. [1][3]"))
        reply = stub.Answer(ANSWER, timeout=10)
        assert (reply.answerable, reply.answer) == (True, "Within 14 days.")
        assert [(c.document_id, c.quote) for c in reply.citations] == [
            ("refunds", "Refunds are issued within 14 days of a request."),
            ("security", "Passwords are hashed with Argon2."),
        ]
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)
        sent = sent_upstream(upstream)
        assert "output_config" not in sent
        assert "1. Refunds are issued within 14 days of a request." in json.dumps(sent)

    def test_a_number_that_is_no_sentence_is_asked_again(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Citing sentence 9 of 4 is not read: the re-ask carries the schema of numbers."""
        upstream.script(
            Script(text="Within 14 days. [9]"), Script(text='{"answer": "14 days.", "cite": [1]}')
        )
        reply = stub.Answer(ANSWER, timeout=10)
        assert (reply.answer, reply.usage.billed_calls) == ("14 days.", 2)
        assert [c.document_id for c in reply.citations] == ["refunds"]
        schema = upstream.requests[1]["output_config"]["format"]["schema"]
        assert schema["properties"]["cite"]["items"]["enum"] == [1, 2, 3, 4]

    def test_scripted_unknown_cites_nothing(self, stub: Stub, upstream: Upstream) -> None:
        """An unknown answer keeps no answer and no citation, whatever it cited."""
        upstream.script(Script(text="Unknown. [2]"))
        reply = stub.Answer(ANSWER, timeout=10)
        assert (reply.answerable, reply.answer, list(reply.citations)) == (False, "", [])
        assert reply.usage.billed_calls == 1

    def test_answer_cites_its_documents_verbatim(self, stub: Stub, upstream: Upstream) -> None:
        """Every citation names a request document and quotes it verbatim."""
        reply = stub.Answer(ANSWER, timeout=10)
        texts = {d.id: d.text for d in DOCUMENTS}
        for citation in reply.citations:
            assert citation.quote in texts[citation.document_id]
        if not reply.answerable:
            assert (reply.answer, list(reply.citations)) == ("", [])
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)
        assert_sent(upstream, "Answer", ANSWER, "claude-haiku-4-5")


class TestModerate:
    def test_scripted_verdicts_come_in_policy_order(self, stub: Stub, upstream: Upstream) -> None:
        """Verdicts keyed by category come back in the caller's order; flagged if any is."""
        answers(
            upstream,
            {
                "categories": {
                    "spam": {"flagged": False, "rationale": "No ads."},
                    "violence": {"flagged": True, "rationale": " A threat to hurt. "},
                }
            },
        )
        request = pb.ModerateRequest(
            text="I will hurt you.",
            categories=[pb.ModerationCategory(name="violence"), pb.ModerationCategory(name="spam")],
            include_rationale=True,
        )
        reply = stub.Moderate(request, timeout=10)
        assert reply.flagged
        assert [(c.name, c.flagged, c.rationale) for c in reply.categories] == [
            ("violence", True, "A threat to hurt."),
            ("spam", False, "No ads."),
        ]

    def test_a_missing_verdict_is_re_asked_once(self, stub: Stub, upstream: Upstream) -> None:
        """An output without every category breaks the schema: one billed re-ask fixes it."""
        policy = [pb.ModerationCategory(name="violence"), pb.ModerationCategory(name="spam")]
        verdict = {"flagged": False, "rationale": "Benign."}
        answers(
            upstream,
            {"categories": {"spam": verdict}},
            {"categories": {"spam": verdict, "violence": verdict}},
        )
        request = pb.ModerateRequest(text="Hi.", categories=policy, include_rationale=True)
        reply = stub.Moderate(request, timeout=10)
        assert [c.name for c in reply.categories] == ["violence", "spam"]
        assert reply.usage.billed_calls == 2

    def test_bare_names_are_the_flagged_categories(self, stub: Stub, upstream: Upstream) -> None:
        """By default no schema is sent; the names the model writes are the verdicts."""
        policy = [pb.ModerationCategory(name="violence"), pb.ModerationCategory(name="spam")]
        upstream.script(Script(text="Spam."), Script(text="none"))
        request = pb.ModerateRequest(text="Buy now!", categories=policy)
        reply = stub.Moderate(request, timeout=10)
        assert [(c.name, c.flagged, c.rationale) for c in reply.categories] == [
            ("violence", False, ""),
            ("spam", True, ""),
        ]
        assert (reply.flagged, reply.usage.billed_calls) == (True, 1)
        assert "output_config" not in sent_upstream(upstream)
        reply = stub.Moderate(request, timeout=10)
        assert not reply.flagged
        assert not any(c.flagged for c in reply.categories)

    def test_a_name_outside_the_policy_is_asked_again(self, stub: Stub, upstream: Upstream) -> None:
        """A category the policy lacks is not read: the re-ask carries the policy's enum."""
        policy = [pb.ModerationCategory(name="violence"), pb.ModerationCategory(name="spam")]
        upstream.script(Script(text="fraud"), Script(text='{"flagged": ["violence"]}'))
        reply = stub.Moderate(pb.ModerateRequest(text="Hi.", categories=policy), timeout=10)
        assert [c.flagged for c in reply.categories] == [True, False]
        assert reply.usage.billed_calls == 2
        schema = upstream.requests[1]["output_config"]["format"]["schema"]
        assert schema["properties"]["flagged"]["items"]["enum"] == ["violence", "spam"]

    def test_moderate_gives_every_built_in_category_a_verdict(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Every built-in category gets one verdict, in policy order; flagged is any of them."""
        reply = stub.Moderate(MODERATE, timeout=10)
        names = [c.name for c in reply.categories]
        assert names == ["harassment", "hate", "violence", "self_harm", "sexual", "spam"]
        assert reply.flagged == any(c.flagged for c in reply.categories)
        assert all(c.rationale == "" for c in reply.categories)
        assert_usage(reply.usage, "claude-haiku-4-5", usage_pb2.TIER_FAST)
        assert_sent(upstream, "Moderate", MODERATE, "claude-haiku-4-5")

    def test_custom_policy_replaces_the_built_in_one(self, stub: Stub) -> None:
        """A caller's categories are the policy: one verdict each, in the caller's order."""
        request = pb.ModerateRequest(
            text="I will hurt you if you post that again.",
            categories=[
                pb.ModerationCategory(name="violence", description="threats to hurt or kill"),
                pb.ModerationCategory(name="spam", description="advertising and junk"),
            ],
        )
        reply = stub.Moderate(request, timeout=10)
        assert [c.name for c in reply.categories] == ["violence", "spam"]
        assert reply.flagged == any(c.flagged for c in reply.categories)


class TestRead:
    def test_read_a_pdf_on_the_frontier_tier(self, stub: Stub, upstream: Upstream) -> None:
        """The invoice PDF, read into the caller's schema, priced on the frontier tier's model;
        the PDF goes first in the user turn, base64, then the list of files."""
        reply = stub.Read(READ, timeout=30)
        data = json_format.MessageToDict(reply.data)
        assert (data["invoice_number"], data["total"]) == ("INV-2041", 40.5)
        assert_usage(reply.usage, "claude-opus-4-7", usage_pb2.TIER_FRONTIER)
        content = sent_upstream(upstream)["messages"][0]["content"]
        assert [block["type"] for block in content] == ["document", "text"]
        assert content[0]["source"]["media_type"] == "application/pdf"

    def test_scripted_output_is_checked_against_the_schema(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """An output that breaks the caller's schema is re-asked, as Extract's."""
        good = {
            "invoice_number": "INV-2041",
            "email": "ana@example.com",
            "date": "2026-11-02",
            "lines": [],
            "total": 40.5,
        }
        answers(upstream, {**good, "total": "forty"}, good)
        reply = stub.Read(READ, timeout=30)
        assert reply.data["total"] == 40.5
        assert reply.usage.billed_calls == 2


class TestReason:
    def test_scripted_steps_answer_and_confidence(self, stub: Stub, upstream: Upstream) -> None:
        """Steps and answer come back trimmed, a negative confidence as 0."""
        answers(
            upstream,
            {
                "steps": [" 500 x 0.5 = 250 cents. ", "250 cents = $2.50."],
                "answer": " $2.50 ",
                "confidence": -0.2,
            },
        )
        reply = stub.Reason(REASON, timeout=10)
        assert list(reply.steps) == ["500 x 0.5 = 250 cents.", "250 cents = $2.50."]
        assert (reply.answer, reply.confidence) == ("$2.50", 0.0)
        assert_usage(reply.usage, "claude-sonnet-4-6", usage_pb2.TIER_BALANCED)

    def test_reason_runs_on_the_balanced_tier(self, stub: Stub, upstream: Upstream) -> None:
        """Reason answers with a non-blank answer and steps, on the balanced tier's model."""
        reply = stub.Reason(REASON, timeout=10)
        assert reply.answer.strip()
        assert reply.steps
        assert all(step.strip() for step in reply.steps)
        assert 0.0 <= reply.confidence <= 1.0
        assert_usage(reply.usage, "claude-sonnet-4-6", usage_pb2.TIER_BALANCED)
        assert_sent(upstream, "Reason", REASON, "claude-sonnet-4-6")
