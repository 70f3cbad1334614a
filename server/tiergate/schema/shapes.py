"""Shapes: how an output of the wire schema turns back into the caller's shape.

Lowering changes a shape in two ways: an open map becomes an array of ``{key, value}``
entries under one more property, and an optional property past the API's limit becomes
required and nullable (``null`` meaning absent). :func:`decode` undoes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema.protocols import Validator


@dataclass(frozen=True)
class Shape:
    """How a value of the wire schema turns back into the caller's shape (None: as it is)."""

    properties: Mapping[str, Shape | None] = field(default_factory=dict)
    items: Shape | None = None
    entries: str | None = None
    """The wire property holding a map's ``{key, value}`` entries."""
    entry_value: Shape | None = None
    nulls_absent: frozenset[str] = frozenset()
    """Properties made required and nullable: ``null`` means the caller's property is absent."""
    branches: tuple[tuple[Validator, Shape | None], ...] = ()
    """``anyOf``: decode as the first branch whose wire schema accepts the value."""


def decode(shape: Shape | None, value: Any) -> Any:
    """``value`` (valid against the wire schema) in the caller's shape."""
    if shape is None:
        return value
    if shape.branches:
        for wire, branch in shape.branches:
            if wire.is_valid(value):
                return decode(branch, value)
        return value
    if isinstance(value, list):
        return [decode(shape.items, item) for item in value]
    if not isinstance(value, dict):
        return value
    decoded = {
        key: decode(shape.properties.get(key), item)
        for key, item in value.items()
        if key != shape.entries and not (key in shape.nulls_absent and item is None)
    }
    entries = value.get(shape.entries) if shape.entries else None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            decoded.setdefault(entry["key"], decode(shape.entry_value, entry.get("value")))
    return decoded
