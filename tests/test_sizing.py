"""The size check holds for every script: certain refusals stay local, near-window prompts are
counted by the free count_tokens endpoint, and a refusal names the field that is too large."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from failures import model_client_failure
from google.rpc import error_details_pb2

from harness import BackgroundLoop, Upstream, rich_status
from tiergate import errors
from tiergate.calls import sizing
from tiergate.calls.prompt import JsonObject, Prompt, canonical_json
from tiergate.emulator import Script
from tiergate.ledger import ModelFacts, PriceTable
from tiergate.tasks import TASKS
from tiergate.upstream.model_client import Completion
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

Stub = task_service_pb2_grpc.TaskServiceStub
PRICES = PriceTable.load()
HAIKU = PRICES.facts("claude-haiku-4-5")
SONNET = PRICES.facts("claude-sonnet-4-6")
OPUS_4_7 = PRICES.facts("claude-opus-4-7")
LABELS = [pb.Label(name="billing"), pb.Label(name="technical")]
ENGLISH = "The quick brown fox jumps over the lazy dog, then naps in the sun. "


def classify(text: str) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(text=text, labels=LABELS)


def too_large(call: grpc.RpcError) -> error_details_pb2.BadRequest.FieldViolation:
    """The one field violation of a REQUEST_TOO_LARGE failure."""
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rich_status(call)
    assert status is not None
    reasons, violations = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reasons.append(info.reason)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(bad.field_violations)
    assert reasons == ["REQUEST_TOO_LARGE"]
    assert len(violations) == 1
    assert violations[0].field != "*"
    return violations[0]


class TestBounds:
    def test_english_sits_between_the_bounds(self) -> None:
        """English runs about 3.5 to 4.5 characters a token: the high count is above that,
        the low count far below, so neither a refusal nor a send is wrong."""
        text = ENGLISH * 200
        found = sizing.bounds(text)
        assert found.high >= len(text) / 3.5
        assert found.high <= len(text) / 2
        assert found.low <= len(text) / 12

    @pytest.mark.parametrize(
        "sample",
        ["日本語のテキストです。", "这是一个中文句子。", "한국어 문장입니다", "カタカナとひらがな"],
        ids=["japanese", "chinese", "korean", "kana"],
    )
    def test_cjk_kana_and_hangul_count_at_least_a_token_per_character(self, sample: str) -> None:
        """Close to one token per character in real tokenizers: the high count never assumes
        fewer, unlike a characters/4 rule."""
        text = sample * 1000
        found = sizing.bounds(text)
        letters = sum(1 for ch in text if not ch.isspace())
        assert found.high >= letters
        assert found.low <= letters // 2

    def test_emoji_count_more_than_cjk(self) -> None:
        """An emoji may cost several tokens (byte fallback): more than a CJK character."""
        assert sizing.bounds("🙂" * 100).high > sizing.bounds("語" * 100).high
        assert sizing.bounds("👨‍👩‍👧").high >= 12

    def test_opus_4_7_counts_thirty_percent_more(self) -> None:
        """The same text on Opus 4.7's tokenizer: the high count grows by 30%."""
        assert sizing.scaled_high(1000, OPUS_4_7) == 1300
        assert sizing.scaled_high(1000, SONNET) == 1000


class TestAssess:
    def test_a_short_prompt_fits_at_once(self) -> None:
        """An everyday request fits without any counting."""
        prompt = TASKS["Classify"].prompt(classify("I was charged twice."))
        assert sizing.assess(prompt, HAIKU) is sizing.Fit.FITS

    def test_a_900k_character_context_fits_sonnet_4_6(self) -> None:
        """Sonnet 4.6 takes 1M tokens: a 900,000-character Reason context surely fits."""
        request = pb.ReasonRequest(question="Which rule applies?", context=context_chars(900_000))
        prompt = TASKS["Reason"].prompt(request)
        assert sizing.assess(prompt, SONNET) is sizing.Fit.FITS

    def test_a_million_cjk_characters_are_surely_too_large_for_haiku(self) -> None:
        """At no fewer than a quarter token per CJK character, 1M characters exceed 200K."""
        prompt = TASKS["Classify"].prompt(classify("日本語" * 340_000))
        assert sizing.assess(prompt, HAIKU) is sizing.Fit.TOO_LARGE

    def test_english_near_the_window_is_unsure(self) -> None:
        """600,000 English characters may or may not fit Haiku's 200K: count them."""
        prompt = TASKS["Classify"].prompt(classify(("lorem ipsum " * 50_000)[:600_000]))
        assert sizing.assess(prompt, HAIKU) is sizing.Fit.UNSURE


