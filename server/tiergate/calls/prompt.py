"""Prompt layout for prompt caching, shared by every task.

The Messages API caches prefixes matched byte-exactly in the order tools -> system -> messages.
A task therefore hands over three parts and this module owns their order:

1. ``instructions``: the task's fixed text, identical for every caller (first system block,
   breakpoint 1);
2. ``context``: the caller's stable context (labels, examples, policy, schema, documents),
   serialized deterministically (following system blocks, breakpoint 2 on the last one);
3. ``request``: the per-request text, alone in the user message, after the last breakpoint,
   so it is never part of a cached prefix.

A task that sends files (Read) puts them first in the user message, as ``attachments``, with a
breakpoint on the last file, then its request text. The output schema heads every prefix, so a
document read again with the same schema reads it from the cache; read with several schemas, it
is written once per schema (the API cannot share a prefix that follows a different schema).

The output schema travels in ``output_config``, depends on stable parts only, and heads the
cached prefix (changing it invalidates the cache). A breakpoint is placed only where the prefix
before it, schema included, can reach the model's minimum cacheable length: below it the API
caches nothing, so such a breakpoint could never pay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from tiergate.calls.estimate import Bounds, bounds, scaled_high
from tiergate.ledger import ModelFacts

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Prompt:
    """What a task asks the model, split by how it may be cached."""

    instructions: str
    """Fixed task instructions, the same bytes for every call of the task."""
    context: tuple[str, ...]
    """The caller's stable context, one block per part; may be empty."""
    request: str
    """The per-request text; never cached."""
    output_schema: JsonObject
    """JSON Schema the model's output must follow (structured outputs)."""
    max_tokens: int
    """Tight output budget for this task."""
    bare_key: str | None = None
    """When set, the model answers in plain text (no schema sent: it would cost more than the
    answer) and the text, stripped, becomes this property of the output, validated against
    ``output_schema``; on a bad answer the re-ask sends ``fallback`` with structured outputs."""
    fallback: Prompt | None = None
    """The structured-outputs prompt a bad bare answer falls back to."""
    bare_reading: Callable[[str], JsonObject] | None = None
    """How a bare answer's text becomes the whole output, for a task whose bare answer holds
    more than ``bare_key`` (an answer and its citation numbers); the schema still judges it.
    By default the text is read as ``bare_key``'s value (:mod:`tiergate.calls.bare`)."""
    attachments: tuple[Attachment, ...] = ()
    """Files (document and image blocks) sent before ``request`` in the user message."""


@dataclass(frozen=True)
class Attachment:
    """One file block of the user message and its token bounds (counted when checked)."""

    block: JsonObject
    tokens: Bounds


def render_params(prompt: Prompt, *, facts: ModelFacts, ttl: Literal["5m", "1h"]) -> dict[str, Any]:
    """The Messages API request body for ``prompt`` on ``facts.model``, laid out for caching."""
    system: list[dict[str, Any]] = [{"type": "text", "text": prompt.instructions}]
    system.extend({"type": "text", "text": part} for part in prompt.context)
    # Breakpoint 1 after the task's own instructions (shared by every caller of the task),
    # breakpoint 2 after the caller's context; lookback finds the longest one still cached.
    # Each only where its prefix can reach the minimum (estimated high: a breakpoint that
    # cannot reach it costs nothing but can never pay).
    schema = "" if prompt.bare_key else canonical_json(prompt.output_schema)
    prefix = bounds(schema).high if schema else 0
    for index, block in enumerate(system):
        prefix += bounds(block["text"]).high
        if index in (0, len(system) - 1) and (
            scaled_high(prefix, facts) >= facts.min_cacheable_tokens
        ):
            block["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    content: list[dict[str, Any]] = [dict(attachment.block) for attachment in prompt.attachments]
    if content:
        # Breakpoint 3 after the files: the same files with the same schema are read again.
        prefix += sum(attachment.tokens.high for attachment in prompt.attachments)
        if scaled_high(prefix, facts) >= facts.min_cacheable_tokens:
            content[-1]["cache_control"] = {"type": "ephemeral", "ttl": ttl}
    content.append({"type": "text", "text": prompt.request})
    params: dict[str, Any] = {
        "model": facts.model,
        "max_tokens": prompt.max_tokens,
        "system": system,
        "messages": [{"role": "user", "content": content}],
    }
    if not prompt.bare_key:
        params["output_config"] = {
            "format": {"type": "json_schema", "schema": prompt.output_schema}
        }
    return params


def section(title: str, body: str) -> str:
    """A titled block of stable context."""
    return f"<{title}>\n{body}\n</{title}>"


def items(tag: str, entries: Iterable[Mapping[str, str]], text_key: str = "text") -> str:
    """Entries as XML-ish elements: attributes in the given order, ``text_key`` as the body.

    Deterministic: the same entries give the same bytes; order is the caller's. Bodies are not
    escaped, so a quote copied from a document matches the caller's text byte for byte.
    """
    lines = []
    for entry in entries:
        attrs = "".join(
            f" {key}={quoteattr(value)}" for key, value in entry.items() if key != text_key
        )
        lines.append(f"<{tag}{attrs}>{entry.get(text_key, '')}</{tag}>")
    return "\n".join(lines)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def string_array(*, enum: Sequence[str] | None = None, min_items: int = 0) -> JsonObject:
    items_schema: JsonObject = {"type": "string"}
    if enum is not None:
        items_schema["enum"] = list(enum)
    schema: JsonObject = {"type": "array", "items": items_schema}
    if min_items:
        schema["minItems"] = min_items
    return schema


def object_schema(properties: Mapping[str, JsonObject]) -> JsonObject:
    """A closed object with every property required (what structured outputs accept)."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }
