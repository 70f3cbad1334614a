"""The assistant's text: schema-valid, input-aware heuristics (not a language model).

With ``output_config.format = {"type": "json_schema", "schema": S}`` the responder walks S and fills
every property from the request's text, keyed on property names, types, formats and descriptions:
enums pick the value whose words overlap the request most (a ``confidence`` beside one follows
that evidence), ``summary`` takes the leading sentences of the prose (headings left out),
``quote`` copies the best matching sentence verbatim and ``document_id`` names its document,
``flagged`` and its ``rationale`` say which category terms or threats matched
(:mod:`.verdicts`), ``steps``/``answer`` work out the arithmetic asked (:mod:`.arithmetic`),
and ids, emails, dates, amounts, quantities, names, phones, URLs and invoice lines come from
:mod:`.fields`; an optional property the text gives nothing for is left out; ``cite`` beside
numbered document sentences holds the best sentence's number. Without a schema it answers in
short plain text, as a model follows plain instructions: the best of a ``Labels:`` list, the
flagged names of a ``Categories:`` list (or ``none``), the best numbered sentence with its
number in brackets (or ``unknown``), worked steps a line each then an ``Answer:`` line when one
is asked for. Same request, same output.

    >>> from tiergate.emulator.evidence import Evidence
    >>> ev = Evidence("The invoice is late.", "", "The invoice is late.")
    >>> respond({"type": "string", "enum": ["shipping", "invoice"]}, ev, 100).text
    '"invoice"'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .evidence import Evidence
from .extraction import (
    FORMAT_FALLBACKS,
    Field,
    formatted,
    has,
    is_line_item,
    line_item_value,
    name_words,
    number_value,
    string_value,
)
from .fields import LineItem
from .reasoning import explanation, reasoning
from .tokens import count_tokens, truncate_to_tokens
from .words import content_words, vocabulary

_MAX_DEPTH = 16
_MAX_ITEMS = 3
_DEFAULT_WORDS = 25
_MAX_CHARS = 8000

_SENTENCE_ARRAYS = vocabulary(
    "points key_points highlights facts findings bullets sentences steps instructions items "
    "reasons issues risks takeaways"
)
_ACTION_ARRAYS = vocabulary("action actions todo todos tasks next_steps follow_ups")
_WORD_ARRAYS = vocabulary("keywords tags topics entities terms")


@dataclass(frozen=True)
class Output:
    """What the assistant message carries."""

    text: str | None
    """The text block's text; None means ``content: []``."""
    stop_reason: str
    stop_details: dict[str, Any] | None = None

    @property
    def output_tokens(self) -> int:
        """Billed output tokens."""
        return count_tokens(self.text) if self.text is not None else 0


