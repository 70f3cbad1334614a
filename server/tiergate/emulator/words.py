"""Words and sentences of a text, as the responder's heuristics read them.

Nothing here understands language: it drops stopwords, strips a few suffixes, splits sentences
at ``.``, ``!`` and ``?`` and tells headings from prose by their shape. Every function is
deterministic and linear in the text.

    >>> sorted(content_words("The refunds are billing issues"))
    ['bill', 'issu', 'refund']
    >>> prose_sentences("Q3 Notes\\n\\nUploads retry.\\nReports load\\ntwice as fast.")
    ['Uploads retry.', 'Reports load twice as fast.']
"""

from __future__ import annotations

import re


def vocabulary(words: str) -> frozenset[str]:
    """A word set written as one whitespace-separated string (easier to read than a list)."""
    return frozenset(words.split())


STOPWORDS = vocabulary(
    """a an and are as at be been but by can could did do does for from had has have he her his
    how i if in into is it its me my no not of on or our she so than that the their them then there
    these they this to was we were what when where which who why will with would you your yours
    about any all also just more most other some such only own same very s t don should now
    content message messages text including include includes someone people user users"""
)

WORD_RE = re.compile(r"[A-Za-z0-9]+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_MARKDOWN_HEADING_RE = re.compile(r"^\s*#{1,6}\s+")
_HEADING_MAX_WORDS = 10
# "Billed to: ana@example.com" (capitalised, where a wrapped line goes on in lower case): a
# form's line, a unit of its own, never joined to the next.
# "3 x Widget at 12.00": an invoice line, likewise.
_FIELD_LINE_RE = re.compile(
    r"^\s*(?:[A-Z][\w'/-]*(?: [\w'/-]+){0,3}:\s+\S|\d+\s*(?:x|\u00d7|\*)\s)"
)


def stem(word: str) -> str:
    """A crude suffix-stripping stem so 'billing' meets 'bill' and 'refunds' meets 'refund'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed lowercase words of ``text`` that carry meaning (no stopwords)."""
    words = (w.lower() for w in WORD_RE.findall(text))
    return {stem(w) for w in words if w not in STOPWORDS and len(w) > 1}


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each a verbatim substring of it (list markers dropped)."""
    sentences = []
    for line in text.splitlines():
        line = _LIST_MARKER_RE.sub("", line)
        sentences += [s.strip() for s in _SENTENCE_END_RE.split(line) if s.strip()]
    return sentences


def is_heading(line: str, next_line: str = "", more_follows: bool = True) -> bool:
    """Whether a line is a title rather than prose: ``# Notes``, ``SUPPORT POLICY``, ``2. The
    billing queue`` or ``Release Notes`` (short, no final stop, capitalised) above a blank line.
    The last line of a text is never one: a title heads something."""
    stripped = line.strip()
    if _MARKDOWN_HEADING_RE.match(stripped):
        return True
    words = stripped.split()
    if not more_follows or not words or len(words) > _HEADING_MAX_WORDS:
        return False
    if stripped[-1] in ".!?,;:" or ":" in stripped:
        return False
    letters = [c for c in stripped if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        return True
    if next_line.strip():
        return False
    alphabetic = [w for w in words if w[0].isalpha()]
    capitalised = sum(1 for w in alphabetic if w[0].isupper())
    numbered = bool(re.match(r"^\s*\d+(?:[.)]|(?:\.\d+)+\.?)\s", line))
    return numbered or (bool(alphabetic) and 2 * capitalised >= len(alphabetic))


def prose_sentences(text: str) -> list[str]:
    """The sentences of ``text``'s prose: headings dropped, lines wrapped inside a paragraph
    joined, list items kept apart; a text of headings only keeps them."""
    units: list[str] = []
    current: list[str] = []
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not line.strip() or is_heading(line, following, i < last):
            units.append(" ".join(current))
            current = []
            continue
        if _LIST_MARKER_RE.match(line) or _FIELD_LINE_RE.match(line):
            units.append(" ".join(current))
            current = [_LIST_MARKER_RE.sub("", line).strip()]
            continue
        current.append(line.strip())
    units.append(" ".join(current))
    found = [s.strip() for unit in units for s in _SENTENCE_END_RE.split(unit) if s.strip()]
    return found or split_sentences(text)
