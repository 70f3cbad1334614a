"""Calling the emulator from tests: the real SDK, raw HTTP, and small schema builders."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anthropic
import jsonschema
from anthropic.types import Message, MessageParam, TextBlock

SONNET = "claude-sonnet-4-6"
QUESTION: list[MessageParam] = [{"role": "user", "content": "What is the refund window for shoes?"}]


def ask(client: anthropic.Anthropic, **params: Any) -> Message:
    params.setdefault("model", SONNET)
    params.setdefault("max_tokens", 400)
    params.setdefault("messages", QUESTION)
    message: Message = client.messages.create(**params)
    return message


def text_of(message: Message) -> str:
    block = message.content[0]
    assert isinstance(block, TextBlock)
    return block.text


def structured(client: anthropic.Anthropic, schema: dict[str, Any], **params: Any) -> Any:
    """Ask with a json_schema output format; return the parsed JSON after validating it."""
    config = {"format": {"type": "json_schema", "schema": schema}}
    message = ask(client, output_config=config, **params)
    assert message.stop_reason == "end_turn"
    value = json.loads(text_of(message))
    jsonschema.validate(value, schema)
    return value


def http(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A raw HTTP call (POST when there is a body) returning status and parsed JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={**(headers or {})})
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }
