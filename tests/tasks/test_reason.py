"""Reason's own logic, in process, over hand-written model outputs."""

from __future__ import annotations

import re

import pytest

from task_io import USAGE, as_text, message, schema_errors, violations
from tiergate.calls.prompt import JsonObject
from tiergate.tasks import reason
from tiergate.upstream.output import BadOutput, parse_output
from tiergate.v1 import task_service_pb2 as pb

QUESTION = "What do 500 tickets cost at 0.5 cents each?"
ASKED = pb.ReasonRequest(question=QUESTION, include_confidence=True)


def output(steps: list[str], answer: str = "$2.50", confidence: float = 0.9) -> JsonObject:
    return {"steps": steps, "answer": answer, "confidence": confidence}


class TestValidate:
    def test_question_must_not_be_blank(self) -> None:
        """A blank question is refused by name; context is optional."""
        assert violations(reason.validate, pb.ReasonRequest(question="\n", context="c")) == {
            "question": "must not be empty or blank"
        }
        reason.validate(pb.ReasonRequest(question="Why?"))


class TestPrompt:
    def test_context_is_cached_and_the_question_comes_alone(self) -> None:
        """The context is one block; the question is the per-request text."""
        prompt = reason.prompt(pb.ReasonRequest(question=QUESTION, context="Costs add up."))
        assert prompt.instructions == reason.INSTRUCTIONS
        assert prompt.context == ("<context>\nCosts add up.\n</context>",)
        assert prompt.request == QUESTION
        assert prompt.max_tokens == 2048

    def test_no_context_no_block(self) -> None:
        """Without context the prompt has only the instructions."""
        assert reason.prompt(pb.ReasonRequest(question=QUESTION)).context == ()

    def test_output_schema_without_confidence_by_default(self) -> None:
        """By default steps and answer only: a confidence costs output tokens."""
        prompt = reason.prompt(pb.ReasonRequest(question=QUESTION))
        assert prompt.output_schema["required"] == ["steps", "answer"]
        assert prompt.instructions == reason.INSTRUCTIONS
        assert prompt.bare_key == "answer"
        fallback = prompt.fallback
        assert fallback is not None
        assert fallback.bare_key is None
        assert fallback.instructions == reason.JSON_INSTRUCTIONS
        assert fallback.output_schema == prompt.output_schema

    def test_output_schema(self) -> None:
        """At least one non-blank step, a non-blank answer, a confidence when asked."""
        non_blank = {"type": "string", "pattern": r"\S"}
        assert reason.prompt(ASKED).instructions == reason.JSON_INSTRUCTIONS + reason.CONFIDENCE
        assert reason.prompt(ASKED).bare_key is None
        assert reason.prompt(ASKED).output_schema == {
            "type": "object",
            "properties": {
                "steps": {"type": "array", "items": non_blank, "minItems": 1},
                "answer": non_blank,
                "confidence": {"type": "number"},
            },
            "required": ["steps", "answer", "confidence"],
            "additionalProperties": False,
        }


class TestOutputSchema:
    SCHEMA = reason.prompt(ASKED).output_schema

    @pytest.mark.parametrize(
        ("bad", "where"),
        [
            (output([]), ["$.steps"]),
            (output(["Multiply.", " \t"]), ["$.steps[1]"]),
            (output(["Multiply."], answer=""), ["$.answer"]),
            (output(["Multiply."], answer="\n "), ["$.answer"]),
        ],
    )
    def test_blank_answers_and_steps_break_the_schema(
        self, bad: JsonObject, where: list[str]
    ) -> None:
        """No steps, a blank step or a blank answer fails the schema, not a later check."""
        assert schema_errors(self.SCHEMA, bad) == where

    def test_a_schema_valid_output_is_never_re_asked(self) -> None:
        """Reason has no check beyond its schema."""
        good = output(["Multiply 500 by 0.5 cents."], confidence=3)
        assert reason.TASK.check(ASKED, good) == []
        assert parse_output(message(as_text(good)), self.SCHEMA, lambda _: []) == good


class TestRespond:
    def test_steps_and_answer_are_trimmed_in_order(self) -> None:
        """Steps keep their order; steps and answer lose surrounding whitespace."""
        reply = reason.respond(
            ASKED,
            output([" 500 x 0.5 = 250 cents. ", "250 cents is $2.50.\n"], " $2.50 ", 0.8),
            USAGE,
        )
        assert list(reply.steps) == ["500 x 0.5 = 250 cents.", "250 cents is $2.50."]
        assert reply.answer == "$2.50"
        assert reply.confidence == pytest.approx(0.8)
        assert reply.usage == USAGE

    @pytest.mark.parametrize(("given", "clamped"), [(-1, 0.0), (1.5, 1.0), (0.25, 0.25)])
    def test_confidence_is_clamped(self, given: float, clamped: float) -> None:
        """A confidence outside [0, 1] is clamped: the schema cannot bound a number."""
        reply = reason.respond(ASKED, output(["s"], "a", given), USAGE)
        assert reply.confidence == clamped

    def test_confidence_is_zero_unless_asked(self) -> None:
        """Without include_confidence the reply's confidence is 0."""
        reply = reason.respond(pb.ReasonRequest(question=QUESTION), output(["s"]), USAGE)
        assert reply.confidence == 0.0


def read(text: str) -> JsonObject:
    """A bare answer through the model client's parsing, as a call would read it."""
    prompt = reason.prompt(pb.ReasonRequest(question=QUESTION))
    return parse_output(
        message(text), prompt.output_schema, lambda _: [], prompt.bare_key, prompt.bare_reading
    )


class TestBareReasoning:
    """The default: steps one a line, then an ``Answer:`` line, as a plain prompt gets back."""

    @pytest.mark.parametrize(
        ("text", "steps", "answer"),
        [
            ("500 x 0.5 = 250 cents.\n250 cents is $2.50.\nAnswer: $2.50", 2, "$2.50"),
            ("1. Multiply.\n2. Convert.\n\n**Answer:** $2.50.", 2, "$2.50."),
            ("- Multiply.\nStep 2: Convert.\nFinal answer: $2.50", 2, "$2.50"),
            ("Multiply.\nanswer - $2.50\n", 1, "$2.50"),
        ],
    )
    def test_answer_forms(self, text: str, steps: int, answer: str) -> None:
        """List markers and dress are dropped; the last Answer line is the answer."""
        out = read(text)
        assert (len(out["steps"]), out["answer"]) == (steps, answer)
        marked = re.compile(r"(?:[-*]|\d+[.)]|step \d+:)\s", re.I)
        assert all(s and s == s.strip() and not marked.match(s) for s in out["steps"])

    def test_the_steps_read_exactly(self) -> None:
        """Each step is its line, its list marker dropped."""
        assert read("1. 500 x 0.5 = 250 cents.\n2) 250 cents is $2.50.\nAnswer: $2.50") == {
            "steps": ["500 x 0.5 = 250 cents.", "250 cents is $2.50."],
            "answer": "$2.50",
        }

    @pytest.mark.parametrize(
        "text", ["$2.50", "Multiply.\nThe total is $2.50.", "Answer: $2.50", "Multiply.\nAnswer:"]
    )
    def test_without_steps_or_an_answer_line_it_is_asked_again(self, text: str) -> None:
        """No Answer line, no step before it, or a blank answer: the schema rejects it."""
        with pytest.raises(BadOutput, match="schema"):
            read(text)
