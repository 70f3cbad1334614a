"""Reading a request's text the way the responder's heuristics need it.

Nothing here understands language: it splits sentences, finds ``<document id=".." title="..">``
blocks, counts shared content words and pulls emails, dates, amounts, names, phones and URLs
out with regular expressions. Every function is deterministic.

    >>> ev = Evidence("Call Ann Lee at ann@example.com.", "", "Call Ann Lee at ann@example.com.")
    >>> ev.extract("email")
    ['ann@example.com']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache


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

# Small built-in vocabularies per moderation category; descriptions in the context add to them.
CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    "violence": (
        "kill",
        "attack",
        "hurt",
        "weapon",
        "gun",
        "shoot",
        "stab",
        "murder",
        "bomb",
        "punch",
        "assault",
        "beat you",
        "blood",
        "fight",
    ),
    "harassment": (
        "idiot",
        "stupid",
        "loser",
        "shut up",
        "pathetic",
        "worthless",
        "bully",
        "harass",
        "threaten",
        "nobody likes you",
        "ugly",
    ),
    "hate": ("hate", "inferior", "vermin", "subhuman", "go back to", "racist", "bigot"),
    "self_harm": (
        "suicide",
        "kill myself",
        "self-harm",
        "self harm",
        "cut myself",
        "end my life",
        "hurt myself",
        "overdose",
        "want to die",
    ),
    "sexual": ("sex", "sexual", "nude", "naked", "porn", "explicit", "erotic"),
    "spam": (
        "buy now",
        "click here",
        "free",
        "winner",
        "prize",
        "limited offer",
        "discount",
        "act now",
        "subscribe",
        "unsubscribe",
        "$$$",
        "100% guaranteed",
        "cheap",
    ),
    "profanity": ("damn", "hell", "crap", "shit", "fuck"),
    "illegal": ("steal", "drugs", "counterfeit", "launder", "smuggle", "hack into"),
    "pii": ("@", "password", "social security", "ssn", "credit card"),
}

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

_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_DOC_RE = re.compile(r"<document\b([^>]*)>(.*?)</document>", re.S)
_ATTR_RE = re.compile(r'(\w+)="([^"]*)"')
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_ACTION_CUES_RE = re.compile(
    r"\b(?:will|should|must|need to|needs to|have to|has to|let's|todo|action item)\b", re.I
)
IMPERATIVE_VERBS = vocabulary(
    """add ask book call check confirm contact create draft email file finish fix follow get
    investigate make notify order pay plan please prepare remind remove reply review schedule send
    set share submit update upgrade verify write"""
)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_EXTRACTORS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "url": re.compile(r"https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]"),
    "phone": re.compile(r"(?<![\w.])\+?\d[\d\s().-]{6,}\d(?![\w.])"),
    "date": re.compile(
        rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b"
        rf"|\b(?:{_MONTHS})[a-z]*\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b"
        rf"|\b\d{{1,2}} (?:{_MONTHS})[a-z]* \d{{4}}\b"
    ),
    "amount": re.compile(
        r"[$\u20ac\u00a3]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:USD|EUR|GBP|dollars)\b"
    ),
    "name": re.compile(r"\b[A-Z][a-z]+(?:[ ][A-Z][a-z]+)+\b"),
    "number": re.compile(r"-?\b\d+(?:\.\d+)?\b"),
}
_NAME_NOISE = frozenset({"The", "Dear", "Hi", "Hello", "Please", "Thanks", "Mr", "Mrs", "Ms", "Dr"})


def stem(word: str) -> str:
    """A crude suffix-stripping stem so 'billing' meets 'bill' and 'refunds' meets 'refund'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed lowercase words of ``text`` that carry meaning (no stopwords)."""
    words = (w.lower() for w in _WORD_RE.findall(text))
    return {stem(w) for w in words if w not in STOPWORDS and len(w) > 1}


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each a verbatim substring of it (list markers dropped)."""
    sentences = []
    for line in text.splitlines():
        line = _LIST_MARKER_RE.sub("", line)
        sentences += [s.strip() for s in _SENTENCE_END_RE.split(line) if s.strip()]
    return sentences


def is_action(sentence: str) -> bool:
    """Whether a sentence reads like an action item (imperative or a will/should/must cue)."""
    first = _WORD_RE.findall(sentence[:40])
    return bool(_ACTION_CUES_RE.search(sentence)) or (
        bool(first) and first[0].lower() in IMPERATIVE_VERBS
    )


@dataclass(frozen=True)
class Document:
    """A ``<document id=".." title="..">`` block found in the prompt."""

    id: str
    title: str
    text: str


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
        ]
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
        """Sentences of the per-request text (documents excluded), else of the context."""
        return split_sentences(self.request_plain) or split_sentences(self.context_plain)

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
        """Values of one kind (email, url, phone, date, amount, name, number) in the request."""
        source = self.request_plain or self.request_text
        found = [m.group(0).strip() for m in _EXTRACTORS[kind].finditer(source)]
        if kind == "name":
            found = [_clean_name(n) for n in found]
            found = [n for n in found if " " in n]
        return list(dict.fromkeys(found))

    def enum_score(self, value: str) -> int:
        """How well an enum value fits the request: shared words, plus category evidence."""
        score = len(content_words(value.replace("_", " ")) & self.request_words)
        key = value.lower().replace("-", "_").replace(" ", "_")
        # A label's description in the context counts too ("billing: charges, refunds"), with
        # a crude stem so "charged" meets "charges".
        described = {w[:5] for w in content_words(self.category_description(value)) if len(w) > 3}
        score += sum(1 for w in self.request_words if len(w) > 3 and w[:5] in described)
        if key in CATEGORY_TERMS or self.category_description(key):
            score += 2 if self.flagged(key) else 0
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
            hits = self._hits[terms] = sum(1 for term in terms if _term_pattern(term).search(text))
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

    def flagged(self, category: str) -> bool:
        """Whether the request text shows signs of ``category``."""
        if self._term_hits(CATEGORY_TERMS.get(category, ())):
            return True
        description_words = {
            w for w in content_words(self.category_description(category)) if len(w) >= 5
        }
        return bool(description_words & self.request_words)


@lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern[str]:
    # Terms match at a word start ("kill" also finds "killed"); symbols match anywhere.
    return re.compile(rf"\b{re.escape(term)}" if term[0].isalnum() else re.escape(term))


def _clean_name(name: str) -> str:
    words = name.split(" ")
    while words and words[0] in _NAME_NOISE:
        words.pop(0)
    return " ".join(words)
