"""Values an Extract field asks for, found in the text by the field's name, type and format.

Regular expressions find candidates of each kind (emails, URLs, phones, dates, money, ids,
numbers, person names) once per text, each span claimed by one kind only, so ``INV-2041`` is
an id and never the number ``-2041``. A field then takes the candidate whose label (the words
before it on its line, and for a number the words after it) shares most words with the field's
name and description: ``Total due: 40.50 USD`` for ``total``, ``Billed to: ana@...`` for
``billed_to``. Invoice lines (``3 x Widget at 12.00 each``) are read whole. Every scan is linear
and capped, whatever the text.

    >>> values = TextValues("INVOICE INV-2041\\nDate: 2 March 2026\\n3 x Widget at 12.00 each")
    >>> values.best("id", {"invoice", "number"}).text
    'INV-2041'
    >>> iso_date(values.best("date", {"date"}).text)
    '2026-03-02'
    >>> values.line_items[0].name, values.line_items[0].quantity
    ('Widget', 3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from .words import content_words

MAX_CHARS = 200_000
"""Only the first characters of a text are searched."""
MAX_CANDIDATES = 500
"""Per kind: a field chooses among at most this many values."""
MAX_LINE_ITEMS = 100
_MAX_LINE_CHARS = 300
_LABEL_WORDS = 3

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_CURRENCY_WORDS = r"USD|EUR|GBP|CHF|JPY|dollars?|euros?|pounds?"
# 1,250.00 or 1250.00: commas only between groups of three digits.
_FIGURE = r"(?:\d{1,3}(?:,\d{3}){1,6}|\d{1,15})"
_MONEY = (
    rf"[$\u20ac\u00a3]\s?{_FIGURE}(?:\.\d{{1,8}})?"
    rf"|\b(?:USD|EUR|GBP|CHF|JPY) ?{_FIGURE}(?:\.\d{{1,8}})?"
    rf"|\b{_FIGURE}(?:\.\d{{1,8}})?\s?(?:{_CURRENCY_WORDS})\b|\b{_FIGURE}\.\d{{2}}\b"
)
# Claimed in this order: a span taken by one kind is not another's. Every repetition is bounded,
# so no pattern backtracks far on a hostile text.
_PATTERNS: dict[str, re.Pattern[str]] = {
    "url": re.compile(r"https?://[^\s<>\"')\]]{0,2000}[^\s<>\"')\].,;:!?]"),
    "email": re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"),
    "date": re.compile(
        r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
        rf"|\b{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTH},? \d{{4}}\b"
    ),
    "phone": re.compile(r"(?<![\w.-])\+?\d(?:[\d \t()-]|\.(?=\d)){6,20}\d(?!\w|\.\d)"),
    "money": re.compile(_MONEY),
    "id": re.compile(
        r"#\d{2,20}\b|\b(?=[A-Za-z0-9_/-]{0,40}\d)[A-Za-z0-9]{1,20}(?:[-_/][A-Za-z0-9]{1,20}){0,4}\b"
    ),
    "number": re.compile(rf"(?<![\w.,])-?{_FIGURE}(?:\.\d{{1,8}})?(?![\w,])"),
    # Ana Lima, Contoso Ltd, Fabrikam GmbH; one capitalised word only after "from" (a sender).
    "name": re.compile(
        r"\b[A-Z][a-z]{1,20}(?: [A-Z][a-z]{1,20}){0,3} (?:GmbH|LLC|Inc|Ltd|AG|SA|plc|Corp)\b"
        r"|\b[A-Z][a-z]{1,20}(?: [A-Z][a-z]{1,20}){1,3}\b|(?<=\bfrom )[A-Z][a-z]{2,20}\b"
    ),
}
_NAME_NOISE = frozenset({"The", "Dear", "Hi", "Hello", "Please", "Thanks", "Mr", "Mrs", "Ms", "Dr"})
_ID_CUES = frozenset({"id", "number", "no", "num", "ref", "order", "invoice", "ticket", "case"})
_LABELLED_RE = re.compile(
    r"^[ \t]*([A-Za-z][\w .'/()&-]{0,40}?)[ \t]*[:=][ \t]+(\S[^\n]{0,200}?)[ \t]*$", re.M
)

_PRICE = rf"(?P<price>(?:[$\u20ac\u00a3]\s?)?\d[\d,]*(?:\.\d+)?(?:\s?(?:{_CURRENCY_WORDS}))?)"
_ITEM_NAME = r"(?P<name>[A-Za-z][A-Za-z'&/ -]{0,60}?)"
_LINE_ITEM_RES = (
    # 3 x Widget at 12.00 each / 2 * Cable - $4.50
    re.compile(
        rf"(?<![\w.])(?P<qty>\d{{1,6}})\s*(?:x|\u00d7|\*)\s*{_ITEM_NAME}"
        rf"(?:\s*(?:at|@|for|-|\u2013|:)\s*{_PRICE}(?:\s*(?:each|ea|apiece))?)?\s*(?:[.,;]|$)",
        re.I,
    ),
    # 3 widgets at 10.50 EUR
    re.compile(rf"(?<![\w.])(?P<qty>\d{{1,6}})\s+{_ITEM_NAME}\s+(?:at|@)\s+{_PRICE}", re.I),
    # Widget x 3 @ 12.00
    re.compile(
        rf"{_ITEM_NAME}\s+(?:x|\u00d7)\s*(?P<qty>\d{{1,6}})\b(?:\s*(?:at|@|-|:)\s*{_PRICE})?",
        re.I,
    ),
)


@dataclass(frozen=True)
class Found:
    """A value in the text and the words around it."""

    text: str
    start: int
    label: frozenset[str]
    """Content words before it on its line: what the text calls it."""
    after: frozenset[str]
    """The first content words after it: what a number counts (``3 widgets``)."""


@dataclass(frozen=True)
class LineItem:
    """One line of an invoice or order: ``3 x Widget at 12.00 each``."""

    name: str
    quantity: int
    price: str | None
    """The unit price as written (``12.00``, ``$4.50``), when the line gives one."""

    @property
    def unit_price(self) -> float | None:
        return number_in(self.price) if self.price else None

    @property
    def total(self) -> float | None:
        unit = self.unit_price
        return None if unit is None else round(unit * self.quantity, 2)


def number_in(text: str) -> float | None:
    """The number written in ``text`` (``$1,204.50`` -> 1204.5), or None."""
    match = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
    return float(match.group(0).replace(",", "")) if match else None


@lru_cache(maxsize=4096)
def shape(text: str) -> str:
    """``INV-1001`` -> ``AAA-9999``: ids of one format have one shape."""
    return re.sub(r"\d", "9", re.sub(r"[A-Za-z]", "A", text))


def iso_date(text: str) -> str | None:
    """``2026-11-02``, ``Nov 2, 2026``, ``2 November 2026`` or an unambiguous ``d/m/y`` as
    ``YYYY-MM-DD``; None when the date cannot be read for sure."""
    if re.match(r"\d{4}-\d{2}-\d{2}", text):
        return text[:10]
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    month_word = re.search(r"[A-Za-z]{3}", text)
    if month_word and month_word.group(0).lower() in _MONTHS and len(numbers) >= 2:
        month = _MONTHS.index(month_word.group(0).lower()) + 1
        day, year = numbers[0], numbers[-1]
    elif len(numbers) == 3 and "/" in text:
        first, second, year = numbers
        if first > 12 >= second:
            day, month = first, second
        elif second > 12 >= first:
            month, day = first, second
        else:
            return None  # 03/04/2026: March or April, a guess either way
        year += 2000 if year < 100 else 0
    else:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1000 <= year <= 9999):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


class TextValues:
    """The candidate values of one text, found once for every field that asks."""

    def __init__(self, text: str) -> None:
        self.text = text[:MAX_CHARS]

    @cached_property
    def _by_kind(self) -> dict[str, list[Found]]:
        claimed = bytearray(len(self.text))
        found: dict[str, list[Found]] = {}
        for kind, pattern in _PATTERNS.items():
            kept: list[Found] = []
            for match in pattern.finditer(self.text):
                start, end = match.span()
                if any(claimed[start:end]) or not self._fits(kind, match):
                    continue
                kept.append(self._found(match.group(0).strip(), start, end, kind))
                if kind != "name":
                    claimed[start:end] = b"\x01" * (end - start)
                if len(kept) >= MAX_CANDIDATES:
                    break
            found[kind] = kept
        return found

    def _fits(self, kind: str, match: re.Match[str]) -> bool:
        token = match.group(0)
        if kind == "id":
            if token.startswith("#"):
                return True
            if token.isdigit():
                if len(token) < 4:
                    return False
                line_start = self.text.rfind("\n", 0, match.start()) + 1
                before = self.text[max(line_start, match.start() - 60) : match.start()]
                label = content_words(" ".join(before.split()[-_LABEL_WORDS:]))
                return bool(label & _ID_CUES)
            upper = any(c.isupper() for c in token)
            joined = any(c in "-_/" for c in token) and any(c.isalpha() for c in token)
            ordinal = re.fullmatch(r"\d+(?:st|nd|rd|th|s|am|pm|[a-z]{1,3})", token)
            return (upper or joined) and not ordinal
        if kind == "phone":
            return sum(c.isdigit() for c in token) >= 7
        return True

    def _found(self, text: str, start: int, end: int, kind: str) -> Found:
        line_start = self.text.rfind("\n", 0, start) + 1
        before = self.text[max(line_start, start - 120) : start].split()[-_LABEL_WORDS:]
        after = self.text[end : end + 40].split("\n", 1)[0].split()[:2]
        if kind == "name":
            words = text.split(" ")
            while words and words[0] in _NAME_NOISE:
                words.pop(0)
            text = " ".join(words)
        return Found(
            text,
            start,
            frozenset(content_words(" ".join(before))),
            frozenset(content_words(" ".join(after))),
        )

    def found(self, kind: str) -> list[Found]:
        """Every value of ``kind`` in text order (numbers: those no other kind claimed)."""
        return [f for f in self._by_kind.get(kind, []) if f.text]

    def best(self, kind: str, words: set[str], hints: set[str] | None = None) -> Found | None:
        """The value of ``kind`` whose label best matches the field's name ``words`` (and its
        description's ``hints``, which also give an example's shape); the first on a tie."""
        candidates = self.found(kind)
        if not candidates:
            return None
        hints = hints or set()
        example_shapes = {shape(h) for h in hints if any(c.isdigit() for c in h)}

        def score(found: Found) -> int:
            label = 3 * len(words & found.label) + len(hints & found.label)
            counted = 2 * len(words & found.after)
            return label + counted + (3 if shape(found.text) in example_shapes else 0)

        return max(candidates, key=lambda f: (score(f), -f.start))

    @cached_property
    def _labelled(self) -> list[tuple[set[str], str]]:
        found = (m for m in _LABELLED_RE.finditer(self.text))
        pairs = ((content_words(m.group(1)), m.group(2).rstrip(".;,")) for m in found)
        return [pair for pair, _ in zip(pairs, range(MAX_CANDIDATES), strict=False)]

    def labelled(self, words: set[str]) -> str | None:
        """The value of a ``Label: value`` line whose label shares words with ``words``."""
        best: tuple[int, str] | None = None
        for label, value in self._labelled:
            overlap = len(words & label)
            if overlap and (best is None or overlap > best[0]):
                best = (overlap, value)
        return best[1] if best else None

    @cached_property
    def line_items(self) -> list[LineItem]:
        """The invoice or order lines of the text, in order."""
        items: list[LineItem] = []
        for line in re.split(r"[\n;]", self.text):
            if len(line) > _MAX_LINE_CHARS or not re.search(r"\d", line):
                continue
            for pattern in _LINE_ITEM_RES:
                match = pattern.search(line)
                if match is None:
                    continue
                name = match.group("name").strip(" -")
                if not name or name.lower() in ("at", "for", "each", "total"):
                    continue
                price = match.group("price")
                items.append(
                    LineItem(name, int(match.group("qty")), price.strip() if price else None)
                )
                break
            if len(items) >= MAX_LINE_ITEMS:
                break
        return items
