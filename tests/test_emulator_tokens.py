"""The emulator's token counter: one token per CJK character, at least one per symbol, Latin text
unchanged, and count_tokens counting exactly what /v1/messages bills."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from emulator_calls import SONNET, ask, text_of

from tiergate.emulator import Emulator, Script, count_tokens
from tiergate.emulator.tokens import truncate_to_tokens

JAPANESE = "東京都の返品期間は三十日です。カタカナも数えます"
CHINESE = "退款期限为三十天"
KOREAN = "환불 기간은 삼십일입니다"


class TestCounting:
    @pytest.mark.parametrize(
        ("text", "tokens"),
        [
            ("Hello, world!", 6),  # Hell|o|,|worl|d|!
            ("Be brief.", 4),
            ("abcd " * 10, 10),
            ("café naïve", 3),  # accented Latin stays in chunks of four
            (CHINESE, 8),
            ("ひらがな", 4),
            ("환불", 2),
            ("日本語abc", 4),  # 日|本|語|abc
        ],
    )
    def test_counts(self, text: str, tokens: int) -> None:
        """Latin counts are unchanged; every CJK ideograph, kana and hangul is one token."""
        assert count_tokens(text) == tokens

    def test_cjk_is_one_token_per_character(self) -> None:
        """Across Japanese, Chinese and Korean, letters count one each (spaces nothing)."""
        for text in (JAPANESE, CHINESE, KOREAN):
            assert count_tokens(text) == len(text.replace(" ", ""))

    @pytest.mark.parametrize("symbol", ["👍", "🎉", "€", "→", "✓", "👍🏽", "👨\u200d👩\u200d👧"])
    def test_every_symbol_costs_at_least_one(self, symbol: str) -> None:
        """An emoji or symbol never hides inside a neighbour's chunk."""
        assert count_tokens(symbol) >= 1
        assert count_tokens("ab" + symbol + "cd") == 2 + count_tokens(symbol)

    def test_truncation_on_cjk_is_exact(self) -> None:
        """Truncating CJK text to n tokens keeps exactly n characters."""
        cut = truncate_to_tokens(CHINESE, 3)
        assert cut == CHINESE[:3]
        assert count_tokens(cut) == 3


def mixed_request() -> dict[str, Any]:
    return {
        "system": [{"type": "text", "text": f"Answer in the asker's language. {JAPANESE}"}],
        "messages": [
            {"role": "user", "content": f"{CHINESE} 👍 {KOREAN}"},
            {"role": "assistant", "content": "了解しました。"},
            {"role": "user", "content": [{"type": "text", "text": "返品は\uff1f 🎉 Refund?"}]},
        ],
        "output_config": {
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"答え": {"type": "string", "description": "日本語で"}},
                    "required": ["答え"],
                    "additionalProperties": False,
                },
            }
        },
    }


class TestCountMatchesBilling:
    def test_count_tokens_equals_the_billed_prompt(self, client: anthropic.Anthropic) -> None:
        """For a mixed-script prompt, input + cache write + cache read equals count_tokens."""
        request = mixed_request()
        counted = client.messages.count_tokens(model=SONNET, **request).input_tokens
        usage = ask(client, **request).usage
        billed = usage.input_tokens + (usage.cache_creation_input_tokens or 0)
        billed += usage.cache_read_input_tokens or 0
        assert billed == counted
        # The CJK text alone is at least one token per character.
        assert counted > len(JAPANESE) + len(CHINESE)

    def test_output_tokens_count_cjk_per_character(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A scripted CJK answer bills one output token per character."""
        emulator.script(Script(text=CHINESE))
        message = ask(client)
        assert text_of(message) == CHINESE
        assert message.usage.output_tokens == len(CHINESE)
