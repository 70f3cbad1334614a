"""How the CLI prints a response: aligned text for people, every field as JSON for scripts.

JSON shows every field, zero and false values included; text leaves out the fields the request
did not ask for (``confidence`` without ``--confidence``) and says when the answer came from
the response cache. In JSON, 64-bit integers are numbers when
they fit a double exactly (|n| <= 2**53) and strings beyond it, as protobuf's JSON mapping writes
them; whole numbers inside Extract's data print as integers (``34``, not ``34.0``).

    print(text(response))
    print(json.dumps(as_json(response), indent=2))
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tiergate.ledger import dollars
from tiergate.v1 import usage_pb2

__all__ = ["as_json", "dollars", "render_cost", "render_usage", "scalar", "table", "text"]

_SAFE_INTEGER = 2**53
_INT64 = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
_STRUCT = "google.protobuf.Struct"
_NONE = "(none)"


# --- JSON ------------------------------------------------------------------------------------


def as_json(message: Message) -> dict[str, Any]:
    """Every field of ``message`` (defaults included, unset messages as null), int64 as
    numbers where exact."""
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _numbers(message.DESCRIPTOR, data)


# Descriptors are typed as Any: the stubs give the pure-Python and the upb classes as a union.
def _numbers(descriptor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in the proto's field order, int64 as numbers where exact."""
    ordered: dict[str, Any] = {}
    for f in descriptor.fields:
        if f.name not in data:
            ordered[f.name] = None  # an unset message field: JSON null, not a missing key
            continue
        values = data[f.name] if f.is_repeated else [data[f.name]]
        converted = [_number(f, value) for value in values]
        ordered[f.name] = converted if f.is_repeated else converted[0]
    return ordered


def _number(f: Any, value: Any) -> Any:
    if f.cpp_type in _INT64 and isinstance(value, str) and abs(int(value)) <= _SAFE_INTEGER:
        return int(value)
    if f.message_type is not None and f.message_type.full_name == _STRUCT:
        return whole_numbers(value)
    if f.message_type is not None and isinstance(value, dict):
        return _numbers(f.message_type, value)
    return value


def whole_numbers(value: Any) -> Any:
    """JSON data with whole floats as ints (a Struct stores every number as a double) and
    object keys sorted (a Struct keeps no order)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _SAFE_INTEGER:
        return int(value)
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: whole_numbers(value[key]) for key in sorted(value)}
    return value


# --- text ------------------------------------------------------------------------------------

Row = tuple[str, str]


# A response field the request asks for by a switch of another name than ``include_<field>``.
_ASKED_BY = {"labels": "multi_label"}


def text(response: Message, *, request: Message | None = None) -> str:
    """Every field but usage as aligned ``name  value`` rows, then the usage and cost lines;
    with ``request``, without the fields it did not ask for (its ``include_<field>`` or
    ``multi_label`` switch is off)."""
    data = as_json(response)
    rows: list[Row] = []
    for f in response.DESCRIPTOR.fields:
        if f.name != "usage" and asked_for(f.name, request):
            rows.extend(_titled(f.name, _field_lines(f, data[f.name], request)))
    usage: usage_pb2.Usage = getattr(response, "usage")  # noqa: B009  (every response has one)
    rows += [("usage", render_usage(usage)), ("cost", render_cost(usage.cost, usage=usage))]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {line}".rstrip() for name, line in rows)


def asked_for(name: str, request: Message | None) -> bool:
    """Whether a response field is wanted: always, unless the request has a switch that asks
    for it and leaves it off."""
    if request is None:
        return True
    switch = _ASKED_BY.get(name, f"include_{name}")
    if switch not in request.DESCRIPTOR.fields_by_name:
        return True
    return bool(getattr(request, switch))


def _titled(name: str, lines: list[str]) -> list[Row]:
    return [(name if i == 0 else "", line) for i, line in enumerate(lines)]


def _field_lines(f: Any, value: Any, request: Message | None = None) -> list[str]:
    if value is None:
        return [_NONE]
    if f.message_type is not None and f.message_type.full_name == _STRUCT:
        return _tree(value) or ["{}"]
    if f.is_repeated and f.message_type is not None:
        # A column the request did not ask for (Moderate's rationale) is left out too.
        columns = [sub.name for sub in f.message_type.fields if asked_for(sub.name, request)]
        return table(value, columns) if value else [_NONE]
    if f.is_repeated:
        return [line for item in value for line in _bullet(scalar(item))] or [_NONE]
    return scalar(value).splitlines() or ['""']


def _bullet(value: str) -> list[str]:
    lines = value.splitlines() or [""]
    return [f"- {lines[0]}", *(f"  {line}" for line in lines[1:])]


def scalar(value: Any) -> str:
    """A JSON scalar as a person reads it: true/false, whole numbers without '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value else '""'
    if value is None:
        return "null"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Rows of a repeated message as a table with a header; the last column is not padded."""
    cells = [columns] + [[" ".join(scalar(row[c]).split()) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        for line in cells
    ]


def _tree(value: Any, indent: str = "") -> list[str]:
    """JSON data as indented lines: objects as aligned ``key  value``, lists as ``- item``."""
    if isinstance(value, dict):
        if not value:
            return [f"{indent}{{}}"]
        width = max(len(key) for key in value)
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}{key}")
                lines.extend(_tree(item, indent + "  "))
            else:
                lines.append(f"{indent}{key:<{width}}  {_leaf(item)}")
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{indent}[]"]
        lines = []
        for item in value:
            nested = _tree(item, indent + "  ")
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{indent}- {_leaf(item)}")
        return lines
    return [f"{indent}{_leaf(value)}"]


def _leaf(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    if isinstance(value, str) and "\n" in value:
        return json.dumps(value, ensure_ascii=False)
    return scalar(value)


# --- usage and cost --------------------------------------------------------------------------


FROM_CACHE = "answered from the response cache, no model call"


def render_usage(usage: usage_pb2.Usage) -> str:
    tier = usage_pb2.Tier.Name(usage.tier).removeprefix("TIER_").lower()
    if usage.from_cache:
        return f"{usage.model} ({tier}): {FROM_CACHE}"
    return (
        f"{usage.model} ({tier}): {usage.input_tokens} input, "
        f"{usage.cache_creation_input_tokens} cache write, "
        f"{usage.cache_read_input_tokens} cache read, {usage.output_tokens} output tokens"
    )


def render_cost(cost: usage_pb2.Cost, *, usage: usage_pb2.Usage | None = None) -> str:
    if usage is not None and usage.from_cache:
        return f"{dollars(cost.total_nanos)} (the response cache charges nothing)"
    parts = [
        f"input {dollars(cost.input_nanos)}",
        f"cache write {dollars(cost.cache_write_nanos)}",
        f"cache read {dollars(cost.cache_read_nanos)}",
        f"output {dollars(cost.output_nanos)}",
    ]
    saved = f", cache saved {dollars(cost.cache_savings_nanos)}" if cost.cache_savings_nanos else ""
    return f"{dollars(cost.total_nanos)} ({', '.join(parts)}){saved}"
