"""Token counts of text in any script, without a tokenizer: a low and a high bound.

No tokenizer runs here. Every character counts by its class, at two rates in tokens per
character: a high one that real tokenizers stay under, and a low one they never go below.

==========================================  ========  ======  =================================
class (by UTF-8 length)                     high      low     typical
==========================================  ========  ======  =================================
ASCII letters, digits                       1 / 2.5   1 / 16  English about 1 / 3.5 to 1 / 4.5
ASCII spaces, tabs, line breaks             1 / 2.5   0       long runs merge into one token
ASCII punctuation                           1         1 / 16  often merged with a word
2 bytes: accents, Greek, Cyrillic, Arabic   1         1 / 8   Cyrillic about 1 / 2
3 bytes: CJK, kana, hangul, Indic, symbols  1.5       1 / 4   CJK and kana about 1
4 bytes: emoji, rare CJK                    4         1 / 2   one token per byte at worst
==========================================  ========  ======  =================================

The high count grows by the model's ``tokenizer_percent`` (Opus 4.7 makes about 30% more tokens)
and by an allowance for the prompt text the API adds for structured outputs. A prompt whose high
count fits is sent; one whose low count does not fit is refused before any call; in between,
the free ``count_tokens`` endpoint decides::

    >>> bounds("Hello, world!")
    Bounds(low=0, high=7)
    >>> bounds("日本語のテキスト")  # 8 characters of 3 bytes
    Bounds(low=2, high=12)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tiergate.ledger import ModelFacts

_WHITESPACE = b" \t\n\r\x0b\x0c"
_PUNCTUATION = bytes(b for b in range(0x21, 0x7F) if not chr(b).isalnum())
_TWO_BYTE_LEADS = bytes(range(0xC0, 0xE0))
_THREE_BYTE_LEADS = bytes(range(0xE0, 0xF0))
_FOUR_BYTE_LEADS = bytes(range(0xF0, 0xF8))
_CONTINUATIONS = bytes(range(0x80, 0xC0))


@dataclass(frozen=True)
class Bounds:
    """Token counts a text surely stays within."""

    low: int
    high: int

    def __add__(self, other: Bounds) -> Bounds:
        return Bounds(self.low + other.low, self.high + other.high)


_REMEMBERED_CHARS = 2048
"""Texts up to this long are counted once: instructions, label lists and output schemas come
back call after call (4,096 of them hold at most 8 MB)."""


def bounds(text: str) -> Bounds:
    """Low and high token counts of ``text`` at the 4.6 models' tokenizer rates."""
    if len(text) <= _REMEMBERED_CHARS:
        return _remembered(text)
    return _count(text)


@functools.lru_cache(maxsize=4096)
def _remembered(text: str) -> Bounds:
    return _count(text)


def _count(text: str) -> Bounds:
    data = text.encode("utf-8", "surrogatepass")

    def count(members: bytes) -> int:
        return len(data) - len(data.translate(None, members))

    spaces, punctuation = count(_WHITESPACE), count(_PUNCTUATION)
    two, three, four = count(_TWO_BYTE_LEADS), count(_THREE_BYTE_LEADS), count(_FOUR_BYTE_LEADS)
    plain = len(data) - count(_CONTINUATIONS) - two - three - four - punctuation
    # In twelfths of a token, so the rates stay integers.
    twelfths = (plain * 12 * 2) // 5 + 12 * punctuation + 12 * two + 18 * three + 48 * four
    low = (plain - spaces + punctuation) // 16 + two // 8 + three // 4 + four // 2
    return Bounds(low=low, high=-(-twelfths // 12))


def scaled_high(tokens: int, facts: ModelFacts) -> int:
    """A high count at the 4.6 rates, on ``facts.model``'s tokenizer."""
    return -(-tokens * facts.tokenizer_percent // 100)
