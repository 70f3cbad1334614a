"""Every task's output schema stays inside the structured-outputs subset the API accepts.

The checker below is written from the API reference's list of rules, independently of the
service's code, so a schema the API would refuse with a 400 fails here first.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.protobuf.message import Message

from samples import SAMPLES
from tiergate.tasks import TASKS
from tiergate.v1 import task_service_pb2 as pb

ALLOWED = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "anyOf", "allOf", "$ref", "$defs", "definitions", "description", "title", "default",
    "format", "minItems", "pattern",
}  # fmt: skip
FORMATS = {
    "date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid",
}  # fmt: skip
# Lookaround, backreferences and word boundaries are the documented "complex" patterns.
COMPLEX_PATTERN = re.compile(r"\(\?[=!<]|\\[1-9]|\\[bB]")
MAX_OPTIONAL = 24
MAX_UNIONS = 16


def subset_problems(schema: Any) -> list[str]:
    """Every way ``schema`` breaks the documented subset and limits (empty when inside)."""
    problems: list[str] = []
    counts = {"optional": 0, "unions": 0}

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            problems.append(f"{path}: a schema must be an object")
            return
        for key in node.keys() - ALLOWED:
            problems.append(f"{path}: {key} is not supported")
        types = node.get("type")
        if "anyOf" in node or isinstance(types, list):
            counts["unions"] += 1
        if types == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                problems.append(f"{path}: additionalProperties must be false")
            properties = node.get("properties", {})
            required = node.get("required", [])
            for name in required:
                if name not in properties:
                    problems.append(f"{path}: required {name!r} is not a property")
            counts["optional"] += len(set(properties) - set(required))
            for name, sub in properties.items():
                walk(sub, f"{path}/properties/{name}")
        if "items" in node:
            walk(node["items"], f"{path}/items")
        if node.get("minItems", 0) not in (0, 1):
            problems.append(f"{path}: minItems must be 0 or 1")
        for value in node.get("enum", []):
            if isinstance(value, dict | list):
                problems.append(f"{path}: enum values must be primitive")
        if "format" in node and node["format"] not in FORMATS:
            problems.append(f"{path}: format {node['format']!r} is not supported")
        if "pattern" in node and COMPLEX_PATTERN.search(node["pattern"]):
            problems.append(f"{path}: pattern {node['pattern']!r} is too complex")
        for key in ("anyOf", "allOf"):
            for i, sub in enumerate(node.get(key, [])):
                walk(sub, f"{path}/{key}/{i}")
        for key in ("$defs", "definitions"):
            for name, sub in node.get(key, {}).items():
                walk(sub, f"{path}/{key}/{name}")

    walk(schema, "#")
    if counts["optional"] > MAX_OPTIONAL:
        problems.append(f"#: {counts['optional']} optional properties (at most {MAX_OPTIONAL})")
    if counts["unions"] > MAX_UNIONS:
        problems.append(f"#: {counts['unions']} union-typed properties (at most {MAX_UNIONS})")
    return problems


def _requests() -> list[tuple[str, Message]]:
    """Every RPC's sample, plus the requests that make the largest schemas."""
    cases: list[tuple[str, Message]] = list(SAMPLES.items())
    many_labels = [pb.Label(name=f"label {i}") for i in range(256)]
    cases.append(("Classify", pb.ClassifyRequest(text="t", labels=many_labels, multi_label=True)))
    many_categories = [pb.ModerationCategory(name=f"category {i}") for i in range(64)]
    cases.append(("Moderate", pb.ModerateRequest(text="t", categories=many_categories)))
    cases.append(("Moderate", pb.ModerateRequest(text="t")))
    many_documents = [pb.Document(id=f"d{i}", text="t") for i in range(100)]
    cases.append(("Answer", pb.AnswerRequest(question="q", documents=many_documents)))
    return cases


class TestEveryOutputSchemaIsInsideTheSubset:
    @pytest.mark.parametrize(("rpc", "request_"), _requests())
    def test_schema_is_inside_the_subset(self, rpc: str, request_: Message) -> None:
        """The schema sent in output_config breaks none of the documented rules."""
        schema = TASKS[rpc].prompt(request_).output_schema
        assert subset_problems(schema) == []


class TestTheSubsetChecker:
    @pytest.mark.parametrize(
        ("schema", "problem"),
        [
            ({"type": "string", "minLength": 1}, "#: minLength is not supported"),
            ({"type": "array", "uniqueItems": True}, "#: uniqueItems is not supported"),
            ({"type": "array", "maxItems": 3}, "#: maxItems is not supported"),
            ({"type": "array", "minItems": 2}, "#: minItems must be 0 or 1"),
            ({"type": "object", "properties": {}}, "#: additionalProperties must be false"),
            ({"type": "string", "pattern": "(?=a)"}, "#: pattern '(?=a)' is too complex"),
            (
                {"type": "string", "format": "uri-reference"},
                "#: format 'uri-reference' is not supported",
            ),
            ({"enum": [[1]]}, "#: enum values must be primitive"),
            ({"oneOf": []}, "#: oneOf is not supported"),
        ],
    )
    def test_it_catches_each_rule(self, schema: dict[str, Any], problem: str) -> None:
        """The checker is not vacuous: each documented rule it knows flags a breaking schema."""
        assert problem in subset_problems(schema)

    def test_it_counts_optional_properties(self) -> None:
        """25 optional properties are one too many."""
        properties = {f"p{i}": {"type": "string"} for i in range(25)}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        assert subset_problems(schema) == ["#: 25 optional properties (at most 24)"]