_ANSWER_WORDS = ("answer", "response", "reply", "result", "solution")
_EXPLAIN_WORDS = ("reason", "rationale", "explanation", "justification", "why")
_FLAG_WORDS = ("flagged", "flag", "violation", "violates")
_CONFIDENCE_WORDS = ("confidence", "score", "probability", "likelihood", "relevance")


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
            return self._boolean(field.words)
        if kind in ("integer", "number"):
            return self._number(field, kind == "integer")
        if kind == "null":
            return None
        return self._string(field, index)

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
            if category and has(words, *_FLAG_WORDS) and resolved.get("type") == "boolean":
                result[prop] = self.ev.flagged(category)
            elif category and has(words, *_EXPLAIN_WORDS) and resolved.get("type") == "string":
                result[prop] = self.ev.verdict(category).rationale
            elif reasoned and has(words, *_ANSWER_WORDS) and resolved.get("type") == "string":
                result[prop] = reasoning(self.ev).answer
            elif reasoned and has(words, *_CONFIDENCE_WORDS) and _numeric(resolved):
                result[prop] = reasoning(self.ev).confidence
            elif has(words, *_CONFIDENCE_WORDS) and _numeric(resolved) and _enum_of(s, self):
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
            texts = self._string_list(words)
            if texts:
                return texts[:_MAX_ITEMS] if not has(words, "steps") else texts
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
        if isinstance(items.get("enum"), list) and has(words, *_FLAG_WORDS):
            # The flagged categories of a policy (e.g. moderation): those whose signs show.
            return [v for v in items["enum"] if isinstance(v, str) and self.ev.flagged(_key(v))]
        if isinstance(enum, list) and _is_verdict_list(items, self):
            # One verdict per category (e.g. moderation): every enum value once.
            count = len(enum)
        elif isinstance(enum, list):
            strings = [v for v in enum if isinstance(v, str)]
            positive = [v for v in strings if self.ev.enum_score(v) > 0]
            count = max(1, min(_MAX_ITEMS, len(positive)))
        elif items.get("type") == "object" or "properties" in items:
            count = max(1, min(_MAX_ITEMS, len(self.ev.request_sentences)))
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

    def _string_list(self, words: list[str]) -> list[str]:
        joined = "_".join(words)
        if set(words) & _ACTION_ARRAYS or "action_items" in joined or "next_steps" in joined:
            return self.ev.action_sentences or self.ev.request_sentences[:1]
        if set(words) & _WORD_ARRAYS:
            ordered = sorted(content_words(self.ev.request_plain), key=lambda w: (-len(w), w))
            return ordered[:_MAX_ITEMS]
        if has(words, "quotes", "citations", "evidence", "excerpts"):
            return [q.text for q in self.ev.ranked_quotes[:_MAX_ITEMS]]
        if has(words, "steps", "reasoning", "workings") and not self.ev.documents:
            return list(reasoning(self.ev).steps)
        if set(words) & _SENTENCE_ARRAYS:
            return self.ev.request_sentences
        return []

    def _boolean(self, words: list[str]) -> bool:
        if has(words, "answerable", "answered", "supported", "grounded", "found"):
            return self.ev.answerable
        if has(words, *_FLAG_WORDS):
            category = "_".join(w for w in words if w not in ("is", *_FLAG_WORDS))
            return bool(category) and self.ev.flagged(category)
        rest = {w for w in words if w not in ("is", "has", "contains", "needs", "requires")}
        return bool(content_words(" ".join(rest)) & self.ev.request_words)

    def _number(self, field: Field, integer: bool) -> float | int:
        words = field.words
        if has(words, *_CONFIDENCE_WORDS):
            return self.ev.confidence
        if has(words, "priority", "severity", "rating", "urgency"):
            return 1 + round(4 * self.ev.confidence)
        solved = self.ev.solution
        if has(words, *_ANSWER_WORDS, "value") and solved is not None:
            return int(solved.value) if integer else float(solved.value)
        found = number_value(self.ev, field, integer)
        if found is None and has(words, "count", "number", "num"):
            found = len(self.ev.request_sentences)
        value = found or 0
        return int(value) if integer else float(value)

    def _string(self, field: Field, index: int) -> str:
        words = field.words
        if field.format in FORMAT_FALLBACKS:
            return formatted(self.ev, field)
        quotes = self.ev.ranked_quotes
        if has(words, "quote", "excerpt", "citation", "evidence", "passage"):
            return quotes[index % len(quotes)].text if quotes else ""
        if has(words, "document", "doc", "source") and has(words, "id"):
            doc = quotes[index % len(quotes)].document if quotes else None
            return doc.id if doc else ""
        titled = [q.document for q in quotes if q.document is not None]
        if has(words, "title") and titled:
            return titled[index % len(titled)].title
        sentences = self.ev.request_sentences
        if has(words, "summary", "tldr", "abstract", "gist", "overview"):
            return _clip(" ".join(sentences[:2]))
        if has(words, *_ANSWER_WORDS) and self.ev.documents:
            return quotes[0].text if quotes and self.ev.answerable else ""
        if has(words, *_ANSWER_WORDS):
            return reasoning(self.ev).answer
        if has(words, *_EXPLAIN_WORDS):
            return explanation(self.ev) or (sentences[0] if sentences else "")
        found = string_value(self.ev, field, index)
        if found is not None:
            return found
        if has(words, "language", "lang", "locale"):
            return "en"
        if has(words, "title", "subject", "headline", "topic") and sentences:
            return " ".join(sentences[0].split()[:8])
        labelled = self.ev.values.labelled(set(words))
        if labelled:
            return labelled
        if not sentences:
            return ""
        return _clip(" ".join(sentences[index % len(sentences)].split()[:_DEFAULT_WORDS]))


def _clip(text: str) -> str:
    """At most ``_MAX_CHARS`` characters: a "word" of a hostile text can be a megabyte."""
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS].rstrip() + "..."


def _numeric(schema: dict[str, Any]) -> bool:
    return schema.get("type") in ("number", "integer") and not ({"enum", "const"} & set(schema))


