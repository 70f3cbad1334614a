"""Steps and an answer to a question: the arithmetic it asks for (:mod:`.arithmetic`), else the
background sentences that bear on it, else a plain statement that nothing does.

    >>> from tiergate.emulator.evidence import Evidence
    >>> question = "What is 15% of 240?"
    >>> reasoning(Evidence(question, "", question)).answer
    '36'
"""

from __future__ import annotations

from dataclasses import dataclass

from .evidence import Evidence

_MAX_STEPS = 3
_SOLVED_CONFIDENCE = 0.9
_UNSUPPORTED_CONFIDENCE = 0.1
NOTHING_TO_GO_ON = (
    "Not enough to go on: the question gives no figures to compute with, and no background "
    "sentence bears on it."
)


@dataclass(frozen=True)
class Reasoning:
    """The steps shown, the final answer and how sure the heuristic is."""

    steps: tuple[str, ...]
    answer: str
    confidence: float


def reasoning(ev: Evidence) -> Reasoning:
    """How the question is answered, always with at least one non-blank step and an answer."""
    solved = ev.solution
    if solved is not None:
        return Reasoning(solved.steps, solved.answer, _SOLVED_CONFIDENCE)
    quotes = ev.background_quotes[:_MAX_STEPS]
    if quotes:
        share = ev.overlap(quotes[0]) / max(1, len(ev.question_words))
        return Reasoning(tuple(quotes), quotes[0], round(min(_SOLVED_CONFIDENCE, share), 2))
    return Reasoning(
        ("The question states no figures to compute with.", "No background bears on it."),
        NOTHING_TO_GO_ON,
        _UNSUPPORTED_CONFIDENCE,
    )


def explanation(ev: Evidence) -> str | None:
    """A one-line justification when arithmetic was done: its steps, joined."""
    solved = ev.solution
    return " ".join(solved.steps) if solved is not None else None
