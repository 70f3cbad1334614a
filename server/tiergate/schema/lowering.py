"""Lowering: a caller's schema to the subset structured outputs accept, and back.

What each construct becomes in the schema sent upstream (the wire schema):

- ``$ref``: inlined (so ``allOf`` never meets a ``$ref``); ``allOf``: its branches merged, an
  ``enum`` or ``const`` to the values every branch allows;
  ``oneOf``: ``anyOf``; branches that only add rules (``{"required": [...]}``): dropped;
- every object closed (``additionalProperties: false``); an open map (``additionalProperties``
  with a schema, ``patternProperties``, or an object without ``properties``) gets one more
  required property, an array of ``{key, value}`` entries, turned back into keys by :func:`decode`;
- a tuple (``prefixItems``, draft-07 array ``items``): items of any of the positions' schemas;
- kept as they are: types, primitive ``enum`` and ``const``, ``required``, the ten formats,
  patterns structured outputs take, ``minItems`` 0 or 1; ``description``, ``title``, ``default``;
- everything else (bounds, lengths, ``multipleOf``, ``uniqueItems``, other formats and
  patterns, ``not``, conditionals, dependencies, property counts): dropped from the wire and
  written into the description, so the model still reads it; the output is validated against
  the caller's full schema afterwards.
- Optional properties beyond the limit become required and nullable; ``null`` then means
  absent, and :func:`decode` removes it.

Refused: ``false`` schemas where a value is expected, object or array ``enum``/``const``
values, an undeclared ``required`` name, ``allOf`` types or literals no value satisfies, a
``const`` outside the ``enum`` beside it, nesting past the data depth bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiergate.schema.limits import (
    MAX_DATA_DEPTH,
    MAX_LOWERED_SCHEMAS,
    MAX_OPTIONAL_PROPERTIES,
    TEN_FORMATS,
    SchemaRefused,
    child,
)
from tiergate.schema.patterns import is_simple, output_validator
from tiergate.schema.references import resolve
from tiergate.schema.rules import RULES, text
from tiergate.schema.shapes import Shape

JsonObject = dict[str, Any]

ANNOTATIONS = ("title", "description")
SHAPE_KEYS = frozenset(
    {"type", "properties", "items", "prefixItems", "enum", "const", "$ref", "anyOf", "oneOf"}
    | {"allOf", "additionalProperties", "patternProperties", "format", "pattern"}
)
_OBJECT_KEYS = {"properties", "additionalProperties", "patternProperties", "required"}
_ARRAY_KEYS = {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"}
_STRING_KEYS = {"minLength", "maxLength", "pattern", "format"}
_NUMBER_KEYS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
_ANY = ("string", "number", "boolean", "null")
# Marks a union of rule-only branches, stated in the description instead of sent.
_RULES_ONLY = "\x00rules-only:"


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _types(node: JsonObject) -> list[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    keys = set(node)
    for kind, cues in (
        ("object", _OBJECT_KEYS),
        ("array", _ARRAY_KEYS),
        ("string", _STRING_KEYS),
        ("number", _NUMBER_KEYS),
    ):
        if keys & cues:
            return [kind]
    return list(_ANY)


def _same_value(a: Any, b: Any) -> bool:
    """JSON Schema's equality of two literals: 1 equals 1.0, as in Python, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _fits(value: Any, kind: str) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return kind in checks and checks[kind](value)


def nullable(wire: JsonObject) -> tuple[JsonObject, bool]:
    """``wire`` admitting null too, and whether that added a union."""
    kinds = wire.get("type")
    if isinstance(kinds, list):
        return ({**wire, "type": [*kinds, "null"]} if "null" not in kinds else wire), False
    if "anyOf" in wire:
        if any(b.get("type") == "null" for b in wire["anyOf"]):
            return wire, False
        return {**wire, "anyOf": [*wire["anyOf"], {"type": "null"}]}, False
    if "enum" in wire:
        return (
            {**wire, "enum": [*wire["enum"], None]} if None not in wire["enum"] else wire
        ), False
    return {"anyOf": [wire, {"type": "null"}]}, True


