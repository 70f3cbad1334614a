"""How the model client reads a Messages API response into an output, before any task sees it.

Hand-built ``anthropic.types.Message`` objects: thinking-first answers, truncated, empty and
malformed outputs, and what the next (billed) call asks after a bad one.
"""

from __future__ import annotations

import random
import time

import anthropic
import httpx2
import pytest
from anthropic.types import CacheCreation, Message, TextBlock, Usage

from task_io import message
from tiergate import errors
from tiergate.calls.prompt import JsonObject
from tiergate.config import Settings
from tiergate.ledger import PriceTable
from tiergate.tiers import Tier
from tiergate.upstream import model_client
from tiergate.upstream.answers import checked_bill
from tiergate.upstream.model_client import (
    _deadline_error,
    _expired,
    _wait_before_retry,
)
from tiergate.upstream.output import BadOutput, output_invalid, parse_output, reask_params
from tiergate.upstream.transport import upstream_client

SCHEMA: JsonObject = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["a", "b"]}},
    "required": ["label"],
    "additionalProperties": False,
}


def no_problems(_output: JsonObject) -> list[str]:
    return []


def bad(msg: Message, check: object = no_problems) -> BadOutput:
    with pytest.raises(BadOutput) as raised:
        parse_output(msg, SCHEMA, check)  # type: ignore[arg-type]  # a check of the test's own
    return raised.value


class TestTheAnswerIsTheFirstTextBlock:
    def test_plain_answer(self) -> None:
        """A text block holding a schema-valid JSON object is the output."""
        assert parse_output(message('{"label": "a"}'), SCHEMA, no_problems) == {"label": "a"}

    def test_thinking_first_is_skipped(self) -> None:
        """A leading thinking block is not the answer, even when it looks like JSON."""
        msg = message('{"label": "b"}', thinking='{"label": "a"}')
        assert parse_output(msg, SCHEMA, no_problems) == {"label": "b"}

    def test_only_the_first_text_block_counts(self) -> None:
        """A second text block is ignored."""
        msg = message('{"label": "a"}')
        msg.content.append(TextBlock(type="text", text='{"label": "b"}'))
        assert parse_output(msg, SCHEMA, no_problems) == {"label": "a"}


class TestUnusableOutputs:
    def test_the_problem_is_the_exception_text(self) -> None:
        """A bad output reads as its problem wherever it is shown."""
        assert str(BadOutput("empty output")) == "empty output"

    def test_truncated_output_is_bad_and_marked_truncated(self) -> None:
        """stop_reason max_tokens is truncation, even when the text happens to parse."""
        problem = bad(message('{"label": "a"}', stop_reason="max_tokens"))
        assert problem.truncated
        assert problem.problem == "output truncated at max_tokens"

    @pytest.mark.parametrize(
        "msg",
        [message(None), message(""), message(" \n\t"), message(None, thinking="{}")],
        ids=["no-content", "empty", "whitespace", "thinking-only"],
    )
    def test_empty_output(self, msg: Message) -> None:
        """No text, empty or whitespace text, or thinking alone is an empty output."""
        problem = bad(msg)
        assert problem.problem == "empty output"
        assert not problem.truncated

    def test_not_json(self) -> None:
        """Text that is not JSON says so, with the parser's reason."""
        assert bad(message("label: a")).problem == "output is not JSON (Expecting value)"

    @pytest.mark.parametrize(
        "text",
        ['{"label": "a\\ud800"}', '{"label": "a\\udc00b"}', '{"\\ud83d": "a"}'],
        ids=["high-half", "low-half", "in-a-key"],
    )
    def test_a_lone_surrogate_escape_is_no_text(self, text: str) -> None:
        """Valid JSON may escape half a surrogate pair; no reply can carry it (protobuf strings
        are UTF-8), so it is an unusable output, asked again, never an INTERNAL later."""
        assert (
            bad(message(text)).problem == "output holds a lone surrogate escape, which is no text"
        )

    def test_a_whole_pair_is_text(self) -> None:
        """An escaped surrogate pair is one character, and fine."""
        schema = {**SCHEMA, "properties": {"label": {"type": "string"}}}
        assert parse_output(message('{"label": "\\ud83d\\ude00"}'), schema, no_problems) == {
            "label": "\U0001f600"
        }

    def test_not_an_object(self) -> None:
        """A JSON value that is not an object is refused."""
        assert bad(message('["a"]')).problem == "output is not a JSON object"

    def test_schema_mismatch_names_the_path(self) -> None:
        """Schema-invalid output names where it breaks the schema."""
        problem = bad(message('{"label": "c"}')).problem
        assert problem.startswith("output does not match the schema at $.label: ")

    def test_check_problems_are_joined(self) -> None:
        """What the task's check finds is the problem, every item of it."""
        problem = bad(message('{"label": "a"}'), lambda _output: ["one", "two"]).problem
        assert problem == "one; two"


