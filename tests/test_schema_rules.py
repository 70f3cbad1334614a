"""A caller schema's rules as the model reads them and as a broken one is named, and the
model's output turned back into the caller's shape; in process, over hand-written outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tiergate.schema import CompiledSchema, compile_schema

MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "integer"}}
"""An open map: on the wire, an object holding ``entries`` of ``{key, value}``."""


def compiled(properties: dict[str, Any], **extra: Any) -> CompiledSchema:
    return compile_schema(json.dumps({"type": "object", "properties": properties, **extra}))


def entries(**values: Any) -> dict[str, Any]:
    """A map as the wire schema has it."""
    return {"entries": [{"key": key, "value": value} for key, value in values.items()]}


class TestProblems:
    def test_each_missing_required_property_is_named(self) -> None:
        """Two required properties missing: each named once, not the first one twice."""
        schema = compiled({"a": {"type": "string"}, "b": {"type": "string"}}, required=["a", "b"])
        assert schema.problems({}) == ["$.a: is required", "$.b: is required"]
        assert schema.problems({"a": "x"}) == ["$.b: is required"]

    @pytest.mark.parametrize(
        ("rule", "value", "expected"),
        [
            ({"not": True}, 1, "$.p: matches what the schema forbids"),
            ({"type": "array", "contains": True}, [], "$.p: breaks the contains rule"),
            ({"const": 3}, 4, "$.p: must be the constant value"),
            ({"type": "integer", "maximum": 9}, 10, "$.p: breaks maximum (at most 9)"),
            ({"type": "string", "format": "email"}, "nope", "$.p: breaks format (in email format)"),
        ],
        ids=["not", "contains", "const", "maximum", "format"],
    )
    def test_a_broken_rule_reads_as_its_phrase(
        self, rule: dict[str, Any], value: Any, expected: str
    ) -> None:
        """A rule whose value is a schema gets a fixed phrase (never the caller's schema); a
        rule with a short value says the value."""
        assert compiled({"p": rule}).problems({"p": value}) == [expected]

    def test_paths_quote_declared_names_only(self) -> None:
        """A declared name that is no identifier is quoted as JSON; a map key the output chose
        is never quoted."""
        schema = compiled({"first name": {"type": "string"}, "totals": MAP})
        problems = schema.problems({"first name": 1, "totals": {"secret": "x"}})
        assert sorted(problems) == [
            "$.totals[*]: must be of type integer",
            '$["first name"]: must be of type string',
        ]

    def test_names_up_to_64_characters_are_quoted_at_any_depth(self) -> None:
        """Declared names, nested ones too, are quoted up to 64 characters; a longer one is
        not (it could carry the caller's text)."""
        long, longer = "k" * 64, "k" * 65
        inner = {"type": "object", "properties": {long: {"type": "string"}}}
        schema = compiled({"a": inner, longer: {"type": "string"}})
        assert sorted(schema.problems({"a": {long: 1}, longer: 1})) == [
            f"$.a.{long}: must be of type string",
            "$[*]: must be of type string",
        ]

    def test_pattern_properties_hold_the_keys_they_match(self) -> None:
        """A key matching a pattern is held to its schema (named without quoting the key);
        other keys and values that are no object are left alone."""
        schema = compiled(
            {"p": {"type": ["object", "string"], "patternProperties": {"^n_": {"type": "integer"}}}}
        )
        assert schema.problems({"p": {"n_a": "x", "other": "y", "n_b": 2}}) == [
            "$.p[*]: must be of type integer"
        ]
        assert schema.problems({"p": "not an object"}) == []


class TestDescriptions:
    def test_a_dropped_rule_quotes_its_value_as_sorted_json(self) -> None:
        """A rule the wire schema cannot hold reads in the description with its value as JSON:
        keys sorted, other alphabets as they are (the bytes are stable and readable)."""
        schema = compiled(
            {"b": {"type": "string"}, "é": {"type": "string"}},
            dependentRequired={"é": ["b"], "b": ["é"]},
        )
        assert schema.wire["description"] == (
            'Rules checked after answering: when a property is present, also these: {"b": ["é"],'
            ' "é": ["b"]}.'
        )


class TestDecode:
    def test_an_any_of_value_decodes_by_the_branch_it_matches(self) -> None:
        """A string stays a string; a map branch's entries become the caller's object."""
        schema = compiled({"v": {"anyOf": [{"type": "string"}, MAP]}})
        assert schema.decode({"v": "plain"}) == {"v": "plain"}
        assert schema.decode({"v": entries(a=1, b=2)}) == {"v": {"a": 1, "b": 2}}

    def test_maps_inside_arrays_and_maps_are_decoded(self) -> None:
        """Every level is turned back: an array of maps, and a map whose values are maps."""
        schema = compiled(
            {
                "rows": {"type": "array", "items": MAP},
                "nested": {"type": "object", "additionalProperties": MAP},
            }
        )
        output = {"rows": [entries(a=1), entries()], "nested": entries(x=entries(y=3))}
        assert schema.decode(output) == {"rows": [{"a": 1}, {}], "nested": {"x": {"y": 3}}}

    def test_a_null_the_caller_allows_is_kept(self) -> None:
        """Only the nulls lowering added mean "absent": a nullable property's null stays."""
        schema = compiled({"n": {"type": ["string", "null"]}, "m": MAP}, required=["n"])
        assert schema.decode({"n": None, "m": entries()}) == {"n": None, "m": {}}
