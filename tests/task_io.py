"""What the per-task unit tests share: run a task's parts in process over hand-written outputs.

violations(classify.validate, request)   # {"labels[1].name": "duplicates labels[0].name"}
schema_errors(prompt.output_schema, {"label": "nope", ...})
message('{"label": "billing"}')          # an anthropic Message as the API would send it
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from anthropic.types import Message, TextBlock, ThinkingBlock, Usage

from tiergate.calls.prompt import JsonObject
from tiergate.errors import InvalidRequest
from tiergate.v1 import usage_pb2

USAGE = usage_pb2.Usage(model="claude-haiku-4-5", input_tokens=120, output_tokens=30)
"""Any usage: respond passes it through untouched."""


def violations(validate: Callable[[Any], None], request: Any) -> dict[str, str]:
    """Every field violation ``validate`` raises for ``request``, field -> description."""
    with pytest.raises(InvalidRequest) as raised:
        validate(request)
    found = {v.field: v.description for v in raised.value.violations}
    assert len(found) == len(raised.value.violations), "one violation per field"
    return found


def schema_errors(schema: JsonObject, output: Any) -> list[str]:
    """Where ``output`` breaks ``schema``, as the model client checks it (empty when valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(e.json_path for e in validator.iter_errors(output))


def message(
    text: str | None,
    *,
    stop_reason: str = "end_turn",
    thinking: str | None = None,
) -> Message:
    """A Messages API response: an optional thinking block, then ``text`` (if any)."""
    content: list[Any] = []
    if thinking is not None:
        content.append(ThinkingBlock(type="thinking", thinking=thinking, signature="sig"))
    if text is not None:
        content.append(TextBlock(type="text", text=text))
    return Message(
        id="msg_test",
        type="message",
        role="assistant",
        model="claude-haiku-4-5",
        content=content,
        stop_reason=stop_reason,  # type: ignore[arg-type]  # a str from the test's own list
        stop_sequence=None,
        usage=Usage(input_tokens=10, output_tokens=5),
    )


def as_text(output: JsonObject) -> str:
    return json.dumps(output)
