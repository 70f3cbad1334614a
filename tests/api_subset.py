"""The structured-outputs schema subset, written from the API reference alone.

Independent of the service's compiler on purpose: it states the documented rules
(``/work/shared/reference/anthropic-api.md``, "Structured outputs", checked 2026-11-24) and
lists every way a schema breaks them, so a test can assert the compiler's output is inside.
"""

from __future__ import annotations

from typing import Any

TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6"}
FORMATS |= {"uuid"}
KEYWORDS = {"type", "enum", "const", "anyOf", "allOf", "$ref", "$defs", "definitions"}
KEYWORDS |= {"properties", "required", "additionalProperties", "items", "description"}
KEYWORDS |= {"title", "default", "format", "minItems", "pattern"}
COMPLEX_PATTERN = ("(?=", "(?!", "(?<=", "(?<!", "\\b", "\\B", "\\k<")
MAX_OPTIONAL = 24
MAX_UNIONS = 16


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class _Check:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.problems: list[str] = []
        self.optional = 0
        self.unions = 0

    def node(self, s: Any, at: str, refs: tuple[str, ...]) -> None:
        if not isinstance(s, dict):
            self.problems.append(f"{at}: a schema must be an object")
            return
        for key in set(s) - KEYWORDS:
            self.problems.append(f"{at}: unsupported keyword {key}")
        kinds = s.get("type")
        listed = kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []
        if any(k not in TYPES for k in listed):
            self.problems.append(f"{at}: unknown type {kinds}")
        if isinstance(kinds, list) and len(kinds) > 1:
            self.unions += 1
        if "enum" in s and not (
            isinstance(s["enum"], list) and s["enum"] and all(map(_primitive, s["enum"]))
        ):
            self.problems.append(f"{at}: enum must list primitive values")
        if "const" in s and not _primitive(s["const"]):
            self.problems.append(f"{at}: const must be primitive")
        if "format" in s and s["format"] not in FORMATS:
            self.problems.append(f"{at}: format {s['format']} is not supported")
        if "minItems" in s and s["minItems"] not in (0, 1):
            self.problems.append(f"{at}: minItems must be 0 or 1")
        if "pattern" in s and any(c in s["pattern"] for c in COMPLEX_PATTERN):
            self.problems.append(f"{at}: complex pattern")
        if "pattern" in s and any(f"\\{d}" in s["pattern"] for d in "123456789"):
            self.problems.append(f"{at}: backreference in pattern")
        if kinds == "object" or "properties" in s or "object" in listed:
            if s.get("additionalProperties") is not False:
                self.problems.append(f"{at}: additionalProperties must be false")
            props = s.get("properties", {})
            required = s.get("required", [])
            if any(name not in props for name in required):
                self.problems.append(f"{at}: required names an undeclared property")
            self.optional += len([n for n in props if n not in required])
            for name, sub in props.items():
                self.node(sub, f"{at}/properties/{name}", refs)
        elif "additionalProperties" in s and s["additionalProperties"] is not False:
            self.problems.append(f"{at}: additionalProperties other than false")
        if "items" in s:
            self.node(s["items"], f"{at}/items", refs)
        if "anyOf" in s:
            self.unions += 1
            for i, sub in enumerate(s["anyOf"]):
                self.node(sub, f"{at}/anyOf/{i}", refs)
        if "allOf" in s:
            if "$ref" in s:
                self.problems.append(f"{at}: allOf combined with $ref")
            for i, sub in enumerate(s["allOf"]):
                if isinstance(sub, dict) and "$ref" in sub:
                    self.problems.append(f"{at}/allOf/{i}: $ref inside allOf")
                self.node(sub, f"{at}/allOf/{i}", refs)
        if "$ref" in s:
            self.reference(s["$ref"], at, refs)

    def reference(self, ref: Any, at: str, refs: tuple[str, ...]) -> None:
        if not isinstance(ref, str) or not ref.startswith(("#/$defs/", "#/definitions/")):
            self.problems.append(f"{at}: $ref must point into $defs or definitions")
            return
        if ref in refs:
            self.problems.append(f"{at}: recursive $ref")
            return
        _, where, name = ref.split("/", 2)
        target = self.root.get(where, {}).get(name)
        if target is None:
            self.problems.append(f"{at}: unresolvable $ref")
            return
        self.node(target, ref, (*refs, ref))


def subset_problems(schema: Any) -> list[str]:
    """Every way ``schema`` breaks the documented structured-outputs subset and limits."""
    check = _Check(schema)
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return ["the root must be an object schema"]
    check.node(schema, "#", ())
    if check.optional > MAX_OPTIONAL:
        check.problems.append(f"{check.optional} optional properties (at most {MAX_OPTIONAL})")
    if check.unions > MAX_UNIONS:
        check.problems.append(f"{check.unions} union types (at most {MAX_UNIONS})")
    return check.problems
