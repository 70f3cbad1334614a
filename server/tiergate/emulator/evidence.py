"""Reading a request's text the way the responder's heuristics need it.

Nothing here understands language: it splits sentences, finds ``<document id=".." title="..">``
blocks and counts shared content words; values come from :mod:`.fields`, moderation verdicts
from :mod:`.verdicts` and arithmetic from :mod:`.arithmetic`. Every function is deterministic.

    >>> ev = Evidence("Call Ann Lee at ann@example.com.", "", "Call Ann Lee at ann@example.com.")
    >>> ev.extract("email")
    ['ann@example.com']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from .arithmetic import Solution, solve
from .fields import TextValues
from .verdicts import CATEGORY_TERMS, Verdict, Verdicts, category_key, term_pattern
from .words import WORD_RE, content_words, prose_sentences, split_sentences, vocabulary

SENTIMENT_TERMS: dict[str, tuple[str, ...]] = {
    "positive": (
        "love",
        "great",
        "excellent",
        "amazing",
        "happy",
        "thank",
        "perfect",
        "works well",
        "recommend",
        "fantastic",
        "pleased",
        "good",
    ),
    "negative": (
        "hate",
        "terrible",
        "awful",
        "broken",
        "angry",
        "disappointed",
        "worst",
        "refund",
        "not work",
        "doesn't work",
        "never",
        "bad",
        "poor",
        "useless",
    ),
}

_DOC_RE = re.compile(r"<document\b([^>]*)>(.*?)</document>", re.S)
# A section of its own (instructions may name "<context>" in passing).
_CONTEXT_RE = re.compile(r"^<context>\n(.*?)\n</context>$", re.S | re.M)
_ATTR_RE = re.compile(r'(\w+)="([^"]*)"')
_ACTION_CUES_RE = re.compile(
    r"\b(?:will|should|must|need to|needs to|have to|has to|let's|todo|action item)\b", re.I
)
IMPERATIVE_VERBS = vocabulary(
    """add ask book call check confirm contact create draft email file finish fix follow get
    investigate make notify order pay plan please prepare remind remove reply review schedule send
    set share submit update upgrade verify write"""
)
_CURRENCY_SIGNS = {"usd": "$", "eur": "\u20ac", "gbp": "\u00a3"}
# Evidence.extract's kinds, as :class:`.fields.TextValues` calls them.
_KINDS = {"amount": "money"}
_CONFIDENCE_CAP = Fraction(95, 100)
"""A heuristic is never sure."""


def is_action(sentence: str) -> bool:
    """Whether a sentence reads like an action item (imperative or a will/should/must cue)."""
    first = WORD_RE.findall(sentence[:40])
    return bool(_ACTION_CUES_RE.search(sentence)) or (
        bool(first) and first[0].lower() in IMPERATIVE_VERBS
    )


@dataclass(frozen=True)
class Document:
    """A ``<document id=".." title="..">`` block found in the prompt."""

    id: str
    title: str
    text: str


# Documents given as numbered sentences under a "Documents:" heading (titles on lines of their
# own): each sentence is a "document" whose id is its number, which is what a citation names.
_NUMBERED_RE = re.compile(r"^Documents:\n((?:[^\n]+\n?)+)", re.M)
_NUMBERED_LINE_RE = re.compile(r"^(\d+)\. (.+)$")


def numbered_sentences(context_text: str) -> list[Document]:
    """The numbered sentences of a ``Documents:`` list, each under its title."""
    found = _NUMBERED_RE.search(context_text)
    if found is None:
        return []
    title, sentences = "", []
    for line in found.group(1).splitlines():
        numbered = _NUMBERED_LINE_RE.match(line)
        if numbered:
            sentences.append(Document(numbered.group(1), title, numbered.group(2).strip()))
        else:
            title = line.strip()
    return sentences


@dataclass(frozen=True)
class Sentence:
    """A sentence and the document it came from, if any."""

    text: str
    document: Document | None = None


class Evidence:
    """The request's texts, analysed once for all the schema's fields."""

    def __init__(self, request_text: str, context_text: str, question: str) -> None:
        self.request_text = request_text
        self.context_text = context_text
        self.documents = [
            Document(attrs.get("id", ""), attrs.get("title", ""), body.strip())
            for attr_text, body in _DOC_RE.findall(context_text + "\n" + request_text)
            for attrs in [dict(_ATTR_RE.findall(attr_text))]
        ] or numbered_sentences(context_text)
        self.numbered = bool(self.documents) and self.documents[0].id.isdigit()
        self.request_plain = _DOC_RE.sub(" ", request_text).strip()
        self.context_plain = _DOC_RE.sub(" ", context_text).strip()
        plain_question = _DOC_RE.sub(" ", question).strip()
        self.question_words = content_words(plain_question or self.request_plain)
        self.request_words = content_words(self.request_plain or request_text)
        # Each label asks for its description and its terms several times; look once.
        self._descriptions: dict[str, str] = {}
        self._hits: dict[tuple[str, ...], int] = {}

    @cached_property
    def _term_text(self) -> str:
        return " " + (self.request_plain or self.request_text).lower() + " "

    @cached_property
    def request_sentences(self) -> list[str]:
        """Sentences of the per-request text's prose (documents and headings excluded), else
        of the context."""
        return prose_sentences(self.request_plain) or prose_sentences(self.context_plain)

    @cached_property
    def values(self) -> TextValues:
        """The values the request text holds (ids, dates, money, line items...)."""
        return TextValues(self.request_plain or self.request_text)

    @cached_property
    def verdicts(self) -> Verdicts:
        """Moderation verdicts on the request text."""
        return Verdicts(self.request_plain or self.request_text)

    @cached_property
    def background(self) -> str:
        """The caller's background for a question: the prompt's ``<context>`` section."""
        found = _CONTEXT_RE.findall(self.context_text)
        return found[-1].strip() if found else ""

    @cached_property
    def solution(self) -> Solution | None:
        """The arithmetic the question asks for, worked out; None when it asks for none."""
        question = self.request_plain or self.request_text
        found = solve(question)
        if found is None and self.background and len(self.background) < 2000:
            found = solve(f"{self.background}\n{question}")
        return found

    @cached_property
    def background_quotes(self) -> list[str]:
        """Sentences of the background that share words with the question, best first."""
        # Five-letter prefixes, so "migrate" meets "migration".
        asked = {w[:5] for w in self.question_words}
        sentences = prose_sentences(self.background)
        scored = [
            (len(asked & {w[:5] for w in content_words(s)}), -i, s) for i, s in enumerate(sentences)
        ]
        return [s for score, _, s in sorted(scored, reverse=True) if score > 0]

    @cached_property
    def action_sentences(self) -> list[str]:
        """Request sentences that read like action items."""
        return [s for s in self.request_sentences if is_action(s)]

    @cached_property
    def quote_candidates(self) -> list[Sentence]:
        """Where quotes come from: document sentences, else the context, else the request."""
        if self.documents:
            return [Sentence(s, d) for d in self.documents for s in split_sentences(d.text)]
        context = [Sentence(s) for s in split_sentences(self.context_plain)]
        return context or [Sentence(s) for s in split_sentences(self.request_plain)]

    def overlap(self, text: str) -> int:
        """Content words ``text`` shares with the question."""
        return len(self.question_words & content_words(text))

    @cached_property
    def ranked_quotes(self) -> list[Sentence]:
        """Quote candidates by overlap with the question, best first (ties keep text order)."""
        scored = [(self.overlap(s.text), -i, s) for i, s in enumerate(self.quote_candidates)]
        return [s for _, _, s in sorted(scored, key=lambda t: (t[0], t[1]), reverse=True)]

    @cached_property
    def best_overlap(self) -> int:
        """Overlap of the best quote with the question."""
        return self.overlap(self.ranked_quotes[0].text) if self.ranked_quotes else 0

    @property
    def answerable(self) -> bool:
        """Whether some candidate sentence shares enough content words with the question."""
        needed = max(1, round(0.3 * len(self.question_words)))
        return self.best_overlap >= needed

    @property
    def confidence(self) -> float:
        """Share of the question's content words the best sentence covers, in [0, 1]."""
        if not self.question_words:
            return 0.5
        return round(min(1.0, self.best_overlap / len(self.question_words)), 2)

    def extract(self, kind: str) -> list[str]:
        """Values of one kind (email, url, phone, date, amount, id, name, number) in the
        request, each once, in text order."""
        return list(dict.fromkeys(f.text for f in self.values.found(_KINDS.get(kind, kind))))

    def enum_confidence(self, values: list[str]) -> float:
        """How sure the best of ``values`` is: (margin over the runner-up + 1) / (its score +
        2), so more evidence and a wider lead mean more confidence; chance when none fires."""
        if not values:
            return 0.5
        scores = sorted((self.enum_score(v) for v in values), reverse=True)
        best, runner_up = scores[0], scores[1] if len(scores) > 1 else 0
        chance = Fraction(1, len(values))
        if best <= 0:
            return round(float(chance), 2)
        sure = Fraction(best - runner_up + 1, best + 2)
        return round(float(min(_CONFIDENCE_CAP, max(chance, sure))), 2)

    def enum_score(self, value: str) -> int:
        """How well an enum value fits the request: shared words, plus category evidence."""
        score = len(content_words(value.replace("_", " ")) & self.request_words)
        key = category_key(value)
        # A label's description in the context counts too ("billing: charges, refunds"), with
        # a crude stem so "charged" meets "charges".
        described = {w[:5] for w in content_words(self.category_description(value)) if len(w) > 3}
        score += sum(1 for w in self.request_words if len(w) > 3 and w[:5] in described)
        if key in CATEGORY_TERMS or self.category_description(key):
            score += 2 if self.flagged(key) else 0
        if key in _CURRENCY_SIGNS and _CURRENCY_SIGNS[key] in self.request_text:
            score += 2  # "$15,400.00" is in USD
        if key in SENTIMENT_TERMS:
            score += 2 * self._term_hits(SENTIMENT_TERMS[key])
        elif key in ("neutral", "mixed"):
            # Neutral wins only when no sentiment term fires either way.
            score += 0 if any(self._term_hits(t) for t in SENTIMENT_TERMS.values()) else 1
        return score

    def _term_hits(self, terms: tuple[str, ...]) -> int:
        hits = self._hits.get(terms)
        if hits is None:
            text = self._term_text
            hits = self._hits[terms] = sum(1 for term in terms if term_pattern(term).search(text))
        return hits

    def rank_enum(self, values: list[str]) -> list[str]:
        """Enum values best first; ties keep schema order."""
        order = sorted(range(len(values)), key=lambda i: (-self.enum_score(values[i]), i))
        return [values[i] for i in order]

    def category_description(self, category: str) -> str:
        """A description of ``category`` given in the context (``name: description``), if any."""
        found = self._descriptions.get(category)
        if found is None:
            found = self._descriptions[category] = self._describe(category)
        return found

    def _describe(self, category: str) -> str:
        label = re.escape(category).replace("_", "[ _-]")
        # Either an element such as <label name="billing">charges</label> or "billing: charges".
        element = re.search(rf'name="{label}"[^>]*>([^<]+)<', self.context_text, re.I)
        if element:
            return element.group(1)
        match = re.search(rf"\b{label}\b\s*[:\u2013-]\s*(.+)", self.context_plain, re.I)
        return match.group(1) if match else ""

    def verdict(self, category: str) -> Verdict:
        """The moderation verdict on ``category``, with its policy description if given."""
        return self.verdicts.verdict(category, self.category_description(category))

    def flagged(self, category: str) -> bool:
        """Whether the request text shows signs of ``category``."""
        return self.verdict(category).flagged
