"""Deterministic token counting for the emulator.

The emulator is not a tokenizer of any real model: it counts word characters in chunks of at most
four, every CJK ideograph, kana and hangul syllable as one token (real tokenizers spend about one
token per character on Chinese, Japanese and Korean), and every other character that is neither
a word character nor whitespace (punctuation, symbols, each code point of an emoji) as one token.
That is close enough in magnitude to real tokenizers for cost and cache arithmetic, and it is
exact and reproducible, as tests need.

    >>> count_tokens("Hello, world!")  # Hell|o|,|worl|d|!
    6
    >>> count_tokens("東京都です")  # one token per character
    5
"""

from __future__ import annotations

import json
import re
from typing import Any

# Han (unified, extensions A-G, compatibility), kana (incl. half-width), hangul (jamo and
# syllables), bopomofo and the iteration marks.
_CJK = (
    "\u1100-\u11ff\u3005-\u3007\u3021-\u3029\u3031-\u3035\u303b\u303c\u3040-\u30ff"
    "\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f\uffa0-\uffdc"
    "\U00020000-\U0003134f"
)
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\W{_CJK}]{{1,4}}|[^\\w\\s]")

BLOCK_OVERHEAD_TOKENS = 3
"""Added to every content block (system or message) on top of its text tokens."""

MESSAGE_OVERHEAD_TOKENS = 4
"""Added once per message (attributed to its first content block)."""

# The system prompt costs nothing beyond its blocks.

TOOL_OVERHEAD_TOKENS = 3
"""Added to every tool on top of the tokens of its canonical JSON."""

SCHEMA_OVERHEAD_TOKENS = 0
"""The structured-output schema costs exactly the tokens of its canonical JSON."""


def count_tokens(text: str) -> int:
    """Return the emulator's token count of ``text``."""
    return len(_TOKEN_RE.findall(text))


def truncate_to_tokens(text: str, limit: int) -> str:
    """Return the longest prefix of ``text`` that holds exactly ``limit`` tokens (or all of it).

    Cutting at the end of a token match keeps the earlier matches unchanged, so
    ``count_tokens(truncate_to_tokens(t, n)) == min(n, count_tokens(t))``.
    """
    if limit <= 0:
        return ""
    for index, match in enumerate(_TOKEN_RE.finditer(text), start=1):
        if index == limit:
            return text[: match.end()]
    return text


def canonical_json(value: Any) -> str:
    """Serialise ``value`` the way the cache and the counter compare it: sorted, compact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
