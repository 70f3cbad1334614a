"""What an upstream answer must be before anything is billed from it.

The SDK builds a ``Message`` from whatever JSON a 200 carries without checking it (and hands
back the text of a body that is not JSON), so a broken proxy, a buggy endpoint or a cut
connection could put a negative, fractional or absurd token count into a caller's Usage, a
budget, a span or a metric. Every answer passes :func:`checked_bill` first: it is a
``message`` with content, a model and a ``usage`` whose counts are non-negative integers that
fit the model (no count, and not their sum, beyond its context window plus its largest
output), and whose id, model and geo are text (:func:`is_text`). Anything else is
:class:`InvalidAnswer`: the upstream's fault, retried like a 5xx and never billed from.

    message, tokens = checked_bill(found, facts)
"""

from __future__ import annotations

from typing import Any

from anthropic.types import Message

from tiergate.ledger import ModelFacts, TokenUsage


class InvalidAnswer(Exception):
    """The upstream answered 200 with something that cannot be a Messages API bill; the
    message names what was wrong, never the body's content."""


def is_text(value: str) -> bool:
    """Whether ``value`` is text UTF-8 can carry: JSON may escape half a surrogate pair
    (``\\ud800``), which decodes to a string that no reply (protobuf strings are UTF-8), log
    line or span attribute can hold."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _count(usage: Any, name: str, *, optional: bool = False) -> int:
    value = getattr(usage, name, None)
    if value is None and optional:
        return 0
    # bool is an int in Python; JSON true is no token count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAnswer(f"usage.{name} is not an integer")
    if value < 0:
        raise InvalidAnswer(f"usage.{name} is negative")
    return value


def checked_bill(found: object, facts: ModelFacts) -> tuple[Message, TokenUsage]:
    """``found`` (what the SDK returned for a 200) as a message and its bill, or
    :class:`InvalidAnswer`."""
    if not isinstance(found, Message):
        raise InvalidAnswer("the body is not a JSON object")
    if getattr(found, "type", None) != "message":
        raise InvalidAnswer("the body's type is not 'message'")
    content = getattr(found, "content", None)
    if not isinstance(content, list):
        raise InvalidAnswer("the message has no content list")
    if not all(isinstance(getattr(block, "type", None), str) for block in content):
        raise InvalidAnswer("a content block has no type")
    if not isinstance(getattr(found, "model", None), str) or not is_text(found.model):
        raise InvalidAnswer("the message names no model")
    if not isinstance(getattr(found, "id", None), str) or not is_text(found.id):
        raise InvalidAnswer("the message has no id")
    usage = getattr(found, "usage", None)
    if usage is None or isinstance(usage, dict | list | str | int | float):
        raise InvalidAnswer("the message has no usage")
    input_tokens = _count(usage, "input_tokens")
    output_tokens = _count(usage, "output_tokens")
    created = _count(usage, "cache_creation_input_tokens", optional=True)
    read = _count(usage, "cache_read_input_tokens", optional=True)
    split = getattr(usage, "cache_creation", None)
    write_1h = _count(split, "ephemeral_1h_input_tokens", optional=True) if split else 0
    if write_1h > created:
        raise InvalidAnswer("usage.cache_creation says more was written than in total")
    geo = getattr(usage, "inference_geo", None)
    if geo is not None and not (isinstance(geo, str) and is_text(geo)):
        raise InvalidAnswer("usage.inference_geo is not a string")
    most = facts.context_window_tokens + facts.max_output_tokens
    if input_tokens + created + read + output_tokens > most:
        raise InvalidAnswer(f"usage counts more tokens than {facts.model} can take ({most})")
    tokens = TokenUsage(
        input_tokens=input_tokens,
        cache_write_5m_tokens=created - write_1h,
        cache_write_1h_tokens=write_1h,
        cache_read_tokens=read,
        output_tokens=output_tokens,
        inference_geo=geo or "",
    )
    return found, tokens
