"""Each task's scorer over hand-written responses: what counts as correct, and the F1 units."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from tiergate.evaluation.scorers import Expected, Score, Scorer, as_json, f1, scorer_for
from tiergate.v1 import task_service_pb2 as pb

LABELS = [{"name": "billing"}, {"name": "technical"}, {"name": "account"}]
SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {
            "vendor": {"type": "string"},
            "total": {"type": "number"},
            "paid": {"type": "boolean"},
            "lines": {"type": "array", "items": {"type": "object"}},
        },
    }
)


def expected(scorer: Scorer, request: Message, raw: Any) -> Expected:
    parsed = scorer.expected(request, raw)
    assert isinstance(parsed, Expected), parsed
    return parsed


def score(rpc: str, request: Message, response: Message, raw: Any) -> Score:
    scorer = scorer_for(rpc)
    return asyncio.run(scorer.score(request, as_json(response), expected(scorer, request, raw)))


def problems(rpc: str, request: Message, raw: Any) -> list[str]:
    parsed = scorer_for(rpc).expected(request, raw)
    assert isinstance(parsed, list), "expected fields were accepted"
    return parsed


def classify(multi: bool = False) -> pb.ClassifyRequest:
    return json_format.ParseDict(
        {"text": "charged twice", "labels": LABELS, "multi_label": multi}, pb.ClassifyRequest()
    )


class TestClassify:
    def test_exact_label_is_correct_and_another_is_not(self) -> None:
        """Single-label: correct only when the label is the expected one."""
        right = score(
            "Classify", classify(), pb.ClassifyResponse(label="billing"), {"label": "billing"}
        )
        wrong = score(
            "Classify", classify(), pb.ClassifyResponse(label="account"), {"label": "billing"}
        )
        assert (right.correct, right.matched) == (True, 1)
        assert (wrong.correct, wrong.matched) == (False, 0)

    def test_multi_label_needs_the_exact_set_and_counts_f1(self) -> None:
        """Multi-label: the label set must match exactly; partial overlap shows in the F1 counts."""
        response = pb.ClassifyResponse(label="billing", labels=["billing", "account"])
        exact = score("Classify", classify(True), response, {"labels": ["account", "billing"]})
        partial = score("Classify", classify(True), response, {"labels": ["billing", "technical"]})
        assert exact.correct
        assert not partial.correct
        assert (partial.matched, partial.predicted, partial.expected) == (1, 2, 2)
        assert f1(partial.matched, partial.predicted, partial.expected) == pytest.approx(0.5)

    def test_expected_label_outside_the_request_is_a_bad_line(self) -> None:
        """An expected label the request does not offer can never be right: refused up front."""
        assert problems("Classify", classify(), {"label": "shipping"}) == [
            "expected label 'shipping' is not one of the request's labels"
        ]

    def test_expected_labels_need_a_multi_label_request(self) -> None:
        """A label set is only comparable when the request asks for several labels."""
        assert problems("Classify", classify(), {"labels": ["billing"]})

    def test_unknown_fields_and_usage_are_refused(self) -> None:
        """Only response fields are expected, and usage is measured, never expected."""
        assert expected(scorer_for("Classify"), classify(), {"label": "billing"}).given == {"label"}
        assert problems("Classify", classify(), {"lable": "billing"})
        assert problems("Classify", classify(), {"label": "billing", "usage": {}}) == [
            "expected must not hold usage: it is measured, not scored"
        ]


class TestExtract:
    def request(self) -> pb.ExtractRequest:
        return pb.ExtractRequest(text="invoice", json_schema=SCHEMA)

    def test_every_expected_leaf_must_match_numbers_by_value(self) -> None:
        """Item accuracy: every expected leaf equal (1250 == 1250.0); extra fields are allowed."""
        response = pb.ExtractResponse()
        response.data.update({"vendor": "Northwind", "total": 1250.0, "note": "extra"})
        result = score(
            "Extract", self.request(), response, {"data": {"vendor": "Northwind", "total": 1250}}
        )
        assert result.correct
        assert (result.matched, result.predicted, result.expected) == (2, 3, 2)

    def test_one_wrong_nested_leaf_makes_the_item_wrong(self) -> None:
        """A nested list item's field that differs fails the item, and counts as one miss."""
        response = pb.ExtractResponse()
        response.data.update({"lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]})
        want = {"data": {"lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 3}]}}
        result = score("Extract", self.request(), response, want)
        assert not result.correct
        assert (result.matched, result.expected) == (3, 4)

    def test_booleans_are_not_numbers(self) -> None:
        """``true`` is not ``1``: a boolean leaf matches only a boolean."""
        response = pb.ExtractResponse()
        response.data.update({"paid": 1})
        assert not score("Extract", self.request(), response, {"data": {"paid": True}}).correct

    def test_missing_leaf_is_wrong(self) -> None:
        """A field the response left out is a miss, not a skip."""
        response = pb.ExtractResponse()
        response.data.update({"vendor": "Northwind"})
        result = score(
            "Extract", self.request(), response, {"data": {"vendor": "Northwind", "total": 3}}
        )
        assert not result.correct
        assert result.matched == 1

    def test_data_is_required(self) -> None:
        """Expected fields without ``data`` have nothing to score."""
        assert problems("Extract", self.request(), {}) == ["expected needs data (an object)"]


class TestAnswer:
    def request(self) -> pb.AnswerRequest:
        return pb.AnswerRequest(
            question="refunds?",
            documents=[pb.Document(id="a", text="x"), pb.Document(id="b", text="y")],
        )

    def response(self, answerable: bool, *ids: str) -> pb.AnswerResponse:
        citations = [pb.Citation(document_id=i, quote="x") for i in ids]
        return pb.AnswerResponse(answerable=answerable, answer="z", citations=citations)

    def test_answerable_agreement_alone(self) -> None:
        """Without expected citations only ``answerable`` is compared, false included."""
        assert score("Answer", self.request(), self.response(False), {"answerable": False}).correct
        assert not score(
            "Answer", self.request(), self.response(True, "a"), {"answerable": False}
        ).correct

    def test_cited_documents_must_be_exactly_the_expected_ones(self) -> None:
        """With expected citations the cited ids must equal them: one extra id is wrong."""
        want = {"answerable": True, "citations": [{"document_id": "a"}]}
        assert score("Answer", self.request(), self.response(True, "a"), want).correct
        extra = score("Answer", self.request(), self.response(True, "a", "b"), want)
        assert not extra.correct
        assert (extra.matched, extra.predicted, extra.expected) == (1, 2, 1)

    def test_unknown_document_and_contradiction_are_bad_lines(self) -> None:
        """Citing a document the request lacks, or citations on an unanswerable, is refused."""
        assert problems(
            "Answer", self.request(), {"answerable": True, "citations": [{"documentId": "zz"}]}
        ) == ["expected citation of unknown document 'zz'"]
        assert problems(
            "Answer", self.request(), {"answerable": False, "citations": [{"document_id": "a"}]}
        )
        assert problems("Answer", self.request(), {"citations": []})


class TestModerate:
    def response(self, **flags: bool) -> pb.ModerateResponse:
        verdicts = [pb.CategoryVerdict(name=n, flagged=f) for n, f in flags.items()]
        return pb.ModerateResponse(flagged=any(flags.values()), categories=verdicts)

    def test_flagged_and_every_expected_category_must_agree(self) -> None:
        """A right overall flag with one wrong category verdict is wrong; counts show 2 of 3."""
        request = pb.ModerateRequest(text="t")
        response = self.response(harassment=True, spam=True)
        want = {
            "flagged": True,
            "categories": [{"name": "harassment", "flagged": True}, {"name": "spam"}],
        }
        result = score("Moderate", request, response, want)
        assert not result.correct
        assert (result.matched, result.expected) == (2, 3)
        assert score("Moderate", request, response, {"flagged": True}).correct

    def test_category_outside_the_policy_is_a_bad_line(self) -> None:
        """Custom policies: an expected category must be one of the request's."""
        request = pb.ModerateRequest(text="t", categories=[pb.ModerationCategory(name="pii")])
        assert problems("Moderate", request, {"flagged": False, "categories": [{"name": "spam"}]})


class TestJudged:
    def test_summarize_and_reason_are_judged_and_need_text(self) -> None:
        """Free-text tasks are marked judged, and need a non-blank expected answer."""
        for rpc, field in (("Summarize", "summary"), ("Reason", "answer")):
            scorer = scorer_for(rpc)
            assert scorer.judged
            assert scorer.expected(pb.ReasonRequest(question="q"), {field: "  "}) == [
                f"expected needs a non-blank {field}"
            ]
        assert not any(
            scorer_for(rpc).judged for rpc in ("Classify", "Extract", "Answer", "Moderate")
        )


class TestReference:
    def test_primary_response_becomes_the_expected_one(self) -> None:
        """Shadow scoring: the primary response's scored fields, defaults included, are expected."""
        scorer = scorer_for("Answer")
        reference = scorer.reference(pb.AnswerRequest(), pb.AnswerResponse(answerable=False))
        assert reference.given == {"answerable", "citations"}
        assert reference.fields["answerable"] is False
        single = scorer_for("Classify").reference(classify(), pb.ClassifyResponse(label="x"))
        assert single.given == {"label"}


class TestRead:
    def test_a_read_line_loads_and_scores_as_extract(self) -> None:
        """A labelled Read line carries its file base64 (proto JSON); data scores leaf by leaf."""
        import base64
        import pathlib

        from tiergate.evaluation.dataset import parse_line
        from tiergate.tasks import TASKS

        pdf = (pathlib.Path(__file__).parent.parent / "examples" / "invoice.pdf").read_bytes()
        line = {
            "request": {
                "documents": [
                    {"data": base64.b64encode(pdf).decode(), "media_type": "application/pdf"}
                ],
                "json_schema": SCHEMA,
            },
            "expected": {"data": {"vendor": "Northwind", "total": 40.5}},
        }
        parsed = parse_line(json.dumps(line).encode(), TASKS["Read"], scorer_for("Read"))
        assert not isinstance(parsed, str), parsed
        request, want = parsed
        assert isinstance(request, pb.ReadRequest)
        assert request.documents[0].data == pdf
        response = pb.ReadResponse()
        response.data.update({"vendor": "Northwind", "total": 40.5})
        result = asyncio.run(scorer_for("Read").score(request, as_json(response), want))
        assert result.correct
        response.data.update({"total": 41})
        assert not asyncio.run(scorer_for("Read").score(request, as_json(response), want)).correct
