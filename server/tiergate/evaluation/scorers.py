"""A task's scorer: is a response right, given the fields a person expected?

Each task states how it is scored on its ``Task`` (:class:`tiergate.tasks.scoring.Scoring`:
exact, or judged by the frontier tier with a fixed rubric, :mod:`.judge`); :func:`scorer_for`
turns that into the :class:`Scorer` eval and the shadow use. Expected fields are the task's
response fields in proto JSON (either field-name style).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from tiergate.evaluation.judge import Judge
from tiergate.tasks import TASKS
from tiergate.tasks.scoring import CheckFn, Expected, Judged, Score, Scoring

__all__ = ["Expected", "Score", "Scorer", "as_json", "f1", "scorer_for"]

JsonObject = dict[str, Any]


ScoreFn = Callable[[Any, JsonObject, Expected], Coroutine[Any, Any, Score]]


@dataclass(frozen=True)
class Scorer:
    """A task's scorer: what expected fields must hold, and how a response is scored."""

    rpc: str
    name: str
    """Short name for outputs, e.g. ``exact_label``."""
    unit: str
    """What the secondary F1 counts, e.g. ``label``."""
    judged: bool
    response_type: type[Message]
    check: CheckFn
    score: ScoreFn
    scored_fields: Callable[[Any], frozenset[str]]
    """The response fields this scorer compares, for a request."""

    def expected(self, request: Any, raw: Any) -> Expected | list[str]:
        """Parse ``raw`` (proto JSON of the response's fields), or say what is wrong with it."""
        if not isinstance(raw, dict):
            return ["expected must be a JSON object of response fields"]
        if "usage" in raw:
            return ["expected must not hold usage: it is measured, not scored"]
        try:
            message = json_format.ParseDict(raw, self.response_type())
        except json_format.ParseError as exc:
            return [f"expected: {exc}"]
        names = {}
        for field in self.response_type.DESCRIPTOR.fields:
            names[field.name] = field.name
            names[field.json_name] = field.name
        expected = Expected(
            fields=as_json(message, defaults=True), given=frozenset(names[k] for k in raw)
        )
        problems = self.check(request, expected)
        return problems or expected

    def reference(self, request: Any, response: Message) -> Expected:
        """Another response as the expected one (shadow calls are scored against the primary)."""
        return Expected(fields=as_json(response, defaults=True), given=self.scored_fields(request))


def as_json(message: Message, *, defaults: bool = False) -> JsonObject:
    """A response as JSON with proto field names (the form scorers compare)."""
    data = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=defaults,
    )
    data.pop("usage", None)
    return data


def f1(matched: int, predicted: int, expected: int) -> float:
    """F1 of ``matched`` right units among ``predicted`` given and ``expected`` wanted."""
    if predicted == 0 and expected == 0:
        return 1.0
    return 2 * matched / (predicted + expected)


def scorer_for(rpc: str, judge: Judge | None = None) -> Scorer:
    """The scorer of the task ``rpc``, from its ``Task``; judged tasks need ``judge``."""
    if rpc not in TASKS:
        raise KeyError(f"no scorer for {rpc!r}")
    task = TASKS[rpc]
    scoring = task.scoring
    return Scorer(
        rpc,
        scoring.name,
        scoring.unit,
        scoring.judged is not None,
        task.response_type,
        scoring.check,
        _scored(rpc, scoring, judge),
        scoring.fields,
    )


def _scored(rpc: str, scoring: Scoring, judge: Judge | None) -> ScoreFn:
    if scoring.judged is not None:
        return _judged(rpc, scoring.judged, judge)
    exact = scoring.score
    assert exact is not None  # a Scoring is exact or judged

    async def score(request: Any, response: JsonObject, expected: Expected) -> Score:
        return exact(request, response, expected)

    return score


def _judged(rpc: str, judged: Judged, judge: Judge | None) -> ScoreFn:
    field = judged.field

    async def score(request: Any, response: JsonObject, expected: Expected) -> Score:
        if judge is None:
            raise RuntimeError(f"{rpc} is judged: a Judge is needed")
        question = getattr(request, "question", "")
        verdict = await judge.judge(
            rpc, question, str(expected.fields[field]), str(response.get(field, ""))
        )
        right = verdict.correct
        return Score(right, int(right), 1, 1, verdict.cost_nanos, verdict.reason)

    return score