class Lowering:
    """One pass over a caller's schema; ``optional_budget`` optional properties stay optional."""

    def __init__(self, root: JsonObject, *, draft7: bool, optional_budget: int) -> None:
        self.root = root
        self.draft7 = draft7
        self.optional_left = optional_budget
        self.unions: list[str] = []
        self.optional = 0
        self.work = 0

    def _count(self, pointer: str) -> None:
        self.work += 1
        if self.work > MAX_LOWERED_SCHEMAS:
            raise SchemaRefused(
                pointer,
                f"expands to more than {MAX_LOWERED_SCHEMAS} schemas once $refs are inlined",
            )

    def lower(self, node: Any, pointer: str, depth: int) -> tuple[JsonObject, Shape | None]:
        """The wire schema of ``node`` and how to decode it."""
        self._count(pointer)
        if node is False:
            raise SchemaRefused(pointer, "a false schema admits no value")
        if node is True or not isinstance(node, dict):
            node = {}
        if "$ref" in node:
            return self._reference(node, pointer, depth)
        if isinstance(node.get("allOf"), list):
            return self.lower(self._merge_all_of(node, pointer), pointer, depth)
        union = node.get("anyOf", node.get("oneOf"))
        if isinstance(union, list) and union:
            return self._union(node, union, pointer, depth)
        if "enum" in node or "const" in node:
            return self._literals(node, pointer)
        kinds = _types(node)
        if len(kinds) > 1 and {"object", "array"} & set(kinds):
            return self._branches([{**node, "type": k} for k in kinds], pointer, depth, {})
        wire, shape = self._typed(node, kinds, pointer, depth)
        return self._annotated(wire, node), shape

    def _reference(self, node: JsonObject, pointer: str, depth: int) -> tuple[JsonObject, Any]:
        _, target = resolve(self.root, node["$ref"], pointer)
        # draft-07 ignores every keyword beside $ref; 2020-12 applies them too.
        rest = {k: v for k, v in node.items() if k != "$ref" and k not in ANNOTATIONS}
        if self.draft7 or not set(rest) & (SHAPE_KEYS | set(RULES)):
            wire, shape = self.lower(target, pointer, depth)
            # Only the annotations: a rule beside it is never checked in draft-07.
            kept = {k: node[k] for k in (*ANNOTATIONS, "default") if k in node}
            return self._annotated(wire, kept), shape
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return self.lower({**siblings, "allOf": [target, *node.get("allOf", [])]}, pointer, depth)

    def _merge_all_of(self, node: JsonObject, pointer: str) -> JsonObject:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for i, branch in enumerate(node["allOf"]):
            where = child(pointer, "allOf", i)
            self._count(where)
            if branch is False:
                raise SchemaRefused(where, "a false schema admits no value")
            while isinstance(branch, dict) and "$ref" in branch:
                _, target = resolve(self.root, branch["$ref"], where)
                branch = {**{k: v for k, v in branch.items() if k != "$ref"}, "allOf": [target]}
            if isinstance(branch, dict) and "allOf" in branch:
                branch = self._merge_all_of(branch, where)
            for key, value in (branch if isinstance(branch, dict) else {}).items():
                merged[key] = self._merge_keyword(key, merged.get(key), value, where)
        return merged

    def _merge_keyword(self, key: str, old: Any, new: Any, pointer: str) -> Any:
        if old is None:
            return new
        if key == "properties" and isinstance(old, dict) and isinstance(new, dict):
            both = {**old, **new}
            for name in set(old) & set(new):
                both[name] = {"allOf": [old[name], new[name]]}
            return both
        if key == "required" and isinstance(old, list) and isinstance(new, list):
            return [*old, *(n for n in new if n not in old)]
        if key == "type":
            olds = set(old if isinstance(old, list) else [old])
            news = set(new if isinstance(new, list) else [new])
            if "number" in olds:
                olds.add("integer")
            if "number" in news:
                news.add("integer")
            common = [t for t in (old if isinstance(old, list) else [old]) if t in news]
            common += [t for t in sorted(olds & news) if t not in common]
            if not common:
                raise SchemaRefused(pointer, "allOf branches share no type")
            return common[0] if len(common) == 1 else common
        if key == "description" and isinstance(old, str) and isinstance(new, str):
            return old if new in old else f"{old}\n{new}"
        if key in ("enum", "const"):
            # An answer must satisfy every branch: only the values all of them allow are sent.
            so_far = old if key == "enum" and isinstance(old, list) else [old]
            allowed = new if key == "enum" and isinstance(new, list) else [new]
            values = [v for v in so_far if any(_same_value(v, a) for a in allowed)]
            if not values:
                raise SchemaRefused(pointer, f"allOf branches share no {key} value")
            return values if key == "enum" else values[0]
        # Two different values for one rule: the first reaches the wire, every branch is
        # still enforced by validating against the caller's schema.
        return old

    def _union(
        self, node: JsonObject, union: list[Any], pointer: str, depth: int
    ) -> tuple[JsonObject, Any]:
        key = "anyOf" if "anyOf" in node else "oneOf"
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        if all(isinstance(b, dict) and not set(b) & SHAPE_KEYS for b in union):
            # Branches that only add rules ("either email or phone"): stated, checked after.
            return self.lower({**rest, _RULES_ONLY + key: union}, pointer, depth)
        if set(rest) & SHAPE_KEYS:
            # Keywords beside the union apply to every branch, and are stated there.
            branches = [{"allOf": [rest, b]} for b in union]
            return self._branches(branches, child(pointer, key), depth, {})
        return self._branches(list(union), child(pointer, key), depth, node)

    def _branches(
        self, branches: list[Any], pointer: str, depth: int, node: JsonObject
    ) -> tuple[JsonObject, Any]:
        lowered = [self.lower(b, child(pointer, i), depth) for i, b in enumerate(branches)]
        wire, shape = self._pick(lowered, pointer)
        return self._annotated(wire, node), shape

    def _literals(self, node: JsonObject, pointer: str) -> tuple[JsonObject, None]:
        key = "const" if "const" in node else "enum"
        values = [node["const"]] if key == "const" else node["enum"]
        if not isinstance(values, list) or not values:
            raise SchemaRefused(child(pointer, key), "enum has no values")
        for i, value in enumerate(values):
            if not _primitive(value):
                where = child(pointer, key) if key == "const" else child(pointer, key, i)
                raise SchemaRefused(
                    where, f"{key} values must be strings, numbers, booleans or null"
                )
        enum = node.get("enum")
        if (
            key == "const"
            and isinstance(enum, list)
            and not any(_same_value(values[0], v) for v in enum)
        ):
            raise SchemaRefused(child(pointer, key), "the const value is not one of enum's")
        if "type" in node:
            kinds = _types(node)
            values = [v for v in values if any(_fits(v, k) for k in kinds)]
            if not values:
                raise SchemaRefused(child(pointer, key), f"no {key} value has the declared type")
        wire: JsonObject = {"const": values[0]} if key == "const" else {"enum": values}
        return self._annotated(wire, node), None

    def _typed(
        self, node: JsonObject, kinds: list[str], pointer: str, depth: int
    ) -> tuple[JsonObject, Shape | None]:
        if len(kinds) > 1:
            self.unions.append(pointer)
            wire: JsonObject = {"type": kinds}
            if "string" in kinds:
                wire.update(self._string(node))
            return wire, None
        kind = kinds[0] if kinds else "string"
        if kind == "object":
            return self._object(node, pointer, depth + 1)
        if kind == "array":
            return self._array(node, pointer, depth + 1)
        wire = {"type": kind}
        if kind == "string":
            wire.update(self._string(node))
        return wire, None

    def _string(self, node: JsonObject) -> JsonObject:
        kept: JsonObject = {}
        if node.get("format") in TEN_FORMATS:
            kept["format"] = node["format"]
        if isinstance(node.get("pattern"), str) and is_simple(node["pattern"]):
            kept["pattern"] = node["pattern"]
        return kept

    def _object(self, node: JsonObject, pointer: str, depth: int) -> tuple[JsonObject, Any]:
        _check_depth(pointer, depth)
        properties_: Any = node.get("properties")
        declared: JsonObject = properties_ if isinstance(properties_, dict) else {}
        required = [n for n in node.get("required", []) if isinstance(n, str)]
        for i, name in enumerate(node.get("required", [])):
            if name not in declared:
                raise SchemaRefused(
                    child(pointer, "required", i),
                    "required names a property that properties does not declare",
                )
        properties: JsonObject = {}
        shapes: dict[str, Shape | None] = {}
        nulls: set[str] = set()
        wire_required = list(dict.fromkeys(required))
        for name, sub in declared.items():
            wire, shapes[name] = self.lower(sub, child(pointer, "properties", name), depth)
            if name not in required:
                if self.optional_left > 0:
                    self.optional_left -= 1
                    self.optional += 1
                else:
                    admitting, added = nullable(wire)
                    if added:
                        self.unions.append(child(pointer, "properties", name))
                    if admitting is not wire:  # null was not the caller's value: it means absent
                        nulls.add(name)
                    wire = admitting
                    wire_required.append(name)
            properties[name] = wire
        entries, entry_shape = self._entries(node, declared, pointer, depth)
        name = "entries"
        while name in declared:
            name = f"_{name}"
        if entries is not None:
            properties[name] = entries
            wire_required.append(name)
        wire = {"type": "object", "properties": properties, "required": wire_required}
        wire["additionalProperties"] = False
        if entries is None and not nulls and all(s is None for s in shapes.values()):
            return wire, None
        return wire, Shape(
            shapes,
            entries=name if entries is not None else None,
            entry_value=entry_shape,
            nulls_absent=frozenset(nulls),
        )

    def _entries(
        self, node: JsonObject, declared: JsonObject, pointer: str, depth: int
    ) -> tuple[JsonObject | None, Shape | None]:
        """An open map's other keys as ``[{key, value}]``, or None for a closed object."""
        additional = node.get("additionalProperties")
        patterns = node.get("patternProperties")
        patterns = patterns if isinstance(patterns, dict) else {}
        values: list[tuple[Any, str]] = [
            (sub, child(pointer, "patternProperties", p)) for p, sub in patterns.items()
        ]
        if isinstance(additional, dict) or (additional is True and not declared):
            values.append((additional, child(pointer, "additionalProperties")))
        elif additional is None and not declared and not patterns and "properties" not in node:
            values.append(({}, pointer))
        if not values:
            return None, None
        key: JsonObject = {"type": "string"}
        if len(patterns) == 1 and len(values) == 1 and is_simple(next(iter(patterns))):
            key["pattern"] = next(iter(patterns))
        value, shape = self._pick([self.lower(v, at, depth) for v, at in values], pointer)
        entry: JsonObject = {
            "type": "object",
            "properties": {"key": key, "value": value},
            "required": ["key", "value"],
            "additionalProperties": False,
        }
        description = "The object's other properties: one {key, value} entry per property."
        return {"type": "array", "items": entry, "description": description}, shape

    def _array(self, node: JsonObject, pointer: str, depth: int) -> tuple[JsonObject, Any]:
        _check_depth(pointer, depth)
        items = node.get("items")
        choices: list[tuple[Any, str]] = []
        if isinstance(items, list):  # draft-07 tuple, then additionalItems
            choices = [(p, child(pointer, "items", i)) for i, p in enumerate(items)]
            rest, rest_at = node.get("additionalItems"), child(pointer, "additionalItems")
        elif isinstance(node.get("prefixItems"), list):
            positions = node["prefixItems"]
            choices = [(p, child(pointer, "prefixItems", i)) for i, p in enumerate(positions)]
            rest, rest_at = items, child(pointer, "items")
        if choices:
            if isinstance(rest, dict) or rest is True:
                choices.append((rest, rest_at))
            lowered = [self.lower(p, at, depth) for p, at in choices]
            item_wire, item_shape = self._pick(lowered, child(pointer, "items"))
        else:
            item_wire, item_shape = self.lower(
                {} if items is None else items, child(pointer, "items"), depth
            )
        wire: JsonObject = {"type": "array", "items": item_wire}
        least = node.get("minItems")
        if isinstance(least, int) and least >= 1:
            wire["minItems"] = 1
        shape = Shape(items=item_shape) if item_shape is not None else None
        return wire, shape

    def _pick(
        self, lowered: list[tuple[JsonObject, Shape | None]], pointer: str
    ) -> tuple[JsonObject, Shape | None]:
        unique: dict[str, tuple[JsonObject, Shape | None]] = {}
        for wire, shape in lowered:
            unique.setdefault(text(wire), (wire, shape))
        if len(unique) == 1:
            return next(iter(unique.values()))
        self.unions.append(pointer)
        shape = None
        if any(s is not None for _, s in unique.values()):
            shape = Shape(branches=tuple((output_validator(w), s) for w, s in unique.values()))
        return {"anyOf": [w for w, _ in unique.values()]}, shape

    def _annotated(self, wire: JsonObject, node: JsonObject) -> JsonObject:
        """``wire`` with the caller's annotations and every rule the wire cannot carry."""
        wire = dict(wire)
        for key in ANNOTATIONS:
            if isinstance(node.get(key), str) and key not in wire:
                wire[key] = node[key]
        if "default" in node and _primitive(node["default"]) and "anyOf" not in wire:
            wire["default"] = node["default"]
        rules = [
            RULES[key.removeprefix(_RULES_ONLY)](value)
            for key, value in node.items()
            if key.removeprefix(_RULES_ONLY) in RULES and not _on_wire(key, value, wire)
        ]
        if isinstance(node.get("items"), list):  # draft-07 tuple
            rules.append(RULES["prefixItems"](node["items"]))
        if node.get("items") is False or node.get("additionalItems") is False:
            rules.append("no items past those positions")
        rules = [r for r in rules if r]
        if rules:
            note = "Rules checked after answering: " + "; ".join(rules) + "."
            wire["description"] = (
                f"{wire['description']}\n\n{note}" if "description" in wire else note
            )
        return wire


def _on_wire(key: str, value: Any, wire: JsonObject) -> bool:
    if key in ("pattern", "format"):
        return bool(wire.get(key) == value)
    if key == "minItems":
        return value in (0, 1)
    # anyOf and oneOf are lowered into the wire's own shape.
    return key in ("anyOf", "oneOf")


def _check_depth(pointer: str, depth: int) -> None:
    if depth > MAX_DATA_DEPTH:
        raise SchemaRefused(pointer, f"nests objects and arrays more than {MAX_DATA_DEPTH} deep")


def lower(root: JsonObject, *, draft7: bool) -> tuple[JsonObject, Shape | None, list[str], int]:
    """The wire schema, its decoding, the union pointers and the optional properties kept."""
    first = Lowering(root, draft7=draft7, optional_budget=1 << 30)
    wire, shape = first.lower(root, "", 0)
    if first.optional <= MAX_OPTIONAL_PROPERTIES:
        return wire, shape, first.unions, first.optional
    # Too many optional properties: the ones past the limit become required and nullable.
    second = Lowering(root, draft7=draft7, optional_budget=MAX_OPTIONAL_PROPERTIES)
    wire, shape = second.lower(root, "", 0)
    return wire, shape, second.unions, second.optional
