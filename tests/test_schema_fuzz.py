"""Generated JSON Schemas for Extract: each compiles to a schema inside the documented subset
or is refused with a pointer; nothing else is raised, nothing hangs, nothing ends INTERNAL."""

from __future__ import annotations

import json
from typing import Any

import grpc
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_subset import subset_problems
from tiergate.schema import SchemaRefused, compile_schema
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

names = st.sampled_from(["a", "b", "name", "items", "entries", "x/y", "~t"])
patterns = st.sampled_from(["^[a-z]+$", "^(a+)+$", "(?=a)", "\\bword\\b", "[", "(a)\\1", "^.{2,}$"])
formats = st.sampled_from(["email", "idn-email", "date", "date-time", "uri-reference", "nope"])
refs = st.sampled_from(
    ["#", "#/$defs/a", "#/$defs/missing", "http://127.0.0.1:9/x", "#/properties/a", "#anchor"]
)
primitive = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
json_values = st.recursive(
    primitive, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(names, inner, max_size=2)
)

leaf = st.one_of(
    st.booleans(),
    st.just({}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])},
        optional={
            "minimum": st.integers(-3, 3),
            "maxLength": st.integers(0, 5),
            "pattern": patterns,
            "format": formats,
            "multipleOf": st.sampled_from([1, 0.5]),
            "description": st.text(max_size=5),
        },
    ),
    st.fixed_dictionaries({"enum": st.lists(json_values, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"const": json_values}),
    st.fixed_dictionaries({"$ref": refs}),
    st.fixed_dictionaries(
        {"type": st.lists(st.sampled_from(["string", "null", "object"]), min_size=1, unique=True)}
    ),
)


def composite(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(names, inner, max_size=4)},
            optional={
                "required": st.lists(names, max_size=3, unique=True),
                "additionalProperties": st.one_of(st.booleans(), inner),
                "patternProperties": st.dictionaries(patterns, inner, max_size=2),
                "maxProperties": st.integers(0, 3),
                "dependentRequired": st.dictionaries(
                    names, st.lists(names, max_size=2, unique=True)
                ),
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("array")},
            optional={
                "items": inner,
                "prefixItems": st.lists(inner, max_size=3),
                "minItems": st.integers(0, 3),
                "uniqueItems": st.booleans(),
            },
        ),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"not": inner, "if": inner, "then": inner}),
    )


subschemas = st.recursive(leaf, composite, max_leaves=12)
documents = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(names, subschemas, max_size=5)},
    optional={
        "$defs": st.dictionaries(st.just("a"), subschemas, max_size=1),
        "required": st.lists(names, max_size=3, unique=True),
        "additionalProperties": st.one_of(st.booleans(), subschemas),
        "$schema": st.sampled_from(
            [
                "https://json-schema.org/draft/2020-12/schema",
                "http://json-schema.org/draft-07/schema#",
                "http://json-schema.org/draft-04/schema#",
            ]
        ),
    },
)
texts = st.one_of(documents.map(json.dumps), subschemas.map(json.dumps), st.text(max_size=20))


class TestGeneratedSchemas:
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text=texts, output=json_values)
    def test_compile_or_refuse_and_the_wire_is_inside_the_subset(
        self, text: str, output: Any
    ) -> None:
        """Any text compiles to a wire schema inside the documented subset, or is refused
        with a json_schema pointer; checking any output reports problems without raising."""
        try:
            compiled = compile_schema(text)
        except SchemaRefused as refused:
            [violation] = refused.violations
            assert violation.field.startswith("json_schema")
            assert violation.description
            return
        assert subset_problems(compiled.wire) == []
        # Whatever compiles is valid JSON Schema by its dialect's standard metaschema.
        document = json.loads(text)
        jsonschema.validators.validator_for(document).check_schema(document)
        data = compiled.decode(output) if isinstance(output, dict) else output
        assert all(isinstance(p, str) for p in compiled.problems(data))


CLEAN = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE}


@pytest.mark.parametrize("seed", [0])
def test_generated_schemas_over_grpc_end_cleanly(
    stub: task_service_pb2_grpc.TaskServiceStub, seed: int
) -> None:
    """Generated schemas through the real server and emulator: OK, INVALID_ARGUMENT or an
    unusable output after the re-ask; never INTERNAL, UNKNOWN or a hang."""

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text=texts)
    def check(text: str) -> None:
        request = pb.ExtractRequest(text="Ana paid 12 EUR on 2026-11-02.", json_schema=text)
        failed: grpc.RpcError | None = None
        try:
            stub.Extract(request, timeout=20)
        except grpc.RpcError as error:
            failed = error
        if failed is not None:
            assert failed.code() in CLEAN, f"{failed.code()}: {failed.details()}"
            if failed.code() == grpc.StatusCode.UNAVAILABLE:
                assert "unusable" in (failed.details() or "")

    check()
