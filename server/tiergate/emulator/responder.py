"""The assistant's text: schema-valid, input-aware heuristics (not a language model).

With ``output_config.format = {"type": "json_schema", "schema": S}`` the responder walks S and fills
every property from the request's text, keyed on property names: enums pick the value whose words
overlap the request most, ``summary``/``answer`` take leading sentences, ``quote`` copies the best
matching sentence verbatim and ``document_id`` names its document, ``flagged`` looks for category
terms, ``email``/``date``/``amount``/``name``/``phone``/``url`` are found with regular expressions.
Without a schema it answers with a short plain text. Same request, same output.

    >>> from tiergate.emulator.evidence import Evidence
    >>> ev = Evidence("The invoice is late.", "", "The invoice is late.")
    >>> respond({"type": "string", "enum": ["shipping", "invoice"]}, ev, 100).text
    '"invoice"'
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from .evidence import Evidence, content_words, vocabulary
from .tokens import count_tokens, truncate_to_tokens

_MAX_DEPTH = 16
_MAX_ITEMS = 3
_DEFAULT_WORDS = 25

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


def name_words(name: str | None) -> list[str]:
    """``customerEmail``/``customer_email`` -> ``['customer', 'email']``."""
    if not name:
        return []
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[\W_]+", spaced) if w]


def _has(words: list[str], *wanted: str) -> bool:
    return any(w in words for w in wanted)


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
        if kind == "object":
            return self._object(s, name, index, depth)
        if kind == "array":
            return self._array(s, name, depth)
        if kind == "boolean":
            return self._boolean(name_words(name))
        if kind == "integer":
            return self._integer(name_words(name))
        if kind == "number":
            return self._number(name_words(name))
        if kind == "null":
            return None
        return self._string(s, name_words(name), index)

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
        extractor = _extractor_for(name_words(name))
        if nullable and extractor and not self.ev.extract(extractor):
            return None  # an optional field with nothing to extract stays null
        return self.value(others[0], name, index, d + 1)

    def _enum(self, values: list[Any], index: int) -> Any:
        strings = [v for v in values if isinstance(v, str)]
        if not strings:
            return values[0] if values else None
        ranked = self.ev.rank_enum(strings)
        return ranked[index % len(ranked)]

    def _object(self, s: dict[str, Any], name: str | None, index: int, depth: int) -> Any:
        result: dict[str, Any] = {}
        for prop, sub in (s.get("properties") or {}).items():
            words = name_words(prop)
            if _has(words, "flagged", "flag", "violation", "violates"):
                category = _category_of(name, result)
                if category and self.resolve(sub).get("type") == "boolean":
                    result[prop] = self.ev.flagged(category)
                    continue
            result[prop] = self.value(sub, prop, index, depth + 1)
        return result

    def _array(self, s: dict[str, Any], name: str | None, depth: int) -> list[Any]:
        items = self.resolve(s.get("items", {}))
        words = name_words(name)
        if items.get("type") == "string" and not ({"enum", "const"} & set(items)):
            texts = self._string_list(words)
            if texts:
                return texts[:_MAX_ITEMS]
        count = 1
        enum = items.get("enum") or _direct_enum(items, self)
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

    def _string_list(self, words: list[str]) -> list[str]:
        joined = "_".join(words)
        if set(words) & _ACTION_ARRAYS or "action_items" in joined or "next_steps" in joined:
            return self.ev.action_sentences or self.ev.request_sentences[:1]
        if set(words) & _WORD_ARRAYS:
            ordered = sorted(content_words(self.ev.request_plain), key=lambda w: (-len(w), w))
            return ordered[:_MAX_ITEMS]
        if _has(words, "quotes", "citations", "evidence", "excerpts"):
            return [q.text for q in self.ev.ranked_quotes[:_MAX_ITEMS]]
        if set(words) & _SENTENCE_ARRAYS:
            return self.ev.request_sentences
        return []

    def _boolean(self, words: list[str]) -> bool:
        if _has(words, "answerable", "answered", "supported", "grounded", "found"):
            return self.ev.answerable
        if _has(words, "flagged", "flag"):
            category = "_".join(w for w in words if w not in ("is", "flagged", "flag"))
            return bool(category) and self.ev.flagged(category)
        rest = {w for w in words if w not in ("is", "has", "contains", "needs", "requires")}
        return bool(content_words(" ".join(rest)) & self.ev.request_words)

    def _integer(self, words: list[str]) -> int:
        if _has(words, "count", "number", "num", "total") and not _has(words, "amount", "price"):
            return len(self.ev.request_sentences)
        if _has(words, "priority", "severity", "rating", "score", "urgency"):
            return 1 + round(4 * self.ev.confidence)
        numbers = self.ev.extract("number")
        return int(float(numbers[0])) if numbers else 0

    def _number(self, words: list[str]) -> float:
        if _has(words, "confidence", "score", "probability", "likelihood", "relevance"):
            return self.ev.confidence
        source = (
            self.ev.extract("amount") if _has(words, "amount", "price", "total", "cost") else []
        )
        numbers = self.ev.extract("number")
        for text in [*source, *numbers]:
            digits = re.sub(r"[^\d.\-]", "", text.replace(",", ""))
            try:
                return float(digits)
            except ValueError:
                continue
        return 0.0

    def _string(self, s: dict[str, Any], words: list[str], index: int) -> str:
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt in _FORMAT_FALLBACKS:
            return self._formatted(fmt, words)
        extractor = _extractor_for(words)
        if extractor:
            found = self.ev.extract(extractor)
            return found[index % len(found)] if found else ""
        quotes = self.ev.ranked_quotes
        if _has(words, "quote", "excerpt", "citation", "evidence", "passage"):
            return quotes[index % len(quotes)].text if quotes else ""
        if _has(words, "document", "doc", "source") and _has(words, "id"):
            doc = quotes[index % len(quotes)].document if quotes else None
            return doc.id if doc else ""
        titled = [q.document for q in quotes if q.document is not None]
        if _has(words, "title") and titled:
            return titled[index % len(titled)].title
        sentences = self.ev.request_sentences
        if _has(words, "summary", "tldr", "abstract", "gist", "overview"):
            return " ".join(sentences[:2])
        if _has(words, "answer", "response", "reply", "reason", "rationale", "explanation"):
            if quotes and self.ev.documents and self.ev.answerable:
                return quotes[0].text
            return sentences[0] if sentences else ""
        if _has(words, "language", "lang", "locale"):
            return "en"
        if _has(words, "title", "subject", "headline", "topic") and sentences:
            return " ".join(sentences[0].split()[:8])
        if not sentences:
            return ""
        return " ".join(sentences[index % len(sentences)].split()[:_DEFAULT_WORDS])

    def _formatted(self, fmt: str, words: list[str]) -> str:
        if fmt == "email":
            return next(iter(self.ev.extract("email")), _FORMAT_FALLBACKS[fmt])
        if fmt == "uri":
            return next(iter(self.ev.extract("url")), _FORMAT_FALLBACKS[fmt])
        if fmt in ("date", "date-time"):
            iso = [d for d in self.ev.extract("date") if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d)]
            if iso:
                return iso[0] if fmt == "date" else f"{iso[0]}T00:00:00Z"
        if fmt == "uuid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, self.ev.request_text + "/".join(words)))
        return _FORMAT_FALLBACKS[fmt]


_FORMAT_FALLBACKS: dict[str, str] = {
    "date": "1970-01-01",
    "date-time": "1970-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "PT0S",
    "email": "unknown@example.invalid",
    "hostname": "example.invalid",
    "uri": "https://example.invalid/",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


def _extractor_for(words: list[str]) -> str | None:
    for kind, cues in (
        ("email", ("email", "mail")),
        ("url", ("url", "link", "website", "uri")),
        ("phone", ("phone", "telephone", "mobile")),
        ("date", ("date", "deadline", "due")),
        ("amount", ("amount", "price", "cost", "total")),
        ("name", ("name",)),
    ):
        if _has(words, *cues):
            return kind
    return None


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
        if filler.resolve(sub).get("type") == "boolean" and _has(
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


def _plain_answer(evidence: Evidence) -> str:
    quotes = evidence.ranked_quotes
    if evidence.documents and quotes and evidence.answerable:
        return quotes[0].text
    sentences = evidence.request_sentences
    if not sentences:
        return "I have nothing to answer."
    return f"You wrote: {' '.join(sentences[:2])}"


# A list to answer from, one option a line after a "Labels:" heading ("name" or
# "name: description"): asked for a bare name, a model answers one of them.
_OPTIONS_RE = re.compile(r"^Labels:\n((?:[^\n]+\n?)+)", re.MULTILINE)


def listed_options(context_text: str) -> list[str]:
    """The option names listed in the context under a ``Labels:`` heading, in order."""
    found = _OPTIONS_RE.search(context_text)
    if found is None:
        return []
    return [line.split(": ", 1)[0] for line in found.group(1).splitlines() if line.strip()]


def respond(schema: dict[str, Any] | None, evidence: Evidence, max_tokens: int) -> Output:
    """Build the answer, cut to ``max_tokens`` tokens (stop_reason ``max_tokens``) when longer."""
    if schema is None:
        options = listed_options(evidence.context_text)
        text = evidence.rank_enum(options)[0] if options else _plain_answer(evidence)
    else:
        value = _Filler(schema, evidence).value(schema, None, 0, 0)
        text = json.dumps(value, ensure_ascii=False)
    if count_tokens(text) > max_tokens:
        return Output(truncate_to_tokens(text, max_tokens), "max_tokens")
    return Output(text, "end_turn")
