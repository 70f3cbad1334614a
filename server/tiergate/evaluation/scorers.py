"""One scorer per task: is a response right, given the fields a person expected?

Expected fields are the task's response fields in proto JSON (either field-name style). Each
scorer says when an item is correct and counts matches for a secondary F1:

- Classify: the exact label; with ``multi_label`` and expected ``labels``, the exact label set
  (F1 over labels).
- Extract: every expected leaf of ``data`` equal (numbers by value), others may be present
  (item accuracy; F1 over leaf fields).
- Answer: ``answerable`` agrees and, when expected ``citations`` are given, the cited document
  ids are exactly theirs (F1 over document ids).
- Moderate: ``flagged`` agrees and every expected category's ``flagged`` agrees (share of
  agreeing verdicts).
- Summarize, Reason: judged by the frontier tier against the expected ``summary``/``answer``
  with a fixed rubric (:mod:`.judge`); every output says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from tiergate.evaluation.judge import Judge
from tiergate.tasks import moderate
from tiergate.v1 import task_service_pb2 as pb

JsonObject = dict[str, Any]


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


ScoreFn = Callable[[Any, JsonObject, Expected], Coroutine[Any, Any, Score]]
CheckFn = Callable[[Any, Expected], list[str]]


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


def _sets(got: set[str], want: set[str]) -> tuple[int, int, int]:
    return len(got & want), len(got), len(want)


# --- Classify -------------------------------------------------------------------------------


def _check_classify(request: pb.ClassifyRequest, expected: Expected) -> list[str]:
    names = {label.name for label in request.labels}
    if "label" not in expected and "labels" not in expected:
        return ["expected needs label (or labels, for a multi_label request)"]
    if "labels" in expected and not request.multi_label:
        return ["expected labels need a multi_label request"]
    wanted = [expected.fields["label"]] if "label" in expected else []
    wanted += expected.fields["labels"] if "labels" in expected else []
    if "labels" in expected and not expected.fields["labels"]:
        return ["expected labels must not be empty"]
    unknown = sorted({name for name in wanted if name not in names})
    return [f"expected label {name!r} is not one of the request's labels" for name in unknown]


async def _score_classify(
    request: pb.ClassifyRequest, response: JsonObject, expected: Expected
) -> Score:
    if "labels" in expected:
        got, want = set(response.get("labels", [])), set(expected.fields["labels"])
        correct = got == want
        if "label" in expected:
            correct = correct and response["label"] == expected.fields["label"]
        return Score(correct, *_sets(got, want))
    right = response["label"] == expected.fields["label"]
    return Score(right, int(right), 1, 1)


# --- Extract --------------------------------------------------------------------------------


def leaves(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON value with its path: ``$.items[0].sku``."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}")
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def same_value(got: Any, want: Any) -> bool:
    """Equal JSON values; numbers by value (``Struct`` holds every number as a double)."""
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want
    if isinstance(got, int | float) and isinstance(want, int | float):
        return math.isclose(float(got), float(want), rel_tol=1e-12, abs_tol=0.0)
    return bool(got == want)


def _check_extract(request: pb.ExtractRequest, expected: Expected) -> list[str]:
    if "data" not in expected:
        return ["expected needs data (an object)"]
    return []


async def _score_extract(
    request: pb.ExtractRequest, response: JsonObject, expected: Expected
) -> Score:
    got = dict(leaves(response.get("data", {})))
    want = dict(leaves(expected.fields["data"]))
    matched = sum(1 for path, value in want.items() if path in got and same_value(got[path], value))
    return Score(matched == len(want), matched, len(got), len(want))


# --- Answer ---------------------------------------------------------------------------------


def _check_answer(request: pb.AnswerRequest, expected: Expected) -> list[str]:
    if "answerable" not in expected:
        return ["expected needs answerable (true or false)"]
    ids = {document.id for document in request.documents}
    cited = {c["document_id"] for c in expected.fields["citations"]}
    if cited and not expected.fields["answerable"]:
        return ["expected citations need answerable: true"]
    return [f"expected citation of unknown document {i!r}" for i in sorted(cited - ids)]


async def _score_answer(
    request: pb.AnswerRequest, response: JsonObject, expected: Expected
) -> Score:
    agrees = bool(response.get("answerable", False)) == expected.fields["answerable"]
    if "citations" not in expected:
        return Score(agrees, int(agrees), 1, 1)
    got = {c["document_id"] for c in response.get("citations", [])}
    want = {c["document_id"] for c in expected.fields["citations"]}
    return Score(agrees and got == want, *_sets(got, want))


# --- Moderate -------------------------------------------------------------------------------


def _check_moderate(request: pb.ModerateRequest, expected: Expected) -> list[str]:
    if "flagged" not in expected:
        return ["expected needs flagged (true or false)"]
    names = {category.name for category in moderate.policy(request)}
    given = [c["name"] for c in expected.fields["categories"]]
    problems = [f"expected category {n!r} is not in the policy" for n in given if n not in names]
    if len(set(given)) != len(given):
        problems.append("expected categories must each appear once")
    return problems


async def _score_moderate(
    request: pb.ModerateRequest, response: JsonObject, expected: Expected
) -> Score:
    flagged = bool(response.get("flagged", False)) == expected.fields["flagged"]
    verdicts: Mapping[str, bool] = {
        c["name"]: bool(c.get("flagged", False)) for c in response.get("categories", [])
    }
    agreeing = sum(
        1
        for c in expected.fields["categories"]
        if verdicts.get(c["name"]) == bool(c.get("flagged", False))
    )
    total = len(expected.fields["categories"])
    return Score(flagged and agreeing == total, agreeing + flagged, total + 1, total + 1)


# --- judged tasks ---------------------------------------------------------------------------


def _check_text(field: str) -> CheckFn:
    def check(request: Any, expected: Expected) -> list[str]:
        if not str(expected.fields.get(field, "")).strip():
            return [f"expected needs a non-blank {field}"]
        return []

    return check


def _judged(rpc: str, field: str, judge: Judge | None) -> ScoreFn:
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


def _fields(*names: str) -> Callable[[Any], frozenset[str]]:
    return lambda _request: frozenset(names)


def _classify_fields(request: pb.ClassifyRequest) -> frozenset[str]:
    return frozenset({"label", "labels"} if request.multi_label else {"label"})


def scorer_for(rpc: str, judge: Judge | None = None) -> Scorer:
    """The scorer of the task ``rpc``; Summarize and Reason need ``judge``."""
    if rpc == "Classify":
        return Scorer(
            rpc, "exact_label", "label", False, pb.ClassifyResponse, _check_classify,
            _score_classify, _classify_fields,
        )  # fmt: skip
    if rpc == "Extract":
        return Scorer(
            rpc, "exact_fields", "field", False, pb.ExtractResponse, _check_extract,
            _score_extract, _fields("data"),
        )  # fmt: skip
    if rpc == "Answer":
        return Scorer(
            rpc, "answerable_and_citations", "citation", False, pb.AnswerResponse,
            _check_answer, _score_answer, _fields("answerable", "citations"),
        )  # fmt: skip
    if rpc == "Moderate":
        return Scorer(
            rpc, "flagged_and_categories", "verdict", False, pb.ModerateResponse,
            _check_moderate, _score_moderate, _fields("flagged", "categories"),
        )  # fmt: skip
    if rpc == "Summarize":
        return Scorer(
            rpc, "judged_summary", "summary", True, pb.SummarizeResponse,
            _check_text("summary"), _judged(rpc, "summary", judge), _fields("summary"),
        )  # fmt: skip
    if rpc == "Reason":
        return Scorer(
            rpc, "judged_answer", "answer", True, pb.ReasonResponse,
            _check_text("answer"), _judged(rpc, "answer", judge), _fields("answer"),
        )  # fmt: skip
    raise KeyError(f"no scorer for {rpc!r}")
