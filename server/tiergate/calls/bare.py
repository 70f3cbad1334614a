"""Reading a bare answer as a person would: the caller's name in whatever dress a model gives it.

A call that sends no schema (a bare answer costs less than its schema) gets text back, and a
model writes a name in many forms: ``Billing.``, ``billing``, ``**Billing**``, ``"Billing"``,
``Label: Billing``, ``The ticket is about Billing.`` Each is one of the caller's names, read
here in the call that was paid for. What names none, several, or something that is no name, or
reads as a refusal (``I can't tell whether this is Billing``), is not read: the schema then
rejects the text and the call is asked again with structured outputs. Whatever is read is
always one of the caller's names, spelled as the caller spelled it.

    >>> read_choice("**Billing.**", ["Billing", "Technical"])
    'Billing'
    >>> read_choice("Bill or Billing?", ["Bill", "Billing"]) is None
    True
    >>> read_choices("spam, harassment", ["harassment", "spam"])
    ['harassment', 'spam']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# Dress around a name: quotes of every kind, backticks, markdown emphasis and headings,
# list bullets, brackets, trailing punctuation.
_DRESS = "\"'`*_#~>-\u2022\u201c\u201d\u2018\u2019()[]{}<>.,;:!? \t\r\n"
# "Label: Billing", "Category - Billing", "Answer: Billing": a short lead-in before the name.
_LEAD_IN_RE = re.compile(r"^\s*[\w ]{1,24}?\s*[:=\-\u2013\u2014]\s+(?=\S)")
# A refusal or a denial names a label without choosing it.
_NEGATION_RE = re.compile(
    r"\b(?:not|no|never|neither|nor|cannot|can't|cant|won't|unable|unsure|unclear|sorry|"
    r"refuse|without|isn't|doesn't|don't|none)\b|n't\b|n\u2019t\b",
    re.I,
)
_NONE_FORMS = frozenset(
    {"none", "no", "nothing", "none of them", "no categories", "no violations", "n/a", "nil"}
)
_LIST_SPLIT_RE = re.compile(r"\s*(?:,|;|\n|\band\b|&)\s*", re.I)
_MAX_SENTENCE_WORDS = 24
"""Beyond this a text is an essay, not an answer: asked again rather than guessed at."""


def _undress(text: str) -> str:
    return text.strip(_DRESS)


def _key(name: str) -> str:
    """A name as compared loosely: case folded, ``_``, ``-`` and spaces alike."""
    return re.sub(r"[\s_\-]+", " ", name.casefold()).strip()


def _exact(text: str, names: Sequence[str]) -> str | None:
    """The one name ``text`` is, once undressed: exact spelling first, then loosely."""
    if text.strip() in names:
        return text.strip()
    bare = _undress(text)
    for spelled in (str, _key):
        found = [n for n in names if spelled(_undress(n)) == spelled(bare)]
        if found:
            return found[0] if len(found) == 1 else None
    return None


def _mentions(text: str, names: Sequence[str]) -> list[str]:
    """The names ``text`` mentions as whole words; a name inside a longer mentioned name (a
    prefix such as ``Bill`` in ``Billing account``) is not a mention of its own, and of names
    differing only in case the exactly spelled one wins."""
    spans: list[tuple[int, int, str]] = []
    for name in names:
        words = [re.escape(w) for w in re.split(r"[\s_\-]+", name.strip()) if w]
        if not words:
            continue
        pattern = r"(?<!\w)" + r"[\s_\-]+".join(words) + r"(?!\w)"
        spans += [(m.start(), m.end(), name) for m in re.finditer(pattern, text, re.I)]
    kept = [
        s
        for s in spans
        if not any(o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans)
    ]
    found = list(dict.fromkeys(name for _, _, name in kept))
    if len({_key(n) for n in found}) < len(found):
        exact = [n for n in found if any(text[a:b] == n for a, b, m in kept if m == n)]
        loose = {_key(n) for n in found}
        found = exact if len({_key(n) for n in exact}) == len(loose) else found
    return found


def read_choice(text: str, names: Sequence[str]) -> str | None:
    """The one caller's name ``text`` answers, or None when it names none, several, something
    else, or reads as a refusal."""
    # The whole text, without its lead-in, or its first line when an explanation follows
    # ("Account\n\nThe customer cannot log in.").
    first = text.strip().split("\n", 1)[0]
    for candidate in (text, first):
        found = _exact(candidate, names) or _exact(
            _LEAD_IN_RE.sub("", _undress(candidate), count=1), names
        )
        if found is not None:
            return found
    if len(text.split()) > _MAX_SENTENCE_WORDS or _NEGATION_RE.search(text):
        return None
    found_names = _mentions(text, names)
    return found_names[0] if len(found_names) == 1 else None


def read_choices(text: str, names: Sequence[str]) -> list[str] | None:
    """Every caller's name ``text`` answers (none for ``none``), in the caller's order, or
    None when any part of it is no name or it reads as a refusal."""
    bare = _LEAD_IN_RE.sub("", _undress(text), count=1)
    if _key(_undress(bare)) in _NONE_FORMS or _key(_undress(text)) in _NONE_FORMS:
        return []
    if _NEGATION_RE.search(text):
        return None
    parts = [p for p in _LIST_SPLIT_RE.split(bare) if _undress(p)]
    read = [read_choice(p, names) for p in parts]
    if not parts or any(r is None for r in read):
        return None
    return [n for n in names if n in read]


def read_bare(text: str, schema: Any) -> Any:
    """The value a bare answer gives for a property of ``schema``: a name of its enum, or a
    list of names of its items' enum, when the text reads as such; else the stripped text,
    for the schema to reject."""
    if isinstance(schema, dict):
        enum = schema.get("enum")
        items = schema.get("items")
        if isinstance(enum, list) and all(isinstance(n, str) for n in enum):
            found: Any = read_choice(text, enum)
            if found is not None:
                return found
        elif schema.get("type") == "array" and isinstance(items, dict):
            choices = items.get("enum")
            if isinstance(choices, list) and all(isinstance(n, str) for n in choices):
                found = read_choices(text, choices)
                if found is not None:
                    return found
    return text.strip()