def plain(request: str, schema: JsonObject | None = None, *, parts: int = 0) -> Prompt:
    """A prompt of ``request`` (plus ``parts`` one-word context blocks) answered in 100."""
    return Prompt(
        instructions="Answer.",
        context=("ctx",) * parts,
        request=request,
        output_schema=schema or {},
        max_tokens=100,
    )


def window(space: int) -> ModelFacts:
    """Haiku's prices with a window that leaves ``space`` prompt tokens beside 100 out."""
    return dataclasses.replace(HAIKU, context_window_tokens=space + 100)


EMOJI = "\U0001f642" * 1000
"""4,000 tokens at the high rate: four per character, the most any character may cost."""
WIDE_SCHEMA: JsonObject = {"enum": ["\U0001f642" * 500]}
"""An output schema weighing about 2,000 tokens at the high rate."""


class TestEstimate:
    def test_every_part_is_counted_and_the_allowance_added_once(self) -> None:
        """Instructions, each context block, the request and the output schema are counted;
        the high count is scaled by the tokenizer, then the API's allowance is added."""
        prompt = plain("x" * 1000, WIDE_SCHEMA, parts=2)
        texts = ["Answer.", "ctx", "ctx", "x" * 1000, canonical_json(WIDE_SCHEMA)]
        low = sum(sizing.bounds(text).low for text in texts)
        high = sum(sizing.bounds(text).high for text in texts)
        assert sizing.prompt_bounds(prompt, HAIKU) == sizing.Bounds(low, high + 1024)
        opus = sizing.prompt_bounds(prompt, OPUS_4_7)
        assert opus == sizing.Bounds(low, sizing.scaled_high(high, OPUS_4_7) + 1024)

    def test_room_is_the_window_less_the_answer(self) -> None:
        """What a prompt may take: the context window minus the answer's max_tokens."""
        assert sizing.room(HAIKU, 64) == 200_000 - 64


class TestAssessAtTheEdges:
    @pytest.mark.parametrize(
        ("prompt", "space"),
        [(plain(EMOJI), 4500), (plain(EMOJI, WIDE_SCHEMA), 6000)],
        ids=["request", "output-schema"],
    )
    def test_past_the_quick_bound_the_full_estimate_decides(
        self, prompt: Prompt, space: int
    ) -> None:
        """A prompt whose characters at four tokens each, plus the allowance and the schema,
        exceed the room is not waved through: its full estimate is unsure, so it is counted."""
        assert sizing.prompt_bounds(prompt, HAIKU).high > space
        assert sizing.assess(prompt, window(space)) is sizing.Fit.UNSURE

    def test_a_high_count_equal_to_the_room_fits(self) -> None:
        """The room is inclusive: a prompt whose high count is exactly the room is sent."""
        prompt = plain("x" * 1000)
        high = sizing.prompt_bounds(prompt, HAIKU).high
        assert sizing.assess(prompt, window(high)) is sizing.Fit.FITS
        assert sizing.assess(prompt, window(high - 1)) is sizing.Fit.UNSURE

    def test_only_a_low_count_above_the_room_is_surely_too_large(self) -> None:
        """A low count equal to the room may still fit (count it); one token more cannot."""
        prompt = plain("x" * 1000)
        low = sizing.prompt_bounds(prompt, HAIKU).low
        assert sizing.assess(prompt, window(low)) is sizing.Fit.UNSURE
        assert sizing.assess(prompt, window(low - 1)) is sizing.Fit.TOO_LARGE


