"""Moderation verdicts: whether a text falls under a category, and what it matched.

A category is flagged by its built-in terms (``kill``, ``idiot``, ``click here``), by a threat
aimed at a person (``I will hurt you``) when the category covers threats (violence, harassment,
or a description that says "threat"), or, for a category without built-in terms, by distinctive
words of its description in the policy. The rationale names what matched, or what was looked
for and not found. Word lists and patterns, not judgement.

    >>> verdict = Verdicts("I will kill you and your family").verdict("violence", "")
    >>> verdict.flagged, verdict.rationale
    (True, 'Flagged: "I will kill you" is a threat of violence against a person.')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from .words import content_words, vocabulary

MAX_CHARS = 100_000
"""Only the first characters of a text are searched."""
_MAX_QUOTED = 3

# Small built-in vocabularies per category; descriptions in the policy add to them.
CATEGORY_TERMS: dict[str, tuple[str, ...]] = {
    "violence": (
        "kill", "attack", "hurt", "weapon", "gun", "shoot", "stab", "murder", "bomb", "punch",
        "assault", "beat you", "blood", "fight",
    ),
    "harassment": (
        "idiot", "stupid", "loser", "shut up", "pathetic", "worthless", "bully", "harass",
        "threaten", "nobody likes you", "ugly",
    ),
    "hate": ("hate", "inferior", "vermin", "subhuman", "go back to", "racist", "bigot"),
    "self_harm": (
        "suicide", "kill myself", "self-harm", "self harm", "cut myself", "end my life",
        "hurt myself", "overdose", "want to die",
    ),
    "sexual": ("sex", "sexual", "nude", "naked", "porn", "explicit", "erotic"),
    "spam": (
        "buy now", "click here", "free", "winner", "prize", "limited offer", "discount", "act now",
        "subscribe", "unsubscribe", "$$$", "100% guaranteed", "cheap",
    ),
    "profanity": ("damn", "hell", "crap", "shit", "fuck"),
    "illegal": ("steal", "drugs", "counterfeit", "launder", "smuggle", "hack into"),
    "pii": ("@", "password", "social security", "ssn", "credit card"),
}  # fmt: skip

# What a threat says of its category, by the category's name.
_THREAT_SAYS = {
    "violence": "a threat of violence against a person",
    "harassment": "a threat aimed at a person",
}
_THREAT_RE = re.compile(
    r"\b(?:I|we)(?:'ll|\s+will|\s+shall|'m\s+going\s+to|\s+am\s+going\s+to|'re\s+going\s+to"
    r"|\s+are\s+going\s+to|\s+gonna|'m\s+gonna)\s+(?:\w{1,20}\s+){0,3}?"
    r"(?:kill|hurt|shoot|stab|murder|beat|strangle|burn|attack|punch|rape|choke|break|destroy)"
    r"\w{0,4}\s+(?:\w{1,20}\s+){0,2}?(?:you|your|him|her|them|u)\b"
    r"|\byou(?:'re|\s+are|\s+will\s+be)\s+(?:dead|going\s+to\s+die|gonna\s+die)\b"
    r"|\b(?:watch\s+your\s+back|I\s+know\s+where\s+you\s+live)\b",
    re.I,
)
# Description words too common to show that a text falls under a category.
_GENERIC = vocabulary(
    """about aimed attack content encouragement instruction instructions other people person
    question questions similar someone something thing things using words"""
)


@dataclass(frozen=True)
class Verdict:
    """One category's verdict."""

    flagged: bool
    rationale: str


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str]:
    """A term as a whole word, with its common endings (``kill`` finds ``killed``, never
    ``skill``; ``hell`` never ``hello``); a symbol anywhere."""
    if not term[0].isalnum():
        return re.compile(re.escape(term))
    return re.compile(rf"\b{re.escape(term)}(?:s|es|ed|d|ing|er|ers|y|ly|ment)?\b", re.I)


def _quoted(found: list[str]) -> str:
    shown = [f'"{f}"' for f in dict.fromkeys(found)][:_MAX_QUOTED]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


class Verdicts:
    """A text's verdicts, category by category (found once per category)."""

    def __init__(self, text: str) -> None:
        self.text = text[:MAX_CHARS]
        self.words = content_words(self.text)

    @cached_property
    def threat(self) -> str | None:
        """The first threat of harm aimed at a person, as written."""
        found = _THREAT_RE.search(self.text)
        return " ".join(found.group(0).split()) if found else None

    def terms(self, category: str) -> list[str]:
        """The category's built-in terms the text uses, as written."""
        found = (term_pattern(t).search(self.text) for t in CATEGORY_TERMS.get(category, ()))
        return [match.group(0) for match in found if match]

    def described(self, description: str) -> list[str]:
        """Distinctive words of ``description`` the text uses, as written."""
        wanted = {w for w in content_words(description) if len(w) >= 5} - _GENERIC
        shared = sorted(wanted & self.words)
        found = (re.search(rf"\b{re.escape(w)}\w*", self.text, re.I) for w in shared)
        return [match.group(0) for match in found if match]

    def verdict(self, category: str, description: str) -> Verdict:
        """Whether the text falls under ``category`` (described by ``description`` in the
        policy, possibly empty), and a one-sentence rationale naming what matched."""
        label = category.replace("_", " ")
        covers_threats = category in _THREAT_SAYS or "threat" in description.lower()
        if covers_threats and self.threat:
            says = _THREAT_SAYS.get(category, f"a threat, which the policy counts as {label}")
            return Verdict(True, f'Flagged: "{self.threat}" is {says}.')
        terms = self.terms(category)
        if terms:
            return Verdict(
                True, f"Flagged: the text says {_quoted(terms)}, which reads as {label}."
            )
        if category not in CATEGORY_TERMS:
            words = self.described(description)
            if words:
                return Verdict(
                    True,
                    f"Flagged: the text mentions {_quoted(words)}, as the policy's description"
                    f" of {label} does.",
                )
            if description:
                return Verdict(
                    False, f"Not flagged: nothing in the text matches the policy's {label}."
                )
        looked_for = "terms or threats" if covers_threats else "terms"
        return Verdict(False, f"Not flagged: no {label} {looked_for} in the text.")


def category_key(name: str) -> str:
    """A category's key as the term tables spell it: ``Hate-Speech`` -> ``hate_speech``."""
    return name.lower().replace("-", "_").replace(" ", "_")
