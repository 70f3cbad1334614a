"""How a rule the wire schema cannot carry reads in a description, and in a problem.

The model still sees every dropped rule as text (``"Rules checked after answering: at least
0; at most 100."``); the same phrases name a broken rule when the output is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jsonschema.exceptions import ValidationError


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# How a dropped rule reads in a description: the model still sees it.
RULES: dict[str, Callable[[Any], str]] = {
    "minimum": lambda v: f"at least {v}",
    "maximum": lambda v: f"at most {v}",
    "exclusiveMinimum": lambda v: f"greater than {v}",
    "exclusiveMaximum": lambda v: f"less than {v}",
    "multipleOf": lambda v: f"a multiple of {v}",
    "minLength": lambda v: f"at least {v} characters",
    "maxLength": lambda v: f"at most {v} characters",
    "pattern": lambda v: f"matches the regular expression {v}",
    "format": lambda v: f"in {v} format",
    "minItems": lambda v: f"at least {v} items",
    "maxItems": lambda v: f"at most {v} items",
    "uniqueItems": lambda v: "no item repeated" if v else "",
    "contains": lambda v: f"at least one item matching {text(v)}",
    "minContains": lambda v: f"at least {v} items matching contains",
    "maxContains": lambda v: f"at most {v} items matching contains",
    "minProperties": lambda v: f"at least {v} properties",
    "maxProperties": lambda v: f"at most {v} properties",
    "propertyNames": lambda v: f"property names matching {text(v)}",
    "dependentRequired": lambda v: f"when a property is present, also these: {text(v)}",
    "dependentSchemas": lambda v: f"when a property is present, also matches: {text(v)}",
    "dependencies": lambda v: f"when a property is present, also: {text(v)}",
    "not": lambda v: f"does not match {text(v)}",
    "if": lambda v: f"if it matches {text(v)}",
    "then": lambda v: f"then it matches {text(v)}",
    "else": lambda v: f"otherwise it matches {text(v)}",
    "prefixItems": lambda v: f"item by position: {text(v)}",
    "oneOf": lambda v: f"matches exactly one of {text(v)}",
    "anyOf": lambda v: f"matches at least one of {text(v)}",
    "contentEncoding": lambda v: f"encoded as {v}",
    "contentMediaType": lambda v: f"of media type {v}",
}


def problem(error: ValidationError, declared: frozenset[str]) -> str:
    """A broken rule named by JSON path, without quoting the output or the caller's text."""
    path = _path(error.absolute_path, declared)
    rule = str(error.validator)
    value = error.validator_value
    if rule == "required" and isinstance(error.instance, dict):
        names = value if isinstance(value, list) else []
        missing = [n for n in names if n not in error.instance]
        # One error per missing name, and only its message (jsonschema's words) says which.
        named = [n for n in missing if error.message == f"{n!r} is a required property"]
        name = _path((named or missing)[:1], declared)[1:]
        return f"{path}{name}: is required"
    # A rule whose value is a subschema (or list of them) has no short text; "pattern" and
    # "not" would quote the caller's schema, "contains": true says nothing.
    if rule in RULES and rule not in ("pattern", "not", "contains"):
        text = RULES[rule](value) if not isinstance(value, dict | list) else ""
        if text:
            return f"{path}: breaks {rule} ({text})"
    phrases = {
        "type": f"must be of type {value}" if isinstance(value, str) else "has the wrong type",
        "enum": "must be one of the allowed values",
        "const": "must be the constant value",
        "pattern": "must match the pattern",
        "additionalProperties": "has a property the schema does not allow",
        "oneOf": "must match exactly one alternative",
        "anyOf": "must match one of the alternatives",
        "not": "matches what the schema forbids",
    }
    return f"{path}: {phrases.get(rule, f'breaks the {rule} rule')}"


def _path(parts: Any, declared: frozenset[str]) -> str:
    rendered = "$"
    for part in parts:
        if isinstance(part, int):
            rendered += f"[{part}]"
        elif part in declared and part.isidentifier():
            rendered += f".{part}"
        elif part in declared:
            rendered += f"[{json.dumps(part)}]"
        else:
            rendered += "[*]"  # a key the output chose: not quoted
    return rendered
