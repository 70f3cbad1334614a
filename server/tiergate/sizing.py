"""Whether a prompt fits the model's context window, for text in any script, and which request
field to name when it does not.

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

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from tiergate.errors import FieldViolation, RequestTooLarge
from tiergate.ledger import ModelFacts

if TYPE_CHECKING:
    from tiergate.prompt import Prompt

API_ALLOWANCE_TOKENS = 1024
"""Tokens the API may add around our prompt (structured-output instructions, message framing)."""

_WHITESPACE = b" \t\n\r\x0b\x0c"
_PUNCTUATION = bytes(b for b in range(0x21, 0x7F) if not chr(b).isalnum())
_TWO_BYTE_LEADS = bytes(range(0xC0, 0xE0))
_THREE_BYTE_LEADS = bytes(range(0xE0, 0xF0))
_FOUR_BYTE_LEADS = bytes(range(0xF0, 0xF8))
_CONTINUATIONS = bytes(range(0x80, 0xC0))
# No character class costs more than 1 token per UTF-8 byte at the high rate.
_MAX_HIGH_TOKENS_PER_CHAR = 4


@dataclass(frozen=True)
class Bounds:
    """Token counts a text surely stays within."""

    low: int
    high: int

    def __add__(self, other: Bounds) -> Bounds:
        return Bounds(self.low + other.low, self.high + other.high)


def bounds(text: str) -> Bounds:
    """Low and high token counts of ``text`` at the 4.6 models' tokenizer rates."""
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


def prompt_bounds(prompt: Prompt, facts: ModelFacts) -> Bounds:
    """Token bounds of everything ``prompt`` sends on ``facts.model``, output schema included."""
    from tiergate.prompt import canonical_json

    parts = (prompt.instructions, *prompt.context, prompt.request)
    raw = sum((bounds(part) for part in parts), bounds(canonical_json(prompt.output_schema)))
    return Bounds(raw.low, scaled_high(raw.high, facts) + API_ALLOWANCE_TOKENS)


def scaled_high(tokens: int, facts: ModelFacts) -> int:
    """A high count at the 4.6 rates, on ``facts.model``'s tokenizer."""
    return -(-tokens * facts.tokenizer_percent // 100)


class Fit(enum.Enum):
    """What the estimate says about a prompt and the model's window."""

    FITS = "fits"
    TOO_LARGE = "too large"
    UNSURE = "unsure"


def room(facts: ModelFacts, max_tokens: int) -> int:
    """Prompt tokens the model takes besides an answer of ``max_tokens``."""
    return facts.context_window_tokens - max_tokens


def assess(prompt: Prompt, facts: ModelFacts) -> Fit:
    """Fits, too large, or unsure (then ask ``count_tokens``); cheap for short prompts."""
    space = room(facts, prompt.max_tokens)
    chars = sum(map(len, (prompt.instructions, *prompt.context, prompt.request)))
    # Short prompts (most calls) fit by their length alone: no class counts needed.
    ceiling = scaled_high(chars * _MAX_HIGH_TOKENS_PER_CHAR, facts) + API_ALLOWANCE_TOKENS
    if ceiling + len(str(prompt.output_schema)) * _MAX_HIGH_TOKENS_PER_CHAR <= space:
        return Fit.FITS
    estimate = prompt_bounds(prompt, facts)
    if estimate.high <= space:
        return Fit.FITS
    if estimate.low > space:
        return Fit.TOO_LARGE
    return Fit.UNSURE


def too_large(
    request: Message, facts: ModelFacts, max_tokens: int, *, tokens: int, counted: bool
) -> RequestTooLarge:
    """The refusal, naming the request field that contributes most to the prompt."""
    how = "counts" if counted else "is at least"
    return RequestTooLarge(
        [
            FieldViolation(
                largest_field(request),
                f"the prompt {how} {tokens} tokens; {facts.model} takes at most"
                f" {room(facts, max_tokens)} besides the answer (context window"
                f" {facts.context_window_tokens})",
            )
        ]
    )


def largest_field(request: Message) -> str:
    """The path of the request field that weighs most in tokens, e.g. ``context`` or
    ``documents[3].text``; a repeated or nested field is named whole unless one element holds
    more than half of it."""
    path = ""
    node = _weigh(request, "")
    while node.children:
        heaviest = max(node.children, key=lambda child: child.weight)
        if path and heaviest.weight * 2 <= node.weight:
            break
        node, path = heaviest, heaviest.path
    return path or "request"


@dataclass(frozen=True)
class _Node:
    path: str
    weight: int
    children: tuple[_Node, ...] = ()


def _weigh(message: Message, prefix: str) -> _Node:
    children = []
    for field, value in message.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.is_repeated:
            items = tuple(_weigh_value(item, f"{path}[{i}]") for i, item in enumerate(value))
            children.append(_Node(path, sum(item.weight for item in items), items))
        else:
            children.append(_weigh_value(value, path))
    return _Node(prefix, sum(child.weight for child in children), tuple(children))


def _weigh_value(value: object, path: str) -> _Node:
    if isinstance(value, Message):
        return _weigh(value, path)
    if isinstance(value, str):
        return _Node(path, bounds(value).high)
    return _Node(path, 0)
