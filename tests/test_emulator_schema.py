"""The strict emulator refuses schemas outside the structured-outputs subset, as the API does.

Each case is sent through the real SDK as ``output_config.format.schema``; the 400 must name
the rule and the JSON pointer of the offending node. Accepted schemas are the documented subset.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from emulator_calls import ask, obj, structured

from tiergate.emulator.schema_subset import complex_pattern


def output(schema: dict[str, Any]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": schema}}


def refused(client: anthropic.Anthropic, schema: dict[str, Any]) -> str:
    """The 400 message for ``schema``."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(client, output_config=output(schema))
    assert caught.value.type == "invalid_request_error"
    message = caught.value.api_message
    assert isinstance(message, str)
    return message


def prop(schema: dict[str, Any]) -> dict[str, Any]:
    """A closed object whose one property ``field`` has ``schema``."""
    return obj({"field": schema})


UNSUPPORTED_KEYWORDS = [
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "oneOf"),
    ({"type": "string", "not": {"const": "x"}}, "not"),
    ({"type": "string", "if": {"const": "a"}, "then": {"minLength": 1}}, "if"),
    ({"type": "array", "prefixItems": [{"type": "string"}]}, "prefixItems"),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
    ({"type": "array", "items": {"type": "string"}, "maxItems": 3}, "maxItems"),
    ({"type": "integer", "minimum": 0}, "minimum"),
    ({"type": "integer", "maximum": 9}, "maximum"),
    ({"type": "number", "exclusiveMinimum": 0}, "exclusiveMinimum"),
    ({"type": "number", "exclusiveMaximum": 1}, "exclusiveMaximum"),
    ({"type": "number", "multipleOf": 0.01}, "multipleOf"),
    ({"type": "string", "minLength": 1}, "minLength"),
    ({"type": "string", "maxLength": 80}, "maxLength"),
    ({**obj({"a": {"type": "string"}}), "minProperties": 1}, "minProperties"),
    ({**obj({"a": {"type": "string"}}), "maxProperties": 1}, "maxProperties"),
    ({**obj({"a": {"type": "string"}}), "dependentRequired": {"a": []}}, "dependentRequired"),
    ({**obj({"a": {"type": "string"}}), "dependentSchemas": {"a": {}}}, "dependentSchemas"),
    ({**obj({}), "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
    ({**obj({"a": {"type": "string"}}), "dependencies": {"a": ["a"]}}, "dependencies"),
]


class TestUnsupportedKeywords:
    @pytest.mark.parametrize(("schema", "keyword"), UNSUPPORTED_KEYWORDS)
    def test_keyword_is_refused_with_its_pointer(
        self, client: anthropic.Anthropic, schema: dict[str, Any], keyword: str
    ) -> None:
        """Each unsupported keyword gives a 400 naming it and the property's pointer."""
        message = refused(client, prop(schema))
        assert f"'{keyword}' is not supported" in message
        assert "'#/properties/field'" in message

    def test_min_items_above_one_is_refused(self, client: anthropic.Anthropic) -> None:
        """minItems 0 and 1 pass; 2 is refused."""
        for accepted in (0, 1):
            schema = prop({"type": "array", "items": {"type": "string"}, "minItems": accepted})
            structured(client, schema)
        schema = prop({"type": "array", "items": {"type": "string"}, "minItems": 2})
        assert "'minItems' of 2" in refused(client, schema)

    def test_tuple_items_are_refused(self, client: anthropic.Anthropic) -> None:
        """Draft-07 tuple items (a list) are prefixItems by another name."""
        message = refused(client, prop({"type": "array", "items": [{"type": "string"}]}))
        assert "tuple 'items'" in message


class TestObjects:
    def test_additional_properties_must_be_false_on_every_object(
        self, client: anthropic.Anthropic
    ) -> None:
        """A nested object without additionalProperties: false is refused at its pointer."""
        inner = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
        message = refused(client, prop(inner))
        assert "additionalProperties" in message
        assert "'#/properties/field'" in message

    @pytest.mark.parametrize("value", [True, {"type": "integer"}])
    def test_open_maps_are_refused(self, client: anthropic.Anthropic, value: Any) -> None:
        """additionalProperties true or a schema (an open map) is refused."""
        schema = {"type": "object", "properties": {}, "additionalProperties": value}
        assert "'additionalProperties' must be false" in refused(client, prop(schema))


class TestValues:
    @pytest.mark.parametrize(
        ("schema", "fragment"),
        [
            ({"enum": [{"a": 1}, "b"]}, "'enum' values must be"),
            ({"enum": [["a"]]}, "'enum' values must be"),
            ({"enum": []}, "non-empty"),
            ({"const": {"a": 1}}, "'const' must be"),
            ({"type": "string", "format": "uri-reference"}, "format 'uri-reference'"),
            ({"type": "string", "format": "idn-email"}, "format 'idn-email'"),
            ({"type": "decimal"}, "unsupported type"),
        ],
    )
    def test_value_rules(
        self, client: anthropic.Anthropic, schema: dict[str, Any], fragment: str
    ) -> None:
        """Non-primitive enum/const values, unknown formats and types are refused."""
        assert fragment in refused(client, prop(schema))

    def test_the_ten_formats_are_accepted(self, client: anthropic.Anthropic) -> None:
        """Every documented format passes and is answered."""
        formats = ["date-time", "time", "date", "duration", "email"]
        formats += ["hostname", "uri", "ipv4", "ipv6", "uuid"]
        schema = obj({f.replace("-", "_"): {"type": "string", "format": f} for f in formats})
        assert set(structured(client, schema)) == {f.replace("-", "_") for f in formats}


class TestPatterns:
    @pytest.mark.parametrize(
        ("pattern", "problem"),
        [
            (r"^(?=.*\d).+$", "lookaround"),
            (r"^(?!test).*$", "lookaround"),
            (r"(?<=\$)\d+", "lookaround"),
            (r"^(a)\1$", "backreferences"),
            (r"(?P<x>a)\k<x>", "backreferences"),
            (r"\bword\b", "word boundaries"),
        ],
    )
    def test_complex_patterns_are_refused(
        self, client: anthropic.Anthropic, pattern: str, problem: str
    ) -> None:
        """Lookaround, backreferences and word boundaries give 400 'too complex'."""
        message = refused(client, prop({"type": "string", "pattern": pattern}))
        assert f"{problem} are not supported" in message

    @pytest.mark.parametrize("pattern", [r"^\d{3}-\d{4}$", r"^[A-Z]{2}[\b]?$", r"\S", r"^\(x\)$"])
    def test_simple_patterns_pass(self, pattern: str) -> None:
        """Classes, quantifiers, escaped parentheses and a backspace inside a class are simple."""
        assert complex_pattern(pattern) is None


class TestReferences:
    def test_local_refs_into_defs_and_definitions_pass(self, client: anthropic.Anthropic) -> None:
        """$ref into $defs and draft-07 definitions, shared twice, is accepted."""
        address = obj({"city": {"type": "string"}})
        schema = obj(
            {"home": {"$ref": "#/$defs/address"}, "work": {"$ref": "#/definitions/address"}},
            **{"$defs": {"address": address}, "definitions": {"address": address}},
        )
        assert set(structured(client, schema)) == {"home", "work"}

    @pytest.mark.parametrize(
        ("schema", "fragment"),
        [
            (
                obj(
                    {"tree": {"$ref": "#/$defs/node"}},
                    **{
                        "$defs": {
                            "node": obj(
                                {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}
                            )
                        }
                    },
                ),
                "recursive schemas are not supported",
            ),
            (obj({"self": {"$ref": "#"}}), "recursive schemas are not supported"),
            (
                obj(
                    {"a": {"$ref": "#/$defs/a"}},
                    **{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}},
                ),
                "recursive schemas are not supported",
            ),
            (obj({"a": {"$ref": "https://example.com/a.json"}}), "remote references"),
            (obj({"a": {"$ref": "#/$defs/missing"}}), "unresolvable reference"),
            (
                obj(
                    {"a": {"allOf": [{"$ref": "#/$defs/b"}]}},
                    **{"$defs": {"b": obj({"x": {"type": "string"}})}},
                ),
                "'allOf' cannot be combined with '$ref'",
            ),
        ],
        ids=[
            "self-recursive-def",
            "root-recursion",
            "mutual-recursion",
            "remote",
            "missing",
            "allof-ref",
        ],
    )
    def test_reference_rules(
        self, client: anthropic.Anthropic, schema: dict[str, Any], fragment: str
    ) -> None:
        """Recursion (any cycle), remote or unresolvable refs and allOf with $ref are refused."""
        assert fragment in refused(client, schema)

    def test_unused_recursive_definition_is_refused(self, client: anthropic.Anthropic) -> None:
        """A cycle among definitions is refused even when no property refers to it."""
        defs = {"n": obj({"next": {"$ref": "#/$defs/n"}})}
        schema = obj({"a": {"type": "string"}}, **{"$defs": defs})
        assert "recursive" in refused(client, schema)


