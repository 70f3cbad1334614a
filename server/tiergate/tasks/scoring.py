"""How a task's response is scored against the one a person expected (``tiergate eval``, and
the shadow against the primary answer): each task states its :class:`Scoring` on its ``Task``.

Expected fields are the task's response fields in proto JSON. An exact scoring says when an
item is correct and counts matching units (labels, leaf fields, ids, verdicts) for a secondary
F1; a judged scoring (free text) is graded by the judge (:mod:`tiergate.evaluation.judge`),
which is told what the task is by the scoring's ``brief``.

    Scoring("exact_label", "label", check=check_expected, fields=lambda r: {"label"}, score=...)
    judged("judged_answer", "answer", brief="Answer a question by reasoning step by step.")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tiergate.calls.prompt import JsonObject


@dataclass(frozen=True)
class Score:
    """How one response compares with what was expected."""

    correct: bool
    matched: int = 0
    """Expected units (labels, leaf fields, ids, verdicts) the response got right."""
    predicted: int = 0
    """Units the response gave."""
    expected: int = 0
    """Units expected."""
    judge_cost_nanos: int = 0
    """What judging this response cost (judged scorers only); never a tier's cost."""
    reason: str = ""
    """The judge's one-sentence reason (judged scorers only)."""


@dataclass(frozen=True)
class Expected:
    """Expected fields: every field with its value (defaults filled), and which were given."""

    fields: JsonObject
    given: frozenset[str]

    def __contains__(self, name: str) -> bool:
        return name in self.given


CheckFn = Callable[[Any, Expected], list[str]]
"""What is wrong with expected fields for a request (empty when they can be scored)."""
ExactFn = Callable[[Any, JsonObject, Expected], Score]
"""The score of a response (proto JSON) against expected fields, for a request."""


@dataclass(frozen=True)
class Judged:
    """A free-text response the judge grades against the expected one."""

    field: str
    """The response field compared (``summary``, ``answer``)."""
    brief: str
    """What the judge is told the task is, before the reference."""


@dataclass(frozen=True, kw_only=True)
class Scoring:
    """A task's scoring: what expected fields must hold, and how a response is scored."""

    name: str
    """Short name for outputs, e.g. ``exact_label``."""
    unit: str
    """What the secondary F1 counts, e.g. ``label``."""
    fields: Callable[[Any], frozenset[str]]
    """The response fields compared, for a request."""
    check: CheckFn
    score: ExactFn | None = None
    """The exact score; None when the response is judged."""
    judged: Judged | None = None

    def __post_init__(self) -> None:
        if (self.score is None) == (self.judged is None):
            raise ValueError(f"{self.name}: a scoring is exact (score) or judged, one of them")


def field_set(*names: str) -> Callable[[Any], frozenset[str]]:
    """The same compared fields for every request."""
    return lambda _request: frozenset(names)


def judged(name: str, field: str, *, brief: str) -> Scoring:
    """A scoring by the judge of the free-text response ``field``."""

    def check(request: Any, expected: Expected) -> list[str]:
        if not str(expected.fields.get(field, "")).strip():
            return [f"expected needs a non-blank {field}"]
        return []

    return Scoring(
        name=name, unit=field, fields=field_set(field), check=check, judged=Judged(field, brief)
    )


def set_counts(got: set[str], want: set[str]) -> tuple[int, int, int]:
    """Matched, predicted and expected units of two sets."""
    return len(got & want), len(got), len(want)
