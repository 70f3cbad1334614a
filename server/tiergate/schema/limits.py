"""The bounds a caller's schema must keep, and how a refusal names where it broke one.

A refusal is an ``InvalidRequest`` with one ``BadRequest`` violation whose field is
``json_schema`` plus the JSON pointer of the construct (``json_schema/properties/tree``) and
whose description names the construct; it never quotes the schema's text.
"""

from __future__ import annotations

import re
from itertools import accumulate

from tiergate.errors import FieldViolation, InvalidRequest

FIELD = "json_schema"

MAX_SCHEMA_BYTES = 64 * 1024
"""The caller's schema text, in UTF-8 bytes."""
MAX_JSON_NESTING = 96
"""Arrays and objects inside each other in the schema text, checked before parsing."""
MAX_DATA_DEPTH = 20
"""Objects and arrays inside each other in the output. protobuf's Struct costs three message
levels per object and parsers stop near 100, so about 33 object levels fail to decode."""
MAX_OPTIONAL_PROPERTIES = 24
"""Structured outputs: properties not in ``required``, across the whole schema."""
MAX_UNION_TYPES = 16
"""Structured outputs: schemas with ``anyOf`` or a list of types, across the whole schema."""
MAX_LOWERED_SCHEMAS = 10_000
"""Subschemas lowered (each inlined ``$ref`` anew): bounds the work of diamond references."""
MAX_WIRE_BYTES = 128 * 1024
"""The schema sent upstream, once every ``$ref`` is inlined."""
MAX_POINTER_CHARS = 240
"""A violation's field path, so error details stay far below gRPC's trailer limit."""

TEN_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
"""The string formats structured outputs accept."""


class SchemaRefused(InvalidRequest):
    """The caller's schema cannot be served; ``pointer`` is where (``""`` is the root)."""

    def __init__(self, pointer: str, description: str) -> None:
        field = f"{FIELD}{pointer}"
        if len(field) > MAX_POINTER_CHARS:
            field = field[: MAX_POINTER_CHARS - 3] + "..."
        super().__init__([FieldViolation(field, description)])
        self.pointer = pointer
        self.description = description


def child(pointer: str, *tokens: str | int) -> str:
    """``pointer`` extended by ``tokens``, escaped as RFC 6901 says."""
    escaped = (str(t).replace("~", "~0").replace("/", "~1") for t in tokens)
    return pointer + "".join(f"/{token}" for token in escaped)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def check_text(raw: str) -> None:
    """Refuse text too large or nested too deeply to parse safely; cheap, and before parsing."""
    if not raw.strip():
        raise SchemaRefused("", "must be a JSON Schema document describing an object")
    # A character takes at least one UTF-8 byte: most oversized texts are refused unencoded.
    if len(raw) > MAX_SCHEMA_BYTES or len(raw.encode()) > MAX_SCHEMA_BYTES:
        raise SchemaRefused("", f"must be at most {MAX_SCHEMA_BYTES} bytes")
    brackets = _BRACKETS.findall(_STRING.sub("", raw))
    if max(accumulate(_STEP[b] for b in brackets), default=0) > MAX_JSON_NESTING:
        raise SchemaRefused("", f"nests arrays and objects more than {MAX_JSON_NESTING} deep")
