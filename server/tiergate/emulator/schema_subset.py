"""The JSON Schema subset structured outputs accept, checked as the API checks it.

Every rule here is one the API's documentation states (structured outputs: "JSON Schema
limitations" and "Schema complexity limits", retrieved 2026-11-24). A schema outside the subset
gets a 400 naming the rule and the JSON pointer of the offending node, as the API's 400 "with
details" does. Keywords are an allowlist: anything not documented as supported is refused, so
what passes here is what the API documents it compiles.

    >>> check_schemas([("output_config.format.schema", {"type": "string", "format": "email"})])
    Complexity(optional_properties=0, union_properties=0)
    >>> check_schemas([("output_config.format.schema", {"oneOf": []})])
    Traceback (most recent call last):
    ...
    tiergate.emulator.errors.ApiError: 400 invalid_request_error: ...'oneOf' is not supported...
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, invalid_request

SUPPORTED_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
SUPPORTED_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})

_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "anyOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "format",
        "pattern",
    }
)
_ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
ALLOWED_KEYWORDS = _SCHEMA_KEYWORDS | _ANNOTATIONS
"""Every keyword a schema node may carry."""

MAX_OPTIONAL_PROPERTIES = 24
MAX_UNION_PROPERTIES = 16
TOO_COMPLEX = "Schema is too complex for compilation"

# Outside a character class: lookaround groups, backreferences (\1-\9, \k<name>) and word
# boundaries (\b, \B) are the "complex patterns" the documentation says may be refused.
_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")


@dataclass
class Complexity:
    """What the complexity limits count, summed over every schema of one request."""

    optional_properties: int = 0
    union_properties: int = 0


def _pointer(path: tuple[str, ...]) -> str:
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in path)
    return "#" + "".join(f"/{part}" for part in escaped)


def _refused(where: str, path: tuple[str, ...], problem: str) -> ApiError:
    return invalid_request(f"{where}: {problem} (at '{_pointer(path)}')")


def _is_primitive(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def complex_pattern(pattern: str) -> str | None:
    """What makes ``pattern`` complex (lookaround, backreference, word boundary), or None."""
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if not in_class and escaped in "bB":
                return "word boundaries"
            if not in_class and (escaped in "123456789" or escaped == "k"):
                return "backreferences"
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "(" and not in_class and pattern.startswith(_LOOKAROUND, i):
            return "lookaround"
        i += 1
    return None


class _Checker:
    """One schema's walk: keyword rules per node, $ref resolution and cycle detection."""

    def __init__(self, where: str, root: Any, complexity: Complexity) -> None:
        self.where = where
        self.root = root
        self.complexity = complexity
        self._entering: set[str] = set()  # $ref targets on the current expansion path
        self._done: set[str] = set()  # targets fully checked (no cycle below them)

    def fail(self, path: tuple[str, ...], problem: str) -> ApiError:
        return _refused(self.where, path, problem)

    def resolve(self, ref: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
        if not isinstance(ref, str):
            raise self.fail(path, "'$ref' must be a string")
        if not ref.startswith("#"):
            raise self.fail(path, f"remote references are not supported ({ref!r})")
        fragment = ref[1:]
        if fragment and not fragment.startswith("/"):
            raise self.fail(path, f"unresolvable reference {ref!r} (only JSON pointers)")
        target_path: tuple[str, ...] = ()
        node = self.root
        for raw in fragment.split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise self.fail(path, f"unresolvable reference {ref!r}")
            node = node[part]
            target_path += (part,)
        return target_path, node

    def walk(self, node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, bool):
            return  # true/false schemas carry no keywords to check
        if not isinstance(node, dict):
            raise self.fail(path, "a schema must be an object")
        for keyword in node:
            if keyword not in ALLOWED_KEYWORDS:
                raise self.fail(path, f"'{keyword}' is not supported")
        self._check_type(node, path)
        self._check_values(node, path)
        self._check_object(node, path)
        if "$ref" in node:
            if "allOf" in node:
                raise self.fail(path, "'allOf' cannot be combined with '$ref'")
            self._follow(node["$ref"], (*path, "$ref"))
        self._check_children(node, path)

    def _follow(self, ref: Any, path: tuple[str, ...]) -> None:
        target_path, target = self.resolve(ref, path)
        key = _pointer(target_path)
        if key in self._entering:
            raise self.fail(path, f"recursive schemas are not supported ({ref!r} refers back)")
        if key in self._done:
            return
        self._entering.add(key)
        self.walk(target, target_path)
        self._entering.discard(key)
        self._done.add(key)

    def _check_type(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        kind = node.get("type")
        if kind is None:
            return
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or any(k not in SUPPORTED_TYPES for k in kinds):
            raise self.fail(path, f"unsupported type {kind!r}")

    def _check_values(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        if "enum" in node:
            values = node["enum"]
            if not isinstance(values, list) or not values:
                raise self.fail(path, "'enum' must be a non-empty list")
            if not all(_is_primitive(v) for v in values):
                raise self.fail(path, "'enum' values must be strings, numbers, booleans or null")
        if "const" in node and not _is_primitive(node["const"]):
            raise self.fail(path, "'const' must be a string, number, boolean or null")
        if "format" in node and node["format"] not in SUPPORTED_FORMATS:
            raise self.fail(
                path,
                f"format {node['format']!r} is not supported; supported formats: "
                f"{', '.join(sorted(SUPPORTED_FORMATS))}",
            )
        if "pattern" in node:
            self._check_pattern(node["pattern"], path)
        if "minItems" in node:
            minimum = node["minItems"]
            if isinstance(minimum, bool) or minimum not in (0, 1):
                raise self.fail(path, f"'minItems' of {minimum!r} is not supported (only 0 or 1)")
        if "required" in node:
            required = node["required"]
            if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
                raise self.fail(path, "'required' must be a list of property names")

    def _check_pattern(self, pattern: Any, path: tuple[str, ...]) -> None:
        if not isinstance(pattern, str):
            raise self.fail(path, "'pattern' must be a string")
        problem = complex_pattern(pattern)
        if problem is not None:
            raise self.fail(
                path, f"pattern {pattern!r} is too complex ({problem} are not supported)"
            )
        try:
            re.compile(pattern)
        except re.error as exc:
            problem = f"pattern {pattern!r} is not a valid regular expression: {exc}"
            raise self.fail(path, problem) from exc

    def _check_object(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        kind = node.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
        is_object = is_object or "properties" in node
        if "additionalProperties" in node and node["additionalProperties"] is not False:
            raise self.fail(path, "'additionalProperties' must be false")
        if is_object and node.get("additionalProperties") is not False:
            raise self.fail(
                path, "'additionalProperties' must be explicitly set to false for object types"
            )
        properties = node.get("properties", {})
        if not isinstance(properties, dict):
            raise self.fail(path, "'properties' must be an object")
        required = set(node.get("required") or [])
        for name, sub in properties.items():
            if name not in required:
                self.complexity.optional_properties += 1
            if self._is_union(sub, (*path, "properties", name)):
                self.complexity.union_properties += 1

    def _is_union(self, node: Any, path: tuple[str, ...]) -> bool:
        if isinstance(node, dict) and "$ref" in node:
            _, node = self.resolve(node["$ref"], (*path, "$ref"))
        if not isinstance(node, dict):
            return False
        return "anyOf" in node or isinstance(node.get("type"), list)

    def _check_children(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        for key in ("properties", "$defs", "definitions"):
            children = node.get(key)
            if children is None:
                continue
            if not isinstance(children, dict):
                raise self.fail(path, f"'{key}' must be an object")
            for name, sub in children.items():
                self._walk_definition(sub, (*path, key, name), key != "properties")
        if "items" in node:
            if isinstance(node["items"], list):
                raise self.fail(path, "tuple 'items' (a list) is not supported")
            self.walk(node["items"], (*path, "items"))
        for key in ("anyOf", "allOf"):
            if key not in node:
                continue
            branches = node[key]
            if not isinstance(branches, list) or not branches:
                raise self.fail(path, f"'{key}' must be a non-empty list")
            for i, branch in enumerate(branches):
                if key == "allOf" and isinstance(branch, dict) and "$ref" in branch:
                    raise self.fail((*path, key, str(i)), "'allOf' cannot be combined with '$ref'")
                self.walk(branch, (*path, key, str(i)))

    def _walk_definition(self, node: Any, path: tuple[str, ...], definition: bool) -> None:
        if not definition:
            self.walk(node, path)
            return
        # A definition is checked once, as if reached through a $ref, so cycles are found
        # even in definitions nothing refers to.
        key = _pointer(path)
        if key in self._done or key in self._entering:
            return
        self._entering.add(key)
        self.walk(node, path)
        self._entering.discard(key)
        self._done.add(key)


def check_schema(where: str, schema: Any, complexity: Complexity) -> None:
    """Check one schema (``where`` names it in messages); add its counts to ``complexity``."""
    if not isinstance(schema, dict):
        raise invalid_request(f"{where}: must be a JSON schema object")
    _Checker(where, schema, complexity).walk(schema, ())


def check_schemas(schemas: Iterable[tuple[str, Any]]) -> Complexity:
    """Check every schema of one request, then the request-wide complexity limits."""
    complexity = Complexity()
    for where, schema in schemas:
        check_schema(where, schema, complexity)
    if complexity.optional_properties > MAX_OPTIONAL_PROPERTIES:
        raise invalid_request(
            f"{TOO_COMPLEX}: {complexity.optional_properties} optional properties across the "
            f"request's schemas (at most {MAX_OPTIONAL_PROPERTIES})"
        )
    if complexity.union_properties > MAX_UNION_PROPERTIES:
        raise invalid_request(
            f"{TOO_COMPLEX}: {complexity.union_properties} properties with union types (anyOf "
            f"or a type list) across the request's schemas (at most {MAX_UNION_PROPERTIES})"
        )
    return complexity
