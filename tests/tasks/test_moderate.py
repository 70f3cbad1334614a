"""Moderate's own logic, in process, over hand-written model outputs."""

from __future__ import annotations

import pytest

from task_io import USAGE, as_text, message, schema_errors, violations
from tiergate.calls.prompt import JsonObject
from tiergate.tasks import moderate
from tiergate.upstream.output import BadOutput, parse_output
from tiergate.v1 import task_service_pb2 as pb

POLICY = [
    pb.ModerationCategory(name="violence", description="threats to hurt"),
    pb.ModerationCategory(name="spam", description='ads & "junk"'),
]
BUILT_IN = ["harassment", "hate", "violence", "self_harm", "sexual", "spam"]


def request(**fields: object) -> pb.ModerateRequest:
    base: dict[str, object] = {"text": "Buy now!", "categories": POLICY}
    base.update(fields)
    return pb.ModerateRequest(**base)  # type: ignore[arg-type]  # fields typed by the proto


def rationale(**fields: object) -> pb.ModerateRequest:
    return request(include_rationale=True, **fields)


def verdict(flagged: bool, rationale: str = "Because.") -> JsonObject:
    return {"flagged": flagged, "rationale": rationale}


def categories(n: int) -> list[pb.ModerationCategory]:
    return [pb.ModerationCategory(name=f"c{i}") for i in range(n)]


class TestValidate:
    def test_limits_are_inclusive(self) -> None:
        """No category (built-in policy), 64 categories, 128-character names are valid."""
        moderate.validate(request(categories=[]))
        moderate.validate(request(categories=categories(64)))
        long = pb.ModerationCategory(name="n" * 128, description="d" * 2000)
        moderate.validate(request(categories=[long]))

    def test_every_rule_names_its_field(self) -> None:
        """Blank text, blank or long names, long descriptions and duplicates, at once."""
        bad = [
            pb.ModerationCategory(name=""),
            pb.ModerationCategory(name="n" * 129),
            pb.ModerationCategory(name="spam", description="d" * 2001),
            pb.ModerationCategory(name="spam"),
        ]
        assert violations(moderate.validate, request(text=" ", categories=bad)) == {
            "text": "must not be empty or blank",
            "categories[0].name": "must not be empty or blank",
            "categories[1].name": "must be at most 128 characters (got 129)",
            "categories[2].description": "must be at most 2000 characters (got 2001)",
            "categories[3].name": "duplicates categories[2].name",
        }

    def test_category_count_is_bounded(self) -> None:
        """At most 64 categories."""
        assert violations(moderate.validate, request(categories=categories(65))) == {
            "categories": "allows at most 64 entries (got 65)"
        }


class TestPrompt:
    def test_policy_is_the_cached_context(self) -> None:
        """The caller's categories in order are the policy, one a line; the text comes alone;
        no schema is sent by default, the names come back bare."""
        prompt = moderate.prompt(request())
        assert prompt.instructions == moderate.INSTRUCTIONS
        assert prompt.context == ('Categories:\nviolence: threats to hurt\nspam: ads & "junk"',)
        assert prompt.request == "Buy now!"
        assert prompt.max_tokens == 32 + (4 + 4) + (4 + 2)
        assert prompt.bare_key == "flagged"
        assert prompt.output_schema == {
            "type": "object",
            "properties": {
                "flagged": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["violence", "spam"]},
                }
            },
            "required": ["flagged"],
            "additionalProperties": False,
        }
        fallback = prompt.fallback
        assert fallback is not None
        assert fallback.bare_key is None
        assert (fallback.context, fallback.output_schema) == (prompt.context, prompt.output_schema)
        assert fallback.instructions == moderate.JSON_INSTRUCTIONS

    def test_no_categories_means_the_built_in_policy(self) -> None:
        """Without categories the built-in six are the policy, in their order."""
        prompt = moderate.prompt(rationale(categories=[]))
        assert list(prompt.output_schema["properties"]["categories"]["required"]) == BUILT_IN
        assert prompt.context[0].count("\n") == 6
        assert prompt.max_tokens == 64 + 80 * 6

    def test_rationales_only_when_asked(self) -> None:
        """include_rationale asks for structured verdicts with rationales, nothing bare."""
        prompt = moderate.prompt(rationale())
        assert prompt.bare_key is None
        assert prompt.fallback is None
        assert prompt.instructions == moderate.RATIONALE_INSTRUCTIONS

    def test_output_schema_has_one_required_verdict_per_category(self) -> None:
        """categories is closed, with one required {flagged, rationale} per category name."""
        verdict_schema = {
            "type": "object",
            "properties": {
                "flagged": {"type": "boolean"},
                "rationale": {"type": "string", "pattern": r"\S"},
            },
            "required": ["flagged", "rationale"],
            "additionalProperties": False,
        }
        assert moderate.prompt(rationale()).output_schema == {
            "type": "object",
            "properties": {
                "categories": {
                    "type": "object",
                    "properties": {"violence": verdict_schema, "spam": verdict_schema},
                    "required": ["violence", "spam"],
                    "additionalProperties": False,
                }
            },
            "required": ["categories"],
            "additionalProperties": False,
        }


