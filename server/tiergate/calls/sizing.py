"""Whether a prompt fits the model's context window, by the bounds of
:mod:`tiergate.calls.estimate`, and which request field to name when it does not.

A prompt whose high count fits is sent; one whose low count does not fit is refused before any
call; in between, the free ``count_tokens`` endpoint decides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from google.protobuf.message import Message

from tiergate.calls.estimate import Bounds as Bounds
from tiergate.calls.estimate import bounds as bounds
from tiergate.calls.estimate import scaled_high as scaled_high
from tiergate.calls.prompt import Prompt, canonical_json
from tiergate.errors import FieldViolation, RequestTooLarge
from tiergate.ledger import ModelFacts

API_ALLOWANCE_TOKENS = 1024
"""Tokens the API may add around our prompt (structured-output instructions, message framing)."""

# No character class costs more than 1 token per UTF-8 byte at the high rate.
_MAX_HIGH_TOKENS_PER_CHAR = 4


def prompt_bounds(prompt: Prompt, facts: ModelFacts) -> Bounds:
    """Token bounds of everything ``prompt`` sends on ``facts.model``, output schema included."""
    parts = (prompt.instructions, *prompt.context, prompt.request)
    raw = sum((bounds(part) for part in parts), bounds(canonical_json(prompt.output_schema)))
    # Files count by their own rules (image tokens do not grow with the tokenizer).
    files = sum((attachment.tokens for attachment in prompt.attachments), Bounds(0, 0))
    return Bounds(
        raw.low + files.low, scaled_high(raw.high, facts) + files.high + API_ALLOWANCE_TOKENS
    )


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
    ceiling += sum(attachment.tokens.high for attachment in prompt.attachments)
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