def _is_reasoning(properties: dict[str, Any]) -> bool:
    """An object with worked steps and an answer (Reason's shape)."""
    names = [name_words(p) for p in properties]
    stepped = any(has(w, "steps", "reasoning", "workings") for w in names)
    return stepped and any(has(w, *_ANSWER_WORDS) for w in names)


def _has_flag(properties: dict[str, Any], filler: _Filler) -> bool:
    return any(
        has(name_words(p), *_FLAG_WORDS) and filler.resolve(sub).get("type") == "boolean"
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
            return value.lower().replace("-", "_").replace(" ", "_")
    if parent:
        return "_".join(name_words(parent))
    return None


def _is_verdict_list(items: dict[str, Any], filler: _Filler) -> bool:
    """Objects keyed by an enum that also carry a boolean verdict such as ``flagged``."""
    for prop, sub in (items.get("properties") or {}).items():
        if filler.resolve(sub).get("type") == "boolean" and has(
            name_words(prop), "flagged", "flag", "violation", "violates"
        ):
            return True
    return False


def _direct_enum(items: dict[str, Any], filler: _Filler) -> list[Any] | None:
    """An enum on one of an object item's direct properties (e.g. ``category``)."""
    for sub in (items.get("properties") or {}).values():
        resolved = filler.resolve(sub)
        if isinstance(resolved.get("enum"), list):
            return list(resolved["enum"])
    return None


# Instructions asking for the final answer on a line of its own, after the steps.
_ANSWER_LINE_ASKED_RE = re.compile(r'line "Answer: ?"')


def _plain_answer(evidence: Evidence) -> str:
    quotes = evidence.ranked_quotes
    if evidence.numbered:
        # Numbered sentences are cited by number, as the instructions that number them ask.
        best = quotes[0]
        return (
            f"{best.text} [{best.document.id}]"
            if best.document and evidence.answerable
            else "unknown"
        )
    if evidence.documents and quotes and evidence.answerable:
        return quotes[0].text
    if _ANSWER_LINE_ASKED_RE.search(evidence.context_text):
        worked = reasoning(evidence)
        return "\n".join((*worked.steps, f"Answer: {worked.answer}"))
    if evidence.solution is not None:
        return " ".join((*evidence.solution.steps, evidence.solution.answer))
    sentences = evidence.request_sentences
    if not sentences:
        return "I have nothing to answer."
    return f"You wrote: {' '.join(sentences[:2])}"


# A list to answer from, one option a line after a "Labels:" heading ("name" or
# "name: description"): asked for a bare name, a model answers one of them.
_OPTIONS_RE = re.compile(r"^Labels:\n((?:[^\n]+\n?)+)", re.MULTILINE)


# A policy to check against, one category a line after a "Categories:" heading: asked for
# the names of the categories violated, a model names them, or says none.
_POLICY_RE = re.compile(r"^Categories:\n((?:[^\n]+\n?)+)", re.MULTILINE)


def listed_options(context_text: str, pattern: re.Pattern[str] = _OPTIONS_RE) -> list[str]:
    """The option names listed in the context under a ``Labels:`` heading, in order."""
    found = pattern.search(context_text)
    if found is None:
        return []
    return [line.split(": ", 1)[0] for line in found.group(1).splitlines() if line.strip()]


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def _flagged_names(evidence: Evidence, categories: list[str]) -> str:
    flagged = [c for c in categories if evidence.flagged(_key(c))]
    return ", ".join(flagged) if flagged else "none"


def respond(schema: dict[str, Any] | None, evidence: Evidence, max_tokens: int) -> Output:
    """Build the answer, cut to ``max_tokens`` tokens (stop_reason ``max_tokens``) when longer."""
    if schema is None:
        options = listed_options(evidence.context_text)
        categories = listed_options(evidence.context_text, _POLICY_RE)
        if options:
            text = evidence.rank_enum(options)[0]
        elif categories:
            text = _flagged_names(evidence, categories)
        else:
            text = _plain_answer(evidence)
    else:
        value = _Filler(schema, evidence).value(schema, None, 0, 0)
        text = json.dumps(value, ensure_ascii=False)
    if count_tokens(text) > max_tokens:
        return Output(truncate_to_tokens(text, max_tokens), "max_tokens")
    return Output(text, "end_turn")