def optional_object(count: int, prefix: str = "p") -> dict[str, Any]:
    """A closed object with ``count`` optional string properties."""
    properties = {f"{prefix}{i}": {"type": "string"} for i in range(count)}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def union_object(count: int) -> dict[str, Any]:
    """A closed object with ``count`` required union-typed properties (half anyOf, half lists)."""
    properties: dict[str, Any] = {}
    for i in range(count):
        union = (
            {"type": ["string", "null"]}
            if i % 2
            else {"anyOf": [{"type": "string"}, {"type": "integer"}]}
        )
        properties[f"u{i}"] = union
    return obj(properties)


class TestComplexityLimits:
    def test_24_optional_properties_pass_25_do_not(self, client: anthropic.Anthropic) -> None:
        """At most 24 optional properties; the 25th gives 'Schema is too complex'."""
        assert structured(client, optional_object(24), max_tokens=4000) is not None
        message = refused(client, optional_object(25))
        assert "Schema is too complex for compilation" in message
        assert "25 optional properties" in message

    def test_16_union_properties_pass_17_do_not(self, client: anthropic.Anthropic) -> None:
        """At most 16 properties with anyOf or a type list."""
        assert structured(client, union_object(16), max_tokens=4000) is not None
        message = refused(client, union_object(17))
        assert "Schema is too complex for compilation" in message
        assert "17 properties with union types" in message

    def test_limits_count_across_the_request(self, client: anthropic.Anthropic) -> None:
        """A strict tool's schema and the output schema share one budget of 24."""
        tool = {
            "name": "lookup",
            "description": "Look an order up.",
            "strict": True,
            "input_schema": optional_object(13, "t"),
        }
        with pytest.raises(anthropic.BadRequestError, match="26 optional properties"):
            ask(client, tools=[tool], output_config=output(optional_object(13)))
        loose = {**tool, "strict": False}
        assert ask(client, tools=[loose], output_config=output(optional_object(13))).content

    def test_strict_tool_schema_follows_the_subset(self, client: anthropic.Anthropic) -> None:
        """A strict tool's input_schema is checked too and named in the message."""
        tool = {
            "name": "lookup",
            "description": "Look an order up.",
            "strict": True,
            "input_schema": prop({"oneOf": [{"type": "string"}]}),
        }
        with pytest.raises(anthropic.BadRequestError, match=r"tools\.0\.input_schema: 'oneOf'"):
            ask(client, tools=[tool])
