"""Lowering a hand-written caller schema, for the lowering tests: the wire schema, the refusal,
and wire objects and map entries as lowering writes them."""

from __future__ import annotations

from typing import Any

import pytest

from tiergate.schema.limits import SchemaRefused
from tiergate.schema.lowering import lower

JsonObject = dict[str, Any]


def lowered(schema: Any, *, draft7: bool = False) -> tuple[JsonObject, Any, list[str], int]:
    return lower(schema, draft7=draft7)


def wire_of(schema: Any, *, draft7: bool = False) -> JsonObject:
    return lower(schema, draft7=draft7)[0]


def refusal(schema: Any, *, draft7: bool = False) -> SchemaRefused:
    with pytest.raises(SchemaRefused) as caught:
        lower(schema, draft7=draft7)
    return caught.value


def obj(properties: JsonObject, required: list[str] | None = None, /, **more: Any) -> JsonObject:
    return {"type": "object", "properties": properties, "required": required or [], **more}


def closed(properties: JsonObject, required: list[str], /, **more: Any) -> JsonObject:
    """A wire object as lowering writes it."""
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **more,
    }


def entries_of(value: JsonObject, key: JsonObject | None = None) -> JsonObject:
    """The wire array that carries an open map's other keys."""
    return {
        "type": "array",
        "items": closed({"key": key or {"type": "string"}, "value": value}, ["key", "value"]),
        "description": "The object's other properties: one {key, value} entry per property.",
    }


ANY: JsonObject = {"type": ["string", "number", "boolean", "null"]}
NOTE = "Rules checked after answering: "