FACTS = PriceTable.load().facts("claude-haiku-4-5")
PARAMS: JsonObject = {
    "model": "m",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}],
}


class TestReask:
    def test_truncation_doubles_the_budget(self) -> None:
        """After a truncated output the same question is asked with twice the room."""
        params = reask_params(PARAMS, message("{"), BadOutput("t", truncated=True), FACTS)
        assert params["max_tokens"] == 200
        assert params["messages"] == PARAMS["messages"]

    def test_truncation_never_asks_past_the_models_output_limit(self) -> None:
        """Doubling stops at the model's largest output, which the API would refuse beyond."""
        near = {**PARAMS, "max_tokens": FACTS.max_output_tokens - 1}
        params = reask_params(near, message("{"), BadOutput("t", truncated=True), FACTS)
        assert params["max_tokens"] == FACTS.max_output_tokens

    def test_bad_output_gets_a_correction(self) -> None:
        """The bad answer is replayed, followed by the problem and a request to answer again."""
        params = reask_params(PARAMS, message('{"x": 1}'), BadOutput("no label"), FACTS)
        first, replayed, correction = params["messages"]
        assert first == PARAMS["messages"][0]
        assert replayed == {"role": "assistant", "content": [{"type": "text", "text": '{"x": 1}'}]}
        assert correction == {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "That answer was not usable: no label. Answer again with only a JSON"
                    " object that follows the schema and the instructions.",
                }
            ],
        }
        assert params["max_tokens"] == 100

    @pytest.mark.parametrize("answer", [None, "", "  \n "])
    def test_a_blank_answer_is_not_replayed(self, answer: str | None) -> None:
        """The API rejects blank text blocks, so a blank answer is not echoed: the correction
        joins the request in the one user turn."""
        params = reask_params(PARAMS, message(answer), BadOutput("empty output"), FACTS)
        (turn,) = params["messages"]
        request, correction = turn["content"]
        assert request == PARAMS["messages"][0]["content"][0]
        assert correction["text"].startswith("That answer was not usable: empty output.")


class TestBilledUsage:
    def test_cache_writes_are_split_by_ttl(self) -> None:
        """Cache creation splits into 1h and the rest (5m); reads and output pass through."""
        msg = message("{}")
        msg.usage = Usage(
            input_tokens=10,
            output_tokens=7,
            cache_creation_input_tokens=300,
            cache_read_input_tokens=40,
            cache_creation=CacheCreation(
                ephemeral_1h_input_tokens=100, ephemeral_5m_input_tokens=200
            ),
        )
        _, usage = checked_bill(msg, FACTS)
        assert (usage.input_tokens, usage.output_tokens) == (10, 7)
        assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (200, 100)
        assert usage.cache_read_tokens == 40

    def test_missing_counters_are_zero(self) -> None:
        """A response without cache counters bills no cache tokens."""
        _, usage = checked_bill(message("{}"), FACTS)
        assert (usage.cache_write_5m_tokens, usage.cache_write_1h_tokens) == (0, 0)
        assert usage.cache_read_tokens == 0


