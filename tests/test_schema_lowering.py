"""Lowering's small rules, in process: how a wire schema admits null, which literal fits which
type, and which caller rules the wire schema already carries."""

from __future__ import annotations

from typing import Any

import pytest

from tiergate.schema.lowering import _fits, _on_wire, nullable


class TestNullable:
    @pytest.mark.parametrize(
        ("wire", "expected"),
        [
            ({"type": ["string", "integer"]}, {"type": ["string", "integer", "null"]}),
            ({"type": ["string", "null"]}, {"type": ["string", "null"]}),
            (
                {"anyOf": [{"type": "string"}]},
                {"anyOf": [{"type": "string"}, {"type": "null"}]},
            ),
            (
                {"anyOf": [{"type": "string"}, {"type": "null"}]},
                {"anyOf": [{"type": "string"}, {"type": "null"}]},
            ),
            ({"enum": ["a", 1]}, {"enum": ["a", 1, None]}),
            ({"enum": ["a", None]}, {"enum": ["a", None]}),
        ],
        ids=["type-list", "type-list-with-null", "any-of", "any-of-with-null", "enum", "enum-null"],
    )
    def test_null_joins_an_existing_union_without_a_new_one(
        self, wire: dict[str, Any], expected: dict[str, Any]
    ) -> None:
        """A type list, an anyOf or an enum takes null as one more member (once): no union is
        added, so the API's union budget is not spent."""
        assert nullable(wire) == (expected, False)

    def test_a_single_type_becomes_a_union_with_null(self) -> None:
        """Anything else is wrapped: anyOf of itself and null, which spends one union."""
        wire = {"type": "string", "description": "d"}
        assert nullable(wire) == ({"anyOf": [wire, {"type": "null"}]}, True)


class TestFits:
    @pytest.mark.parametrize(
        ("value", "kind", "fits"),
        [
            ("a", "string", True),
            (1, "string", False),
            (1, "integer", True),
            (True, "integer", False),
            (1.5, "integer", False),
            (1.5, "number", True),
            (1, "number", True),
            (False, "number", False),
            (False, "boolean", True),
            (0, "boolean", False),
            (None, "null", True),
            (0, "null", False),
            ("", "null", False),
            ({}, "object", False),
        ],
    )
    def test_a_literal_fits_its_json_type_only(self, value: Any, kind: str, fits: bool) -> None:
        """JSON types, not Python's: a boolean is no number, 1.5 no integer; a kind with no
        literal check (object) takes nothing."""
        assert _fits(value, kind) is fits


class TestOnWire:
    @pytest.mark.parametrize(
        ("key", "value", "wire", "carried"),
        [
            ("pattern", "^a", {"pattern": "^a"}, True),
            ("pattern", "^a", {"pattern": "^b"}, False),
            ("pattern", "^a", {}, False),
            ("format", "email", {"format": "email"}, True),
            ("format", "email", {}, False),
            ("minItems", 0, {}, True),
            ("minItems", 1, {}, True),
            ("minItems", 2, {}, False),
            ("anyOf", [], {}, True),
            ("oneOf", [], {}, True),
            ("maxLength", 3, {"maxLength": 3}, False),
        ],
    )
    def test_only_rules_the_wire_schema_holds_are_left_out_of_the_description(
        self, key: str, value: Any, wire: dict[str, Any], carried: bool
    ) -> None:
        """A pattern or format the wire keeps as is, minItems 0 or 1, and the unions lowered
        into the wire's shape need no words; every other rule is written out."""
        assert _on_wire(key, value, wire) is carried
