"""The plain-text answer, as a model follows plain instructions (no schema): the best of a
``Labels:`` list, the flagged names of a ``Categories:`` list (or ``none``), the best numbered
sentence with its number in brackets (or ``unknown``), worked steps a line each then an
``Answer:`` line when one is asked for, else the best quote, the worked arithmetic or the request
echoed.

    >>> from tiergate.emulator.evidence import Evidence
    >>> labels = "Labels:\\nbilling: charges, refunds\\nshipping: parcels, delivery\\n"
    >>> plain_text(Evidence("I was charged twice, please refund me.", labels, ""))
    'billing'
"""

from __future__ import annotations

import re

from .evidence import Evidence
from .reasoning import reasoning
from .verdicts import category_key


def plain_text(evidence: Evidence) -> str:
    """The answer's text for a request without a schema."""
    options = listed_options(evidence.context_text)
    categories = listed_options(evidence.context_text, _POLICY_RE)
    if options:
        return evidence.rank_enum(options)[0]
    if categories:
        return _flagged_names(evidence, categories)
    return _answer(evidence)


# Instructions asking for the final answer on a line of its own, after the steps.
_ANSWER_LINE_ASKED_RE = re.compile(r'line "Answer: ?"')


def _answer(evidence: Evidence) -> str:
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


def _flagged_names(evidence: Evidence, categories: list[str]) -> str:
    flagged = [c for c in categories if evidence.flagged(category_key(c))]
    return ", ".join(flagged) if flagged else "none"