class TestBackoff:
    ERROR = anthropic.APIConnectionError(request=httpx2.Request("POST", "http://upstream/v1"))

    @pytest.mark.parametrize(("attempt", "cap"), [(1, 0.5), (2, 1.0), (3, 2.0), (8, 8.0)])
    def test_jittered_backoff_spans_zero_to_its_cap(
        self, attempt: int, cap: float, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a hint the wait is uniform in [0, min(0.5 * 2^(n-1), 8)] seconds, drawn
        from the backoff's own generator (never the global one a caller may seed)."""
        rng = random.Random(7)
        monkeypatch.setattr(model_client, "_JITTER", random.Random(7))
        random.seed(1)
        waits = [_wait_before_retry(self.ERROR, attempt) for _ in range(400)]
        assert waits == [rng.uniform(0, cap) for _ in range(400)]


class TestDeadline:
    def test_no_deadline_never_expires(self) -> None:
        """A call without a deadline is never past it."""
        assert _expired(None) is False

    def test_past_and_future_deadlines(self) -> None:
        """A deadline in the past has expired; one a minute away has not."""
        assert _expired(time.monotonic() - 1) is True
        assert _expired(time.monotonic() + 60) is False

    def test_deadline_error_says_what_happened(self) -> None:
        """The caller reads that the deadline passed before the model answered."""
        error = _deadline_error()
        assert isinstance(error, errors.DeadlineExceeded)
        assert error.message == "the call's deadline passed before the model answered"


class TestWhenReasksRunOut:
    """The OUTPUT_INVALID a caller gets when every re-ask is spent, and whether to retry."""

    def test_a_chance_failure_may_be_retried(self) -> None:
        """Different problems each time: the message names the last, with the default wait."""
        err = output_invalid(
            BadOutput("empty output"), BadOutput("output is not JSON (x)"), False, 2
        )
        assert err.message == "the model's output was unusable after 2 billed calls: empty output"
        assert err.retry_after_s == errors.DEFAULT_RETRY_AFTER_S

    def test_the_same_problem_twice_is_hopeless(self) -> None:
        """The same broken rule twice says so and carries no RetryInfo."""
        err = output_invalid(BadOutput("empty output"), BadOutput("empty output"), False, 3)
        assert err.message == (
            "the model's output was unusable after 3 billed calls: empty output"
            " (the same problem every time)"
        )
        assert err.retry_after_s is None

    def test_truncation_at_the_models_largest_output_is_hopeless(self) -> None:
        """Truncated at the model's largest output: said so, and no RetryInfo."""
        bad_output = BadOutput("output truncated at max_tokens", truncated=True)
        err = output_invalid(bad_output, None, True, 1)
        assert err.message == (
            "the model's output was unusable after 1 billed calls: output truncated at max_tokens"
            " (at the model's largest output)"
        )
        assert err.retry_after_s is None

    def test_the_caller_sees_the_public_text_not_the_problem(self) -> None:
        """A problem that quotes the output reaches the caller only as its public text."""
        bad_output = BadOutput("label 'secret' is not allowed", public="output failed 1 check")
        err = output_invalid(bad_output, None, False, 1)
        assert err.message.endswith(": output failed 1 check")
        assert "secret" not in err.message

    def test_a_repeat_is_judged_by_the_rule(self) -> None:
        """Two failures with the same public text but different rules are not a repeat."""
        first = BadOutput("a missing", public="output failed 1 of the task's checks", rule="a")
        second = BadOutput("b missing", public="output failed 1 of the task's checks", rule="b")
        assert output_invalid(second, first, False, 2).retry_after_s is not None
        same = BadOutput("a missing again", public="other words", rule="a")
        assert output_invalid(same, first, False, 2).retry_after_s is None

    def test_the_rule_defaults_to_the_public_text(self) -> None:
        """Without a rule, two failures with the same public text are a repeat."""
        first = BadOutput("quote 1", public="schema mismatch at $.label (enum)")
        second = BadOutput("quote 2", public="schema mismatch at $.label (enum)")
        assert output_invalid(second, first, False, 2).retry_after_s is None


class TestConnectionPool:
    def test_the_pool_holds_every_admitted_call(self) -> None:
        """The upstream pool has room for the concurrency limit on every tier at once."""
        client = upstream_client(
            api_key="k", base_url="http://127.0.0.1:9", settings=Settings(max_concurrency=5)
        )
        # The SDK's aiohttp transport keeps the limits it was given; no public accessor.
        transport = client._client._transport
        assert transport.limits == httpx2.Limits(  # type: ignore[attr-defined]  # aiohttp transport
            max_connections=5 * len(Tier), max_keepalive_connections=5 * len(Tier)
        )
