"""Scripted replies: the emulator answers exactly what a test tells it, through the real SDK.

A script replaces only the answer: validation, recording, billing and the prefix cache behave as
for any call, faults take precedence, and scripts are consumed FIFO per matching model.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.types import TextBlock, ThinkingBlock
from emulator_calls import QUESTION, SONNET, ask, http
from google.protobuf import json_format

from harness import Upstream
from samples import EXTRACT
from tiergate.emulator import Emulator, Fault, Script, count_tokens
from tiergate.emulator.testing import ThreadedEmulator
from tiergate.v1 import task_service_pb2_grpc

HAIKU = "claude-haiku-4-5"


def long_system(min_tokens: int = 4200) -> list[dict[str, Any]]:
    """A cacheable system block past every model's minimum."""
    words = " ".join(f"rule{i} applies to refunds filed on day {i}." for i in range(900))
    assert count_tokens(words) >= min_tokens
    return [{"type": "text", "text": words, "cache_control": {"type": "ephemeral"}}]


class TestScriptedContent:
    def test_text_is_answered_verbatim_and_billed(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A text script is the whole answer; output tokens are its tokens, input the prompt's."""
        emulator.script(Script(text='{"label": "billing"}'))
        message = ask(client)
        assert [block.type for block in message.content] == ["text"]
        assert isinstance(message.content[0], TextBlock)
        assert message.content[0].text == '{"label": "billing"}'
        assert message.stop_reason == "end_turn"
        assert message.usage.output_tokens == count_tokens('{"label": "billing"}')
        counted = client.messages.count_tokens(model=SONNET, messages=QUESTION).input_tokens
        assert message.usage.input_tokens == counted

    def test_raw_blocks_keep_their_order(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A thinking block before the text arrives first; thinking tokens bill as output."""
        emulator.script(
            Script(
                content=[
                    {"type": "thinking", "thinking": "Weigh the refund rule.", "signature": "s"},
                    {"type": "text", "text": "Thirty days."},
                ]
            )
        )
        message = ask(client)
        first, second = message.content
        assert isinstance(first, ThinkingBlock)
        assert first.thinking == "Weigh the refund rule."
        assert isinstance(second, TextBlock)
        assert second.text == "Thirty days."
        expected = count_tokens("Weigh the refund rule.") + count_tokens("Thirty days.")
        assert message.usage.output_tokens == expected

    def test_no_content(self, client: anthropic.Anthropic, emulator: Emulator) -> None:
        """content=[] answers with an empty content list and zero output tokens."""
        emulator.script(Script(content=[]))
        message = ask(client)
        assert message.content == []
        assert message.usage.output_tokens == 0

    def test_stop_reason_details_and_headers(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """stop_reason, stop_details and extra headers are sent as scripted."""
        details = {"type": "refusal", "category": "cyber", "explanation": "Not this."}
        emulator.script(
            Script(
                text="No.",
                stop_reason="refusal",
                stop_details=details,
                headers={"x-should-retry": "false"},
            )
        )
        raw = client.messages.with_raw_response.create(
            model=SONNET, max_tokens=50, messages=QUESTION
        )
        assert raw.headers["x-should-retry"] == "false"
        message = raw.parse()
        assert message.stop_reason == "refusal"
        assert message.stop_details is not None
        assert message.stop_details.category == "cyber"

    @pytest.mark.parametrize(
        ("fields", "complaint"),
        [
            ({"text": "a", "content": []}, "exactly one of text or content"),
            ({}, "exactly one of text or content"),
            ({"text": "a", "stop_reason": "done"}, "unknown stop_reason"),
            ({"text": "a", "usage": {"tokens": 1}}, "unknown usage fields"),
            ({"text": "a", "count": 0}, "count must be at least 1"),
            ({"content": [{"text": "no type"}]}, "needs a string 'type'"),
        ],
    )
    def test_invalid_scripts_are_refused(self, fields: dict[str, Any], complaint: str) -> None:
        """Malformed scripts fail when built, saying what is wrong."""
        with pytest.raises(ValueError, match=complaint):
            Script(**fields)


class TestScriptedUsage:
    def test_overridden_fields_replace_computed_ones(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """An output_tokens override is reported; the input side is still computed."""
        emulator.script(Script(text="ok", usage={"output_tokens": 777, "service_tier": "batch"}))
        message = ask(client)
        assert message.usage.output_tokens == 777
        assert message.usage.service_tier == "batch"
        counted = client.messages.count_tokens(model=SONNET, messages=QUESTION).input_tokens
        assert message.usage.input_tokens == counted

    def test_scripted_calls_write_and_read_the_cache(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """Without input overrides a scripted call writes the cache and the next one reads it."""
        system = long_system()
        emulator.script(Script(text="one"), Script(text="two"))
        first = ask(client, system=system)
        second = ask(client, system=system)
        assert (first.usage.cache_creation_input_tokens or 0) > 0
        assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens

    def test_input_override_leaves_the_cache_alone(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """Overriding input usage neither writes nor reads: the next call still writes."""
        system = long_system()
        emulator.script(Script(text="x", usage={"cache_read_input_tokens": 5}))
        scripted = ask(client, system=system)
        assert scripted.usage.cache_read_input_tokens == 5
        assert scripted.usage.cache_creation_input_tokens == 0
        after = ask(client, system=system)
        assert (after.usage.cache_creation_input_tokens or 0) > 0
        assert after.usage.cache_read_input_tokens == 0


class TestScriptQueue:
    def test_fifo_counted_and_model_scoped(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """Scripts answer in order, count times each, only for their model; then heuristics."""
        emulator.script(
            Script(text="sonnet", model=SONNET, count=2), Script(text="any"), Script(text="last")
        )
        haiku = ask(client, model=HAIKU)
        texts = [ask(client).content[0] for _ in range(3)]
        assert isinstance(haiku.content[0], TextBlock)
        assert haiku.content[0].text == "any"
        assert [b.text for b in texts if isinstance(b, TextBlock)] == ["sonnet", "sonnet", "last"]
        heuristic = ask(client).content[0]
        assert isinstance(heuristic, TextBlock)
        assert heuristic.text not in ("sonnet", "any", "last")
        assert emulator.scripts.pending() == []

    def test_invalid_request_is_not_rescued(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """An invalid request gets its 400 and leaves the script for the next valid call."""
        emulator.script(Script(text="scripted"))
        with pytest.raises(anthropic.BadRequestError):
            ask(client, max_tokens=0)
        assert len(emulator.scripts.pending()) == 1
        assert emulator.requests == []
        message = ask(client)
        assert isinstance(message.content[0], TextBlock)
        assert message.content[0].text == "scripted"
        assert len(emulator.requests) == 1

    def test_error_fault_takes_precedence(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A queued error fault answers first; the script answers the following call."""
        emulator.script(Script(text="scripted"))
        emulator.inject(Fault("overloaded"))
        with pytest.raises(anthropic.InternalServerError):
            ask(client)
        message = ask(client)
        assert isinstance(message.content[0], TextBlock)
        assert message.content[0].text == "scripted"

    def test_output_fault_answers_instead_and_keeps_the_script(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A broken-output fault answers the call in place of the script, which stays queued."""
        emulator.script(Script(text="scripted"))
        emulator.inject(Fault("empty"))
        assert ask(client).content == []
        second = ask(client).content[0]
        assert isinstance(second, TextBlock)
        assert second.text == "scripted"


class TestScriptControlRoute:
    def test_scripts_round_trip_over_http(self, served: ThreadedEmulator) -> None:
        """to_json feeds the control route; from_json refuses unknown fields with a 400."""
        base = served.base_url
        script = Script(
            content=[{"type": "text", "text": "hi"}],
            usage={"output_tokens": 3},
            headers={"x-a": "b"},
            model=SONNET,
            count=2,
        )
        assert Script.from_json(script.to_json()) == script
        status, queued = http(f"{base}/_emulator/script", [script.to_json()])
        assert status == 200
        assert queued["pending"][0]["count"] == 2
        assert http(f"{base}/_emulator/script", [{"text": "a", "colour": "red"}])[0] == 400
        assert http(f"{base}/_emulator/script", {"text": "a", "stop_reason": "x"})[0] == 400
        body = {"model": SONNET, "max_tokens": 10, "messages": QUESTION}
        status, message = http(f"{base}/v1/messages", body)
        assert (status, message["content"], message["usage"]["output_tokens"]) == (
            200,
            [{"type": "text", "text": "hi"}],
            3,
        )
        served.emulator.reset()
        assert served.emulator.scripts.pending() == []


class TestScriptsThroughTheService:
    def test_upstream_script_is_what_extract_returns(
        self, stub: task_service_pb2_grpc.TaskServiceStub, upstream: Upstream
    ) -> None:
        """Upstream.script feeds the service the exact answer; the reply carries it and bills
        its tokens, so service tests state their expected output."""
        answer = '{"email": "billing@example.org", "amount": 42.5, "date": "2026-11-03"}'
        upstream.script(Script(text=answer, model=HAIKU))
        reply = stub.Extract(EXTRACT, timeout=10)
        assert json_format.MessageToDict(reply.data) == json.loads(answer)
        assert reply.usage.output_tokens == count_tokens(answer)
        assert reply.usage.billed_calls == 1
        assert upstream.emulator.scripts.pending() == []
