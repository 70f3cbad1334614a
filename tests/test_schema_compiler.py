"""The caller-schema compiler over a corpus of realistic schemas, plus its bounds."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from api_subset import subset_problems
from schema_corpus import REFUSED, SERVED, Refused, Served, served
from tiergate.schema import SchemaRefused, compile_schema
from tiergate.schema.limits import MAX_DATA_DEPTH, MAX_JSON_NESTING, MAX_POINTER_CHARS


def refusal(schema: Any) -> SchemaRefused:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    with pytest.raises(SchemaRefused) as caught:
        compile_schema(text)
    return caught.value


def nested_objects(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


class TestServedSchemas:
    @pytest.mark.parametrize("case", SERVED, ids=[c.name for c in SERVED])
    def test_wire_schema_is_inside_the_documented_subset(self, case: Served) -> None:
        """The schema sent upstream breaks none of the documented subset's rules or limits."""
        wire = compile_schema(json.dumps(case.schema)).wire
        assert subset_problems(wire) == []

    @pytest.mark.parametrize("case", SERVED, ids=[c.name for c in SERVED])
    def test_valid_output_decodes_and_validates(self, case: Served) -> None:
        """An output the wire schema accepts decodes to data valid against the caller's
        original schema, and the compiler reports no problem with it."""
        compiled = compile_schema(json.dumps(case.schema))
        wire_output = case.wire if case.wire is not None else case.valid
        jsonschema.Draft202012Validator(compiled.wire).validate(wire_output)
        data = compiled.decode(wire_output)
        assert data == case.valid
        jsonschema.validators.validator_for(case.schema)(case.schema).validate(data)
        assert compiled.problems(data) == []

    @pytest.mark.parametrize(
        ("case", "output", "expected"),
        [(c, out, exp) for c in SERVED for out, exp in c.broken],
        ids=[f"{c.name}: {exp}" for c in SERVED for _, exp in c.broken],
    )
    def test_each_broken_rule_is_reported_with_its_path(
        self, case: Served, output: dict[str, Any], expected: str
    ) -> None:
        """An output that breaks one of the caller's rules is reported by JSON path and rule."""
        problems = compile_schema(json.dumps(case.schema)).problems(output)
        assert any(p.startswith(expected) for p in problems), problems

    def test_same_schema_same_bytes(self) -> None:
        """Compiling is deterministic: equal texts give byte-identical wire schemas."""
        texts = [json.dumps(case.schema) for case in SERVED]
        first = [json.dumps(compile_schema(t).wire) for t in texts]
        from tiergate.schema import CACHE

        CACHE.clear()
        assert [json.dumps(compile_schema(t).wire) for t in texts] == first

    def test_dropped_rules_are_written_into_the_description(self) -> None:
        """A rule the wire cannot carry reaches the model as text in the description."""
        wire = compile_schema(json.dumps(served("sensor reading with bounds").schema)).wire
        humidity = wire["properties"]["humidity"]
        assert "multipleOf" not in humidity
        assert "a multiple of 0.5" in humidity["description"]
        assert "at most 100" in humidity["description"]

    def test_messages_never_quote_output_values(self) -> None:
        """Problems name the path and the rule, never the output's values or keys."""
        compiled = compile_schema(json.dumps(served("catalog with a price map").schema))
        problems = compiled.problems({"catalog": "SECRET-VALUE", "prices": {"SECRET-KEY": -4}})
        assert problems
        assert not any("SECRET" in p or "-4" in p for p in problems)


class TestRefusedSchemas:
    @pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
    def test_refused_with_the_exact_pointer(self, case: Refused) -> None:
        """A schema the API cannot take is refused with its JSON pointer and the construct."""
        refused = refusal(case.schema)
        [violation] = refused.violations
        assert violation.field == case.field
        assert case.says in violation.description

    def test_refusal_never_quotes_the_schema(self) -> None:
        """The description names the construct, not the caller's text."""
        schema = obj_with_description("SECRET-DESCRIPTION", {"$ref": "#/$defs/missing"})
        refused = refusal(schema)
        assert "SECRET" not in str(refused.violations)

    def test_nesting_past_the_text_bound_is_refused_before_parsing(self) -> None:
        """Text nesting deeper than the bound is refused from the text alone."""
        refused = refusal("[" * (MAX_JSON_NESTING + 1) + "]" * (MAX_JSON_NESTING + 1))
        assert refused.violations[0].field == "json_schema"
        assert "deep" in refused.violations[0].description

    def test_data_nesting_past_the_bound_is_refused_with_its_pointer(self) -> None:
        """An output nested deeper than protobuf's Struct can carry is refused where it starts."""
        refused = refusal(nested_objects(MAX_DATA_DEPTH + 1))
        assert refused.pointer == "/properties/a" * MAX_DATA_DEPTH
        field = refused.violations[0].field
        # The field path is cut to a bounded length so error details stay small.
        assert len(field) <= MAX_POINTER_CHARS
        assert ("json_schema" + refused.pointer).startswith(field.removesuffix("..."))
        compile_schema(json.dumps(nested_objects(MAX_DATA_DEPTH)))

    @pytest.mark.parametrize("combine", ["anyOf", "allOf"])
    def test_diamond_references_are_refused_before_they_expand(self, combine: str) -> None:
        """Each definition using the previous one twice doubles the inlined schema: the
        compiler stops at its work bound instead of expanding 2^n schemas."""
        defs: dict[str, Any] = {"d0": {"type": "string"}}
        for i in range(1, 40):
            twice = [{"$ref": f"#/$defs/d{i - 1}"}] * 2
            defs[f"d{i}"] = {"allOf": twice} if combine == "allOf" else {"anyOf": twice}
        schema = {"type": "object", "$defs": defs, "properties": {"p": {"$ref": "#/$defs/d39"}}}
        assert "expands" in refusal(schema).violations[0].description

    def test_oversized_text_is_refused(self) -> None:
        """More than 64 KiB of schema text is refused."""
        refused = refusal(json.dumps(obj_with_description("x" * 70_000, {"type": "string"})))
        assert "bytes" in refused.violations[0].description

    @pytest.mark.parametrize(
        "text", ["", "   ", "{type:", "[]", '{"type": "object", "x": NaN}', "1" * 5000]
    )
    def test_text_that_is_no_schema_object_is_refused(self, text: str) -> None:
        """Blank, malformed, non-object and non-finite inputs are refused, never raised."""
        assert refusal(text).violations[0].field.startswith("json_schema")


def obj_with_description(description: str, prop: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": {"p": prop}}