class TestOutputSchema:
    def test_a_missing_verdict_breaks_the_schema(self) -> None:
        """Every policy category must have its verdict."""
        schema = moderate.prompt(rationale()).output_schema
        assert schema_errors(schema, {"categories": {"spam": verdict(True)}}) == ["$.categories"]

    def test_an_extra_category_breaks_the_schema(self) -> None:
        """A verdict for a category outside the policy is not allowed."""
        schema = moderate.prompt(rationale()).output_schema
        output = {
            "categories": {
                "violence": verdict(False),
                "spam": verdict(True),
                "hate": verdict(False),
            }
        }
        assert schema_errors(schema, output) == ["$.categories"]

    def test_a_duplicate_verdict_cannot_be_written(self) -> None:
        """One property per category: a second verdict for one would be a duplicate JSON key,
        which parses to a single verdict, so a category never gets two."""
        text = (
            '{"categories": {"violence": {"flagged": true, "rationale": "a"},'
            ' "violence": {"flagged": false, "rationale": "b"},'
            ' "spam": {"flagged": false, "rationale": "c"}}}'
        )
        schema = moderate.prompt(rationale()).output_schema
        output = parse_output(message(text), schema, lambda _: [])
        reply = moderate.respond(rationale(), output, USAGE)
        assert [c.name for c in reply.categories] == ["violence", "spam"]

    def test_a_blank_rationale_breaks_the_schema(self) -> None:
        """Every verdict says why, in non-blank words."""
        schema = moderate.prompt(rationale()).output_schema
        output = {"categories": {"violence": verdict(False, " "), "spam": verdict(True)}}
        assert schema_errors(schema, output) == ["$.categories.violence.rationale"]

    def test_a_schema_valid_output_is_never_re_asked(self) -> None:
        """Moderate has no check beyond its schema."""
        output = {"categories": {"spam": verdict(True), "violence": verdict(False)}}
        schema = moderate.prompt(rationale()).output_schema
        assert moderate.TASK.check(rationale(), output) == []
        assert parse_output(message(as_text(output)), schema, lambda _: []) == output


class TestRespond:
    def test_verdicts_come_in_policy_order(self) -> None:
        """Whatever order the model wrote, verdicts follow the policy; rationales trimmed."""
        output = {
            "categories": {
                "spam": verdict(True, " Advertises. "),
                "violence": verdict(False, "No threat.\n"),
            }
        }
        reply = moderate.respond(rationale(), output, USAGE)
        assert [(c.name, c.flagged, c.rationale) for c in reply.categories] == [
            ("violence", False, "No threat."),
            ("spam", True, "Advertises."),
        ]
        assert reply.flagged
        assert reply.usage == USAGE

    def test_not_flagged_when_no_category_is(self) -> None:
        """flagged is true only when some category is flagged."""
        output = {"categories": {"violence": verdict(False), "spam": verdict(False)}}
        assert not moderate.respond(rationale(), output, USAGE).flagged

    def test_flagged_when_only_the_last_category_is(self) -> None:
        """Any one flagged category flags the text."""
        output = {"categories": {"violence": verdict(False), "spam": verdict(True)}}
        assert moderate.respond(rationale(), output, USAGE).flagged

    def test_built_in_policy_verdicts(self) -> None:
        """Without categories the response has the six built-in verdicts in order."""
        output = {"categories": {name: verdict(name == "hate") for name in reversed(BUILT_IN)}}
        reply = moderate.respond(rationale(categories=[]), output, USAGE)
        assert [c.name for c in reply.categories] == BUILT_IN
        assert [c.flagged for c in reply.categories] == [n == "hate" for n in BUILT_IN]


class TestBareNames:
    """The default: the flagged names, read as a person would, held to the policy's names."""

    def read(self, text: str) -> JsonObject:
        prompt = moderate.prompt(request())
        return parse_output(message(text), prompt.output_schema, lambda _: [], prompt.bare_key)

    def test_none_flags_nothing(self) -> None:
        """'none' in its usual dress is an empty list; the response has every verdict unflagged."""
        for text in ("none", "None.", "**None**", "No violations."):
            assert self.read(text) == {"flagged": []}, text
        reply = moderate.respond(request(), self.read("none"), USAGE)
        assert [(c.name, c.flagged, c.rationale) for c in reply.categories] == [
            ("violence", False, ""),
            ("spam", False, ""),
        ]
        assert not reply.flagged

    def test_names_in_any_dress_are_the_policys(self) -> None:
        """Case, quotes, a lead-in and a list are read; the response keeps policy order."""
        assert self.read("Spam.") == {"flagged": ["spam"]}
        assert self.read("Flagged: `spam`, VIOLENCE") == {"flagged": ["violence", "spam"]}
        assert self.read("The text is spam.") == {"flagged": ["spam"]}
        reply = moderate.respond(request(), self.read("spam and violence"), USAGE)
        assert [(c.name, c.flagged) for c in reply.categories] == [
            ("violence", True),
            ("spam", True),
        ]
        assert reply.flagged

    def test_what_names_no_category_is_asked_again(self) -> None:
        """Something outside the policy, or a refusal, breaks the schema (a re-ask)."""
        for text in ("hate", "spam, fraud", "I cannot judge whether this is spam."):
            prompt = moderate.prompt(request())
            with pytest.raises(BadOutput, match="schema"):
                parse_output(message(text), prompt.output_schema, lambda _: [], prompt.bare_key)
