"""Which value an extraction field takes: its kind from its name, type and format, then the
value of that kind in the text whose label matches the field best (:mod:`.fields`).

    >>> from tiergate.emulator.evidence import Evidence
    >>> text = "INVOICE INV-2041\\nTotal due: 40.50 USD"
    >>> ev = Evidence(text, "", text)
    >>> string_value(ev, Field.of("invoice_number", {"type": "string"}))
    'INV-2041'
    >>> number_value(ev, Field.of("total", {"type": "number"}))
    40.5
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from .evidence import Evidence
from .fields import Found, LineItem, iso_date, number_in
from .words import content_words

FORMAT_FALLBACKS: dict[str, str] = {
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

# Kinds by the words of a field's name, first match wins ("due_date" is a date, "amount_due"
# money, "phone_number" a phone, "invoice_number" an id).
_CUES: tuple[tuple[str, frozenset[str]], ...] = (
    ("email", frozenset({"email", "mail"})),
    ("url", frozenset({"url", "link", "website", "uri", "homepage"})),
    ("phone", frozenset({"phone", "telephone", "mobile", "fax", "tel"})),
    ("date", frozenset({"date", "deadline", "birthday", "dob", "issued", "when"})),
    ("money", frozenset({"amount", "price", "cost", "total", "fee", "subtotal", "tax", "balance",
                         "paid", "charge", "salary", "due"})),
    ("quantity", frozenset({"quantity", "qty", "count", "units", "pieces"})),
    ("id", frozenset({"id", "number", "no", "num", "ref", "reference", "code", "sku", "iban"})),
    ("name", frozenset({"name", "vendor", "supplier", "company", "customer", "employer",
                        "merchant", "seller", "buyer", "person", "author", "organization"})),
)  # fmt: skip
_ITEM_NAME = frozenset({"item", "description", "name", "product", "title", "article", "service"})
_UNIT_PRICE = frozenset({"price", "rate", "each", "unit", "cost"})
_LINE_TOTAL = frozenset({"total", "amount", "subtotal", "sum", "line"})
_ISO_HINTS = frozenset({"yyyy", "iso", "8601"})


def name_words(name: str | None) -> list[str]:
    """``customerEmail``/``customer_email`` -> ``['customer', 'email']``."""
    if not name:
        return []
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[\W_]+", spaced) if w]


def has(words: list[str], *wanted: str) -> bool:
    """Whether any of ``wanted`` is one of ``words``."""
    return any(w in words for w in wanted)


def extractor_for(words: list[str]) -> str | None:
    """The kind of value a field named with ``words`` holds, if its name says."""
    if "number" in words and "of" in words:
        return "quantity"  # number_of_items
    for kind, cues in _CUES:
        if cues & set(words):
            return kind
    return None


@dataclass(frozen=True)
class Field:
    """A property to fill: its name's words and its description's words (the hints)."""

    words: list[str]
    hints: set[str]
    format: str | None

    @classmethod
    def of(cls, name: str | None, schema: dict[str, Any]) -> Field:
        description = schema.get("description")
        text = description if isinstance(description, str) else ""
        examples = {t.strip(".,;:()\"'") for t in text.split() if any(c.isdigit() for c in t)}
        fmt = schema.get("format")
        return cls(
            name_words(name), content_words(text) | examples, fmt if isinstance(fmt, str) else None
        )

    @property
    def kind(self) -> str | None:
        if self.format in ("email", "uri"):
            return "email" if self.format == "email" else "url"
        if self.format in ("date", "date-time"):
            return "date"
        return extractor_for(self.words)

    def best(self, ev: Evidence, kind: str) -> Found | None:
        return ev.values.best(kind, content_words(" ".join(self.words)), self.hints)


def _as_date(found: str, field: Field) -> str:
    iso = iso_date(found)
    if field.format in ("date", "date-time") or (field.hints & _ISO_HINTS):
        if iso is None:
            return ""
        return iso if field.format != "date-time" else f"{iso}T00:00:00Z"
    return found


def string_value(ev: Evidence, field: Field, index: int = 0) -> str | None:
    """The text a string field of a known kind takes; "" when the text gives none; None when
    the field's kind is unknown (another rule decides)."""
    kind = field.kind
    if kind is None or kind == "quantity":
        return None
    if index > 0:
        every = ev.values.found(kind)
        found = every[index % len(every)] if every else None
    else:
        found = field.best(ev, kind)
    if found is None:
        labelled = ev.values.labelled(set(field.words))
        return labelled if labelled and kind not in ("email", "url", "date") else ""
    return _as_date(found.text, field) if kind == "date" else found.text


def formatted(ev: Evidence, field: Field) -> str:
    """A value of one of the API's formats: found in the text, else a valid placeholder."""
    fmt = field.format or ""
    if fmt in ("email", "uri", "date", "date-time"):
        value = string_value(ev, field)
        if value:
            return value
    if fmt == "uuid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, ev.request_text + "/".join(field.words)))
    return FORMAT_FALLBACKS[fmt]


def number_value(ev: Evidence, field: Field, integer: bool = False) -> float | None:
    """The number a numeric field takes: the best-labelled amount or count; for a total with
    no label, the largest amount; None when the text gives none."""
    kind = field.kind
    found: Found | None = None
    if kind == "money":
        found = field.best(ev, "money")
        if found is not None and not (set(field.words) & found.label) and "total" in field.words:
            found = max(ev.values.found("money"), key=lambda f: number_in(f.text) or 0)
    if found is None and kind != "id":
        found = field.best(ev, "number") or field.best(ev, "money")
    if found is None:
        return None
    value = number_in(found.text)
    if value is None:
        return None
    return float(int(value)) if integer else value


def is_line_item(properties: dict[str, Any]) -> bool:
    """Objects with a name and a quantity or price: an invoice's or order's lines."""
    words = [set(name_words(p)) for p in properties]
    named = any(w & _ITEM_NAME for w in words)
    counted = any(extractor_for(sorted(w)) in ("quantity", "money") for w in words)
    return named and counted


def line_item_value(item: LineItem, name: str, kind: str) -> Any:
    """One property of an invoice line: its name, quantity, unit price or line total, typed
    as the schema's ``kind``; None when the line does not give it."""
    words = set(name_words(name))
    value: Any = None
    if words & {"quantity", "qty", "count", "units", "pieces"}:
        value = item.quantity
    elif words & _LINE_TOTAL and not words & {"unit", "each"}:
        value = item.total
    elif words & _UNIT_PRICE:
        value = item.unit_price if kind != "string" else item.price
    elif words & _ITEM_NAME:
        value = item.name
    if value is None:
        return None
    if kind == "integer":
        return int(value) if not isinstance(value, str) else None
    if kind == "number":
        return float(value) if not isinstance(value, str) else None
    return str(value) if kind == "string" else None
