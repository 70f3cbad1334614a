"""Re-asks and OUTPUT_INVALID: RetryInfo only when another try may help, truncation never past
the model's largest output, no blank text ever sent, and no message quoting the model's output
or the caller's text."""

from __future__ import annotations

import dataclasses
import json

import grpc
import pytest
from failures import Stub, failure, model_client_failure

from harness import BackgroundLoop, Upstream
from samples import TICKET_LABELS
from tiergate import errors
from tiergate.emulator import Fault, Script
from tiergate.ledger import PriceTable
from tiergate.serving import status
from tiergate.upstream.model_client import Completion
from tiergate.v1 import task_service_pb2 as pb

HAIKU = PriceTable.load().facts("claude-haiku-4-5")
CALLER_TEXT = "caller-secret-7781: I was charged twice for my subscription."
# With a confidence: the structured-outputs path (the bare-label path has its own tests).
REQUEST = pb.ClassifyRequest(text=CALLER_TEXT, labels=TICKET_LABELS, include_confidence=True)
GOOD = json.dumps({"label": "billing", "confidence": 0.9})


def sent_texts(body: dict[str, object]) -> list[str]:
    """Every text block of a request body, system and messages."""
    blocks = list(body.get("system", []))  # type: ignore[call-overload]  # a JSON body: its shape is the API's
    for message in body["messages"]:  # type: ignore[attr-defined]  # a JSON body: its shape is the API's
        blocks.extend(message["content"])
    return [block["text"] for block in blocks if block["type"] == "text"]


class TestTruncation:
    def test_truncation_at_the_models_largest_output_is_not_reasked(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """When max_tokens is already the model's largest output, a truncated answer is not
        re-asked (no more room exists) and OUTPUT_INVALID carries no RetryInfo."""
        capped = dataclasses.replace(HAIKU, max_output_tokens=64)  # Classify asks for 64
        upstream.inject(Fault("truncated", count=2))
        err = model_client_failure(background, upstream, REQUEST, facts=capped)
        assert isinstance(err, errors.OutputInvalid)
        assert err.retry_after_s is None
        assert "largest output" in err.message
        assert isinstance(err.completion, Completion)
        assert err.completion.billed_calls == 1
        assert len(upstream.requests) == 1

    def test_a_reask_never_asks_beyond_the_models_largest_output(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """Doubling max_tokens stops at the model's largest output."""
        capped = dataclasses.replace(HAIKU, max_output_tokens=100)
        upstream.inject(Fault("truncated", count=2))
        err = model_client_failure(background, upstream, REQUEST, facts=capped)
        assert isinstance(err, errors.OutputInvalid)
        first, second = upstream.requests
        assert (first["max_tokens"], second["max_tokens"]) == (64, 100)
        assert err.retry_after_s is None


class TestRetryInfo:
    def test_the_same_schema_violation_twice_has_no_retry_info(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """Two answers breaking the same rule (``$.label``, enum): the constraints look
        unsatisfiable, so no RetryInfo and a do-not-retry pushback."""
        bad = json.dumps({"label": "refunds-and-more", "confidence": 0.5})
        upstream.script(Script(text=bad, count=2))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(REQUEST, timeout=10)
        found = failure(caught.value)
        assert found.reason == "OUTPUT_INVALID"
        assert found.retry_after_ms is None
        assert found.trailers[status.PUSHBACK_TRAILER] == status.NO_RETRY_PUSHBACK
        assert "$.label (enum)" in found.message

    def test_different_values_breaking_the_same_rule_count_as_the_same(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """The rule, not the wrong value, decides: two different bad labels are one problem."""
        upstream.script(
            Script(text=json.dumps({"label": "one", "confidence": 0.5})),
            Script(text=json.dumps({"label": "two", "confidence": 0.5})),
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(REQUEST, timeout=10)
        assert failure(caught.value).retry_after_ms is None

    def test_two_different_rules_broken_keep_retry_info(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A bad label, then a missing confidence: chance, so RetryInfo of 1 s."""
        upstream.script(
            Script(text=json.dumps({"label": "one", "confidence": 0.5})),
            Script(text=json.dumps({"label": "billing"})),
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(REQUEST, timeout=10)
        found = failure(caught.value)
        assert found.reason == "OUTPUT_INVALID"
        assert found.retry_after_ms == 1000


class TestNoQuoting:
    def test_messages_never_quote_the_output_or_the_callers_text(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """The model echoes the caller's text into a field: the error names the path and the
        failing keyword, and neither the output nor the caller's text appears in it."""
        echo = json.dumps({"label": CALLER_TEXT, "confidence": "model-output-4711"})
        upstream.script(Script(text=echo, count=2))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Classify(REQUEST, timeout=10)
        found = failure(caught.value)
        assert found.reason == "OUTPUT_INVALID"
        assert "caller-secret-7781" not in found.message
        assert "model-output-4711" not in found.message
        assert "does not match the schema at $." in found.message

    def test_failed_task_checks_are_counted_not_quoted(
        self, background: BackgroundLoop, upstream: Upstream
    ) -> None:
        """A task check's problems may quote output values: the caller is told how many checks
        failed, the model is told what they were."""
        upstream.script(Script(text=GOOD, count=2))
        err = model_client_failure(
            background,
            upstream,
            REQUEST,
            check=lambda output: [f"{output['label']!r} is not allowed here"],
        )
        assert isinstance(err, errors.OutputInvalid)
        assert "billing" not in err.message
        assert "1 of the task's checks" in err.message
        correction = upstream.requests[1]["messages"][-1]["content"][0]["text"]
        assert "'billing' is not allowed here" in correction


class TestNoBlankText:
    @pytest.mark.parametrize("blank", ["", "   \n\t  "])
    def test_a_blank_answer_is_never_echoed(
        self, stub: Stub, upstream: Upstream, blank: str
    ) -> None:
        """An empty or whitespace-only answer is re-asked without echoing it (the API rejects
        blank text blocks): the correction joins the request's user turn, and the strict
        emulator accepts the re-ask."""
        content = [{"type": "text", "text": blank}] if blank else []
        upstream.script(Script(content=content), Script(text=GOOD))
        reply = stub.Classify(REQUEST, timeout=10)
        assert reply.label == "billing"
        assert reply.usage.billed_calls == 2
        first, second = upstream.requests
        assert [m["role"] for m in second["messages"]] == ["user"]
        request_blocks = second["messages"][0]["content"]
        assert request_blocks[0] == first["messages"][0]["content"][0]
        assert "not usable" in request_blocks[-1]["text"]
        assert all(text.strip() for text in sent_texts(second))

    def test_a_thinking_block_before_a_bad_answer_echoes_only_the_answer(
        self, stub: Stub, upstream: Upstream
    ) -> None:
        """A response opening with a thinking block: the re-ask echoes the text answer only."""
        thinking = {"type": "thinking", "thinking": "Let me see.", "signature": "sig"}
        bad = json.dumps({"label": "nope", "confidence": 0.5})
        upstream.script(
            Script(content=[thinking, {"type": "text", "text": bad}]), Script(text=GOOD)
        )
        stub.Classify(REQUEST, timeout=10)
        second = upstream.requests[1]
        assert second["messages"][1] == {
            "role": "assistant",
            "content": [{"type": "text", "text": bad}],
        }
