"""References and patterns anywhere in a caller's schema, checked before anything uses them.

Every subschema counts, also those structured outputs never see (``not``, ``if``, unused
``$defs``), because the output is validated against all of them:

- a ``$ref`` is a JSON pointer into the document itself (``#/$defs/address``); a remote one is
  refused, never fetched; it must resolve, and no chain of references may come back to where
  it started (recursion);
- ``$id`` below the root, ``$anchor`` references, ``$dynamicRef`` and ``$recursiveRef`` are
  refused: references resolve against the document and nothing else;
- every pattern compiles on RE2 (linear time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from tiergate.schema.limits import MAX_JSON_NESTING, SchemaRefused, child
from tiergate.schema.patterns import PatternError, compiled

SCHEMA_VALUED = (
    "additionalProperties",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAPS = (
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
)


def subschemas(node: dict[str, Any], pointer: str) -> Iterator[tuple[str, Any]]:
    """Every direct subschema of ``node``, with its pointer, in document order."""
    for key, value in node.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                if isinstance(sub, dict | bool):
                    yield child(pointer, key, name), sub
        elif (key in SCHEMA_LISTS or key == "items") and isinstance(value, list):
            for i, sub in enumerate(value):
                yield child(pointer, key, i), sub
        elif (key in SCHEMA_VALUED or key == "items") and isinstance(value, dict | bool):
            yield child(pointer, key), value


def resolve(root: Any, ref: str, pointer: str) -> tuple[str, Any]:
    """The pointer and subschema ``ref`` names; refused unless it is inside the document."""
    if not ref.startswith("#"):
        raise SchemaRefused(
            pointer, "$ref points outside the document; remote schemas are never fetched"
        )
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        raise SchemaRefused(pointer, "$ref to an anchor; use a JSON pointer such as #/$defs/name")
    node: Any = root
    target = ""
    for token in fragment.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise SchemaRefused(pointer, "$ref does not resolve to anything in the document")
        target = child(target, key)
    if not isinstance(node, dict | bool):
        raise SchemaRefused(pointer, "$ref resolves to something that is not a schema")
    return target, node


class _Audit:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.clean: set[str] = set()
        self.pattern_properties = False
        self.unevaluated: str | None = None

    def walk(self, node: Any, pointer: str, stack: tuple[str, ...]) -> None:
        if not isinstance(node, dict) or pointer in self.clean:
            return
        if len(stack) > 2 * MAX_JSON_NESTING:
            raise SchemaRefused(pointer, "$ref chains nest too deeply")
        stack = (*stack, pointer)
        self.keywords(node, pointer)
        ref = node.get("$ref")
        if isinstance(ref, str):
            target, sub = resolve(self.root, ref, pointer)
            if target in stack:
                raise SchemaRefused(
                    pointer, "$ref makes the schema recursive; structured outputs take no recursion"
                )
            self.walk(sub, target, stack)
        for sub_pointer, sub in subschemas(node, pointer):
            self.walk(sub, sub_pointer, stack)
        self.clean.add(pointer)

    def keywords(self, node: dict[str, Any], pointer: str) -> None:
        if pointer and "$id" in node:
            raise SchemaRefused(child(pointer, "$id"), "$id below the root is not supported")
        for key in ("$dynamicRef", "$recursiveRef"):
            if key in node:
                raise SchemaRefused(child(pointer, key), f"{key} is not supported")
        if isinstance(node.get("pattern"), str):
            _compiles(node["pattern"], child(pointer, "pattern"))
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict):
            self.pattern_properties = True
            for key in patterns:
                _compiles(key, child(pointer, "patternProperties", key))
        if "unevaluatedProperties" in node and self.unevaluated is None:
            self.unevaluated = child(pointer, "unevaluatedProperties")


def _compiles(pattern: str, pointer: str) -> None:
    try:
        compiled(pattern)
    except PatternError:
        raise SchemaRefused(
            pointer,
            "pattern cannot run in linear time (lookaround, backreferences or too large)",
        ) from None


def audit(root: dict[str, Any]) -> None:
    """Refuse the first bad reference or pattern anywhere in ``root``."""
    checked = _Audit(root)
    checked.walk(root, "", ())
    if checked.pattern_properties and checked.unevaluated is not None:
        # jsonschema matches patternProperties with Python's re while evaluating it.
        raise SchemaRefused(
            checked.unevaluated, "unevaluatedProperties together with patternProperties"
        )
