"""The structured answer: a JSON value valid against the request's schema
(``output_config.format``), walked from the root and filled from the request's text.

``$ref``, ``allOf``, ``anyOf`` and type lists are followed; objects fill their properties
(an optional one the text gives nothing for is left out), with moderation verdicts, worked
reasoning and a confidence beside an enum where the shape asks for them; arrays hold invoice
lines, cited sentence numbers, flagged categories or a few items; leaves come from
:mod:`.leaves`.

    >>> from tiergate.emulator.evidence import Evidence
    >>> ev = Evidence("The invoice is late.", "", "The invoice is late.")
    >>> fill({"type": "string", "enum": ["shipping", "invoice"]}, ev)
    'invoice'
"""

from __future__ import annotations

from typing import Any

from .evidence import Evidence
from .extraction import (
    Field,
    has,
    is_line_item,
    line_item_value,
    name_words,
    number_value,
    string_value,
)
from .fields import LineItem
from .leaves import (
    ANSWER_WORDS,
    CONFIDENCE_WORDS,
    EXPLAIN_WORDS,
    FLAG_WORDS,
    MAX_ITEMS,
    boolean_leaf,
    number_leaf,
    string_leaf,
    string_list,
)
from .reasoning import reasoning
from .verdicts import category_key

_MAX_DEPTH = 16


def fill(schema: dict[str, Any], evidence: Evidence) -> Any:
    """A value valid against ``schema``, filled from ``evidence``."""
    return _Filler(schema, evidence).value(schema, None, 0, 0)


