"""A schema leaf's value from the request's text, keyed on the words of the property's name:
strings, numbers, booleans and lists of strings (:mod:`.structured` walks the schema to them).

    >>> from tiergate.emulator.evidence import Evidence
    >>> from tiergate.emulator.extraction import Field
    >>> ev = Evidence("Refund the order. Call the customer.", "", "")
    >>> string_leaf(ev, Field.of("summary", {"type": "string"}), 0)
    'Refund the order. Call the customer.'
"""

from __future__ import annotations

from .evidence import Evidence
from .extraction import FORMAT_FALLBACKS, Field, formatted, has, number_value, string_value
from .reasoning import explanation, reasoning
from .words import content_words, vocabulary

MAX_ITEMS = 3
"""Items in a list the text could make longer."""
_DEFAULT_WORDS = 25
_MAX_CHARS = 8000

ANSWER_WORDS = ("answer", "response", "reply", "result", "solution")
EXPLAIN_WORDS = ("reason", "rationale", "explanation", "justification", "why")
FLAG_WORDS = ("flagged", "flag", "violation", "violates")
CONFIDENCE_WORDS = ("confidence", "score", "probability", "likelihood", "relevance")

_SENTENCE_ARRAYS = vocabulary(
    "points key_points highlights facts findings bullets sentences steps instructions items "
    "reasons issues risks takeaways"
)
_ACTION_ARRAYS = vocabulary("action actions todo todos tasks next_steps follow_ups")
_WORD_ARRAYS = vocabulary("keywords tags topics entities terms")


def string_list(ev: Evidence, words: list[str]) -> list[str]:
    """A list of strings named by ``words`` (action items, keywords, quotes, steps,
    sentences), or [] when the name asks for none of these."""
    joined = "_".join(words)
    if set(words) & _ACTION_ARRAYS or "action_items" in joined or "next_steps" in joined:
        return ev.action_sentences or ev.request_sentences[:1]
    if set(words) & _WORD_ARRAYS:
        ordered = sorted(content_words(ev.request_plain), key=lambda w: (-len(w), w))
        return ordered[:MAX_ITEMS]
    if has(words, "quotes", "citations", "evidence", "excerpts"):
        return [q.text for q in ev.ranked_quotes[:MAX_ITEMS]]
    if has(words, "steps", "reasoning", "workings") and not ev.documents:
        return list(reasoning(ev).steps)
    if set(words) & _SENTENCE_ARRAYS:
        return ev.request_sentences
    return []


def boolean_leaf(ev: Evidence, words: list[str]) -> bool:
    """A boolean named by ``words``: answerable, a moderation flag, or whether the request
    speaks of what the name says."""
    if has(words, "answerable", "answered", "supported", "grounded", "found"):
        return ev.answerable
    if has(words, *FLAG_WORDS):
        category = "_".join(w for w in words if w not in ("is", *FLAG_WORDS))
        return bool(category) and ev.flagged(category)
    rest = {w for w in words if w not in ("is", "has", "contains", "needs", "requires")}
    return bool(content_words(" ".join(rest)) & ev.request_words)


def number_leaf(ev: Evidence, field: Field, integer: bool) -> float | int:
    """A number for ``field``: a confidence, a 1-5 rating, the worked answer, or the
    quantity or amount the text gives (else 0)."""
    words = field.words
    if has(words, *CONFIDENCE_WORDS):
        return ev.confidence
    if has(words, "priority", "severity", "rating", "urgency"):
        return 1 + round(4 * ev.confidence)
    solved = ev.solution
    if has(words, *ANSWER_WORDS, "value") and solved is not None:
        return int(solved.value) if integer else float(solved.value)
    found = number_value(ev, field, integer)
    if found is None and has(words, "count", "number", "num"):
        found = len(ev.request_sentences)
    value = found or 0
    return int(value) if integer else float(value)


def string_leaf(ev: Evidence, field: Field, index: int) -> str:
    """A string for ``field`` (the ``index``-th of a list): a formatted value, a quote, a
    summary, an answer, an extracted value or a sentence of the request."""
    words = field.words
    if field.format in FORMAT_FALLBACKS:
        return formatted(ev, field)
    quotes = ev.ranked_quotes
    if has(words, "quote", "excerpt", "citation", "evidence", "passage"):
        return quotes[index % len(quotes)].text if quotes else ""
    if has(words, "document", "doc", "source") and has(words, "id"):
        doc = quotes[index % len(quotes)].document if quotes else None
        return doc.id if doc else ""
    titled = [q.document for q in quotes if q.document is not None]
    if has(words, "title") and titled:
        return titled[index % len(titled)].title
    sentences = ev.request_sentences
    if has(words, "summary", "tldr", "abstract", "gist", "overview"):
        return _clip(" ".join(sentences[:2]))
    if has(words, *ANSWER_WORDS) and ev.documents:
        return quotes[0].text if quotes and ev.answerable else ""
    if has(words, *ANSWER_WORDS):
        return reasoning(ev).answer
    if has(words, *EXPLAIN_WORDS):
        return explanation(ev) or (sentences[0] if sentences else "")
    found = string_value(ev, field, index)
    if found is not None:
        return found
    if has(words, "language", "lang", "locale"):
        return "en"
    if has(words, "title", "subject", "headline", "topic") and sentences:
        return " ".join(sentences[0].split()[:8])
    labelled = ev.values.labelled(set(words))
    if labelled:
        return labelled
    if not sentences:
        return ""
    return _clip(" ".join(sentences[index % len(sentences)].split()[:_DEFAULT_WORDS]))


def _clip(text: str) -> str:
    """At most ``_MAX_CHARS`` characters: a "word" of a hostile text can be a megabyte."""
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS].rstrip() + "..."