def context_chars(n: int) -> str:
    return (ENGLISH * (n // len(ENGLISH) + 1))[:n]


class TestLargestField:
    def test_reason_names_the_context_when_it_dominates(self) -> None:
        """A long context and a short question: the field is ``context``."""
        request = pb.ReasonRequest(question="Why?", context=context_chars(50_000))
        assert sizing.largest_field(request) == "context"

    def test_reason_names_the_question_when_it_dominates(self) -> None:
        """A long question and a short context: the field is ``question``."""
        request = pb.ReasonRequest(question=context_chars(50_000), context="Short.")
        assert sizing.largest_field(request) == "question"

    def test_one_large_document_is_named_by_its_index(self) -> None:
        """One document outweighs the rest: ``documents[1].text``."""
        documents = [
            pb.Document(id="a", text="short"),
            pb.Document(id="b", text=context_chars(40_000)),
            pb.Document(id="c", text="short too"),
        ]
        request = pb.AnswerRequest(question="What?", documents=documents)
        assert sizing.largest_field(request) == "documents[1].text"

    def test_many_equal_documents_are_named_together(self) -> None:
        """No single document dominates: the repeated field is named whole."""
        documents = [pb.Document(id=str(i), text=context_chars(4000)) for i in range(10)]
        request = pb.AnswerRequest(question="What?", documents=documents)
        assert sizing.largest_field(request) == "documents"

    @pytest.mark.parametrize(
        ("texts", "field"),
        [
            ((400, 400), "documents"),
            ((400, 350, 250), "documents"),
            ((400, 100, 100), "documents[0].text"),
        ],
        ids=["two-halves", "largest-40-percent", "largest-two-thirds"],
    )
    def test_an_element_is_named_only_when_it_weighs_more_than_half(
        self, texts: tuple[int, ...], field: str
    ) -> None:
        """An element is named alone only above half of its field's weight: exactly half
        (two equal documents) or the largest of three at 40% names the field whole."""
        documents = [pb.Document(id=f"d{i}", text="x" * n) for i, n in enumerate(texts)]
        request = pb.AnswerRequest(question="q", documents=documents)
        assert sizing.largest_field(request) == field

    def test_a_balanced_element_is_named_whole(self) -> None:
        """One document whose title weighs as much as its text: ``documents[0]``, its own
        fields being no more than half of it."""
        document = pb.Document(id="a", title="t" * 300, text="t" * 300)
        request = pb.AnswerRequest(question="q", documents=[document])
        assert sizing.largest_field(request) == "documents[0]"

    def test_numbers_and_flags_weigh_nothing(self) -> None:
        """A field that is no text adds no tokens: a one-token focus outweighs max_words, and
        a request of flags alone names its flag."""
        assert sizing.largest_field(pb.SummarizeRequest(max_words=5, focus="a")) == "focus"
        assert sizing.largest_field(pb.ClassifyRequest(multi_label=True)) == "multi_label"

    def test_an_empty_request_is_named_whole(self) -> None:
        """With no field set, the refusal names the request itself."""
        assert sizing.largest_field(pb.ClassifyRequest()) == "request"

    def test_cjk_outweighs_longer_english(self) -> None:
        """Weighed in tokens, not characters: 30,000 CJK characters outweigh 60,000 English."""
        request = pb.ReasonRequest(question="語" * 30_000, context=context_chars(60_000))
        assert sizing.largest_field(request) == "question"


class TestTooLarge:
    @pytest.mark.parametrize(
        ("counted", "how"), [(True, "counts"), (False, "is at least")], ids=["counted", "estimated"]
    )
    def test_the_refusal_names_the_field_the_count_and_the_room(
        self, counted: bool, how: str
    ) -> None:
        """One violation on the heaviest field: the tokens (counted, or the estimate's low
        bound), the model, the room left besides the answer and the window."""
        refusal = sizing.too_large(classify("x" * 100), HAIKU, 64, tokens=250_000, counted=counted)
        assert isinstance(refusal, errors.RequestTooLarge)
        assert refusal.violations == [
            errors.FieldViolation(
                "text",
                f"the prompt {how} 250000 tokens; claude-haiku-4-5 takes at most 199936"
                " besides the answer (context window 200000)",
            )
        ]


class TestServedOrRefused:
    def test_900k_character_reason_context_is_served(self, stub: Stub, upstream: Upstream) -> None:
        """Sonnet 4.6's 1M window takes a 900,000-character context: served, one call."""
        request = pb.ReasonRequest(question="Which rule applies?", context=context_chars(900_000))
        reply = stub.Reason(request, timeout=60)
        assert reply.answer
        assert reply.usage.billed_calls == 1
        assert len(upstream.requests) == 1

    def test_certainly_too_large_is_refused_before_any_call(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """1M CJK characters for Haiku: REQUEST_TOO_LARGE naming ``text``, nothing sent."""
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(classify("日本語" * 340_000), timeout=60)
        violation = too_large(caught.value)
        assert violation.field == "text"
        assert "at least" in violation.description
        assert upstream.requests == []

    def test_a_huge_document_is_named_by_its_path(self, stub: Stub, upstream: Upstream) -> None:
        """Answer with one oversized document: the violation names ``documents[0].text``."""
        request = pb.AnswerRequest(
            question="What does it say?",
            documents=[pb.Document(id="big", text="日本語" * 340_000)],
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.Answer(request, timeout=60)
        assert too_large(caught.value).field == "documents[0].text"
        assert upstream.requests == []

    def test_unsure_and_counted_too_large_is_refused_unbilled(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Near the window the free count decides: 350K counted tokens do not fit Haiku, so the
        call is refused with the count and no billed call is made."""
        request = classify("a b c d e " * 70_000)
        assert sizing.assess(TASKS["Classify"].prompt(request), HAIKU) is sizing.Fit.UNSURE
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(request, timeout=60)
        violation = too_large(caught.value)
        assert violation.field == "text"
        assert "counts" in violation.description
        assert upstream.requests == []

    def test_unsure_and_counted_fitting_is_served(self, stub: Stub, upstream: Upstream) -> None:
        """The estimate is unsure but the count fits: the call goes ahead and is served."""
        request = classify("abcd " * 120_000)
        assert sizing.assess(TASKS["Classify"].prompt(request), HAIKU) is sizing.Fit.UNSURE
        reply = stub.Classify(request, timeout=60)
        assert reply.label in {"billing", "technical"}
        assert len(upstream.requests) == 1

    def test_upstream_prompt_too_long_names_the_field(self, stub: Stub, upstream: Upstream) -> None:
        """When the estimate lets a prompt through that the API finds too long, its 400 becomes
        REQUEST_TOO_LARGE naming ``text``, never ``*`` or INTERNAL."""
        request = classify("a " * 230_000)
        assert sizing.assess(TASKS["Classify"].prompt(request), HAIKU) is sizing.Fit.FITS
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(request, timeout=60)
        assert too_large(caught.value).field == "text"


class TestContextWindowExceeded:
    def test_is_request_too_large_without_a_reask(self, stub: Stub, upstream: Upstream) -> None:
        """``stop_reason: model_context_window_exceeded``: INVALID_ARGUMENT REQUEST_TOO_LARGE
        naming the field, after one billed call and no re-ask."""
        upstream.script(Script(text='{"label": "bil', stop_reason="model_context_window_exceeded"))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(classify("I was charged twice."), timeout=10)
        assert too_large(caught.value).field == "text"
        assert len(upstream.requests) == 1

    def test_the_billed_call_is_still_reported(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """The failure carries what was billed, for the log and telemetry."""
        upstream.script(Script(text='{"label": "bil', stop_reason="model_context_window_exceeded"))
        err = model_client_failure(background, upstream, classify("I was charged twice."))
        assert isinstance(err, errors.RequestTooLarge)
        completion = err.completion
        assert isinstance(completion, Completion)
        assert completion.billed_calls == 1
        assert completion.usage.input_tokens > 0