class _Filler:
    """Walks a JSON schema and produces a value valid against it."""

    def __init__(self, root: dict[str, Any], evidence: Evidence) -> None:
        self.root = root
        self.ev = evidence

    def resolve(self, schema: Any) -> dict[str, Any]:
        """Follow local ``$ref`` pointers (``#/$defs/X``)."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < _MAX_DEPTH:
            node: Any = self.root
            for part in str(schema["$ref"]).lstrip("#/").split("/"):
                if part:
                    node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def value(self, schema: Any, name: str | None, index: int, depth: int) -> Any:
        s = self.resolve(schema)
        if depth > _MAX_DEPTH:
            return None
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return self._enum(list(s["enum"]), index)
        if "allOf" in s:
            return self.value(self._merge_all_of(s), name, index, depth + 1)
        if "anyOf" in s:
            return self._any_of([self.resolve(b) for b in s["anyOf"]], name, index, depth)
        kind = s.get("type")
        if isinstance(kind, list):
            branches = [{**s, "type": t} for t in kind]
            return self._any_of(branches, name, index, depth)
        if kind is None:
            kind = "object" if "properties" in s else "array" if "items" in s else "string"
        field = Field.of(name, s)
        if kind == "object":
            return self._object(s, name, index, depth)
        if kind == "array":
            return self._array(s, name, depth)
        if kind == "boolean":
            return boolean_leaf(self.ev, field.words)
        if kind in ("integer", "number"):
            return number_leaf(self.ev, field, kind == "integer")
        if kind == "null":
            return None
        return string_leaf(self.ev, field, index)

    def _merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in (self.resolve(p) for p in schema["allOf"]):
            for key, val in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **val}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *val]
                else:
                    merged.setdefault(key, val)
        return merged

    def _any_of(self, branches: list[dict[str, Any]], name: str | None, index: int, d: int) -> Any:
        consts = [b["const"] for b in branches if "const" in b]
        if consts and len(consts) == len(branches):
            return self._enum(consts, index)
        nullable = any(b.get("type") == "null" for b in branches)
        others = [b for b in branches if b.get("type") != "null"] or branches
        if not others:
            return None
        if nullable and self._absent(name, others[0]):
            return None  # an optional field with nothing to extract stays null
        return self.value(others[0], name, index, d + 1)

    def _absent(self, name: str | None, schema: dict[str, Any]) -> bool:
        """Whether a field of a known kind finds nothing in the text (so may be left out)."""
        field = Field.of(name, self.resolve(schema))
        kind = field.kind
        if kind is None:
            return False
        if kind in ("quantity", "money") and self.resolve(schema).get("type") != "string":
            return number_value(self.ev, field) is None
        return not string_value(self.ev, field)

    def _enum(self, values: list[Any], index: int) -> Any:
        strings = [v for v in values if isinstance(v, str)]
        if not strings:
            return values[0] if values else None
        ranked = self.ev.rank_enum(strings)
        return ranked[index % len(ranked)]

    def _object(self, s: dict[str, Any], name: str | None, index: int, depth: int) -> Any:
        properties: dict[str, Any] = s.get("properties") or {}
        required = set(s.get("required") or ())
        verdict = _has_flag(properties, self)
        reasoned = _is_reasoning(properties)
        result: dict[str, Any] = {}
        for prop, sub in properties.items():
            words = name_words(prop)
            resolved = self.resolve(sub)
            category = _category_of(name, result) if verdict else None
            if category and has(words, *FLAG_WORDS) and resolved.get("type") == "boolean":
                result[prop] = self.ev.flagged(category)
            elif category and has(words, *EXPLAIN_WORDS) and resolved.get("type") == "string":
                result[prop] = self.ev.verdict(category).rationale
            elif reasoned and has(words, *ANSWER_WORDS) and resolved.get("type") == "string":
                result[prop] = reasoning(self.ev).answer
            elif reasoned and has(words, *CONFIDENCE_WORDS) and _numeric(resolved):
                result[prop] = reasoning(self.ev).confidence
            elif has(words, *CONFIDENCE_WORDS) and _numeric(resolved) and _enum_of(s, self):
                result[prop] = self.ev.enum_confidence(_enum_of(s, self))
            elif prop not in required and self._absent(prop, resolved):
                continue  # the text gives nothing for an optional field: leave it out
            else:
                result[prop] = self.value(sub, prop, index, depth + 1)
        return result

    def _array(self, s: dict[str, Any], name: str | None, depth: int) -> list[Any]:
        items = self.resolve(s.get("items", {}))
        words = name_words(name)
        least = 1 if s.get("minItems") else 0
        if items.get("type") == "string" and not ({"enum", "const"} & set(items)):
            texts = string_list(self.ev, words)
            if texts:
                return texts[:MAX_ITEMS] if not has(words, "steps") else texts
        properties = items.get("properties") or {}
        if properties and is_line_item(properties):
            lines = self.ev.values.line_items
            if lines or not least:
                return [self._line_item(items, line, depth + 1) for line in lines]
        if has(words, "cite", "cites", "cited") and self.ev.numbered:
            # Citations by sentence number: the best matching sentence, when it answers.
            quotes = self.ev.ranked_quotes
            best = quotes[0].document if quotes and self.ev.answerable else None
            return [int(best.id)] if best is not None else []
        count = 1
        enum = items.get("enum") or _direct_enum(items, self)
        if isinstance(items.get("enum"), list) and has(words, *FLAG_WORDS):
            # The flagged categories of a policy (e.g. moderation): those whose signs show.
            return [
                v for v in items["enum"] if isinstance(v, str) and self.ev.flagged(category_key(v))
            ]
        if isinstance(enum, list) and _is_verdict_list(items, self):
            # One verdict per category (e.g. moderation): every enum value once.
            count = len(enum)
        elif isinstance(enum, list):
            strings = [v for v in enum if isinstance(v, str)]
            positive = [v for v in strings if self.ev.enum_score(v) > 0]
            count = max(1, min(MAX_ITEMS, len(positive)))
        elif items.get("type") == "object" or "properties" in items:
            count = max(1, min(MAX_ITEMS, len(self.ev.request_sentences)))
        return [self.value(items, name, i, depth + 1) for i in range(count)]

    def _line_item(self, items: dict[str, Any], line: LineItem, depth: int) -> dict[str, Any]:
        required = set(items.get("required") or ())
        result: dict[str, Any] = {}
        for prop, sub in (items.get("properties") or {}).items():
            resolved = self.resolve(sub)
            kind = resolved.get("type")
            found = line_item_value(line, prop, kind) if isinstance(kind, str) else None
            if found is not None and not ({"enum", "const", "anyOf"} & set(resolved)):
                result[prop] = found
            elif prop in required:
                result[prop] = self.value(sub, prop, 0, depth + 1)
        return result


def _numeric(schema: dict[str, Any]) -> bool:
    return schema.get("type") in ("number", "integer") and not ({"enum", "const"} & set(schema))


def _is_reasoning(properties: dict[str, Any]) -> bool:
    """An object with worked steps and an answer (Reason's shape)."""
    names = [name_words(p) for p in properties]
    stepped = any(has(w, "steps", "reasoning", "workings") for w in names)
    return stepped and any(has(w, *ANSWER_WORDS) for w in names)


def _has_flag(properties: dict[str, Any], filler: _Filler) -> bool:
    return any(
        has(name_words(p), *FLAG_WORDS) and filler.resolve(sub).get("type") == "boolean"
        for p, sub in properties.items()
    )


def _enum_of(s: dict[str, Any], filler: _Filler) -> list[str]:
    """The string enum of an object's first enum-valued property (a label beside a confidence)."""
    for sub in (s.get("properties") or {}).values():
        resolved = filler.resolve(sub)
        values = resolved.get("enum")
        if values is None and resolved.get("type") == "array":
            values = filler.resolve(resolved.get("items", {})).get("enum")
        if isinstance(values, list):
            return [v for v in values if isinstance(v, str)]
    return []


def _category_of(parent: str | None, siblings: dict[str, Any]) -> str | None:
    """The moderation category a ``flagged`` boolean belongs to."""
    for key in ("category", "name", "label", "type"):
        value = siblings.get(key)
        if isinstance(value, str) and value:
            return category_key(value)
    if parent:
        return "_".join(name_words(parent))
    return None


def _is_verdict_list(items: dict[str, Any], filler: _Filler) -> bool:
    """Objects keyed by an enum that also carry a boolean verdict such as ``flagged``."""
    for prop, sub in (items.get("properties") or {}).items():
        if filler.resolve(sub).get("type") == "boolean" and has(name_words(prop), *FLAG_WORDS):
            return True
    return False


def _direct_enum(items: dict[str, Any], filler: _Filler) -> list[Any] | None:
    """An enum on one of an object item's direct properties (e.g. ``category``)."""
    for sub in (items.get("properties") or {}).values():
        resolved = filler.resolve(sub)
        if isinstance(resolved.get("enum"), list):
            return list(resolved["enum"])
    return None
