"""Per-model limits and content rules: windows, max output, blank text, the model table.

Driven through the real SDK; the emulator's model table is its own and is compared with the
service's ``models.toml`` so the two cannot drift apart silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from emulator_calls import QUESTION, SONNET, ask, text_of

from tiergate.emulator import Emulator, EmulatorConfig, Script, count_tokens
from tiergate.emulator.models import MODELS, ModelLimits
from tiergate.emulator.prompt import build_prompt
from tiergate.emulator.testing import ThreadedEmulator
from tiergate.ledger import PriceTable

HAIKU = "claude-haiku-4-5"
# "abcd " is one token per word: 200,000 words plus the message overheads.
OVER_200K: list[Any] = [{"role": "user", "content": "abcd " * 200_000}]


class TestModelTable:
    def test_emulator_and_service_tables_agree(self) -> None:
        """Every model in both tables has the same window, max output and cache minimum."""
        service = PriceTable.load().models
        shared = set(MODELS) & set(service)
        assert shared, "the tables share no model"
        for model in sorted(shared):
            facts = service[model]
            expected = ModelLimits(
                facts.context_window_tokens, facts.max_output_tokens, facts.min_cacheable_tokens
            )
            assert MODELS[model] == expected, model

    def test_documented_windows_and_outputs(self) -> None:
        """1M/128K for Sonnet 4.6 and Opus 4.6/4.7; 200K/64K for the others."""
        large = {"claude-sonnet-4-6", "claude-opus-4-6", "claude-opus-4-7"}
        for model, limits in MODELS.items():
            big = model in large
            assert limits.context_window_tokens == (1_000_000 if big else 200_000), model
            assert limits.max_output_tokens == (128_000 if big else 64_000), model


class TestContextWindow:
    def test_prompt_over_the_window_is_refused_per_model(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """200,007 tokens exceed Haiku's 200K (a queued script does not rescue it); Sonnet 4.6
        takes them (1M)."""
        emulator.script(Script(text="fits"))
        with pytest.raises(anthropic.BadRequestError) as caught:
            ask(client, model=HAIKU, messages=OVER_200K, max_tokens=10)
        assert caught.value.api_message == "prompt is too long: 200007 tokens > 200000 maximum"
        message = ask(client, model=SONNET, messages=OVER_200K, max_tokens=10)
        assert text_of(message) == "fits"
        assert message.usage.input_tokens == 200_007

    def test_count_tokens_counts_a_prompt_over_the_window(
        self, client: anthropic.Anthropic
    ) -> None:
        """count_tokens reports the size of a too-long prompt instead of refusing it."""
        counted = client.messages.count_tokens(model=HAIKU, messages=OVER_200K)
        assert counted.input_tokens == 200_007


@pytest.fixture(scope="module")
def narrow() -> Iterator[tuple[ThreadedEmulator, int]]:
    """An emulator whose Haiku window is the QUESTION prompt plus 5 tokens."""
    prompt = build_prompt({"messages": QUESTION}).total_tokens
    limits = ModelLimits(prompt + 5, 100, 4096)
    with ThreadedEmulator(EmulatorConfig(models={HAIKU: limits})) as served:
        yield served, prompt


class TestWindowExceededOutput:
    def test_output_stops_at_the_window(self, narrow: tuple[ThreadedEmulator, int]) -> None:
        """A prompt that fits with max_tokens past the window stops there with its own reason."""
        served, _ = narrow
        client = anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=0)
        message = ask(client, model=HAIKU, max_tokens=50)
        assert message.stop_reason == "model_context_window_exceeded"
        assert message.usage.output_tokens == 5 == count_tokens(text_of(message))

    def test_max_tokens_inside_the_window_stops_as_usual(
        self, narrow: tuple[ThreadedEmulator, int]
    ) -> None:
        """With max_tokens below the room left, the answer stops at max_tokens."""
        served, _ = narrow
        client = anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=0)
        message = ask(client, model=HAIKU, max_tokens=3)
        assert message.stop_reason == "max_tokens"
        assert message.usage.output_tokens == 3

    def test_one_token_over_is_refused(self, narrow: tuple[ThreadedEmulator, int]) -> None:
        """The window counts exactly: window + 1 tokens is 'prompt is too long'."""
        served, prompt = narrow
        client = anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=0)
        # Six more one-token words make the prompt the window plus one.
        question = "What is the refund window for shoes?"
        assert QUESTION[0]["content"] == question
        longer = [{"role": "user", "content": question + " a b c d e f"}]
        assert build_prompt({"messages": longer}).total_tokens == prompt + 6
        with pytest.raises(anthropic.BadRequestError, match=rf"{prompt + 6} tokens > {prompt + 5}"):
            ask(client, model=HAIKU, messages=longer, max_tokens=1)


class TestMaxOutput:
    @pytest.mark.parametrize(
        ("model", "limit"), [(HAIKU, 64_000), (SONNET, 128_000), ("claude-opus-4-7", 128_000)]
    )
    def test_max_tokens_above_the_model_limit_is_refused(
        self, client: anthropic.Anthropic, emulator: Emulator, model: str, limit: int
    ) -> None:
        """max_tokens equal to the model's limit passes; one more is a 400 naming the limit."""
        emulator.script(Script(text="ok"))
        # An explicit timeout: the SDK asks large non-streaming calls to state one.
        assert text_of(ask(client, model=model, max_tokens=limit, timeout=30)) == "ok"
        with pytest.raises(anthropic.BadRequestError, match=rf"{limit + 1} > {limit}"):
            ask(client, model=model, max_tokens=limit + 1, timeout=30)


class TestBlankText:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"messages": [{"role": "user", "content": "   \n\t"}]}, "messages.0.content"),
            (
                {"messages": [{"role": "user", "content": [{"type": "text", "text": " "}]}]},
                "messages.0.content.0.text",
            ),
            (
                {"messages": [*QUESTION, {"role": "assistant", "content": "\u3000\n"}]},
                "messages.1.content",
            ),
            ({"system": "  "}, "system"),
            (
                {"system": [{"type": "text", "text": "ok"}, {"type": "text", "text": "\n"}]},
                "system.1.text",
            ),
        ],
    )
    def test_whitespace_only_text_is_refused(
        self, client: anthropic.Anthropic, params: dict[str, Any], field: str
    ) -> None:
        """Every text block, system or message, needs non-whitespace text, on both routes."""
        expected = f"{field}: text content blocks must contain non-whitespace text"
        with pytest.raises(anthropic.BadRequestError) as caught:
            ask(client, **params)
        assert caught.value.api_message == expected
        params.setdefault("messages", QUESTION)
        with pytest.raises(anthropic.BadRequestError):
            client.messages.count_tokens(model=SONNET, **params)
