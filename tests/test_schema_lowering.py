"""Lowering, in process: which type a caller's schema is sent as, its literals, the unions it
spends, what it refuses (by path) and its bounds; plus its small rules: how a wire schema admits
null, which literal fits which type, and which caller rules the wire schema already carries."""

from __future__ import annotations

from typing import Any

import pytest
from lowered_schemas import (
    ANY,
    NOTE,
    JsonObject,
    closed,
    entries_of,
    lowered,
    obj,
    refusal,
    wire_of,
)

from tiergate.schema.limits import MAX_DATA_DEPTH, MAX_LOWERED_SCHEMAS
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


class TestImplicitTypes:
    @pytest.mark.parametrize(
        ("keyword", "value", "wire"),
        [
            ("required", [], closed({"entries": entries_of(ANY)}, ["entries"])),
            (
                "maxItems",
                3,
                {"type": "array", "items": ANY, "description": NOTE + "at most 3 items."},
            ),
            ("maxLength", 3, {"type": "string", "description": NOTE + "at most 3 characters."}),
            ("minimum", 0, {"type": "number", "description": NOTE + "at least 0."}),
        ],
    )
    def test_a_keyword_of_one_type_implies_that_type(
        self, keyword: str, value: Any, wire: JsonObject
    ) -> None:
        """Without ``type``, an object, array, string or number keyword makes the value that
        type on the wire."""
        assert wire_of(obj({"v": {keyword: value}}, ["v"]))["properties"]["v"] == wire

    @pytest.mark.parametrize(
        ("node", "kind"),
        [
            ({"properties": {}, "items": {}}, "object"),
            ({"items": {}, "maxLength": 1}, "array"),
            ({"maxLength": 1, "minimum": 1}, "string"),
        ],
    )
    def test_object_then_array_then_string_then_number(self, node: JsonObject, kind: str) -> None:
        """Keywords of several types: the first of object, array, string, number wins."""
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"]["type"] == kind

    def test_no_type_keyword_at_all_admits_every_primitive(self) -> None:
        """A schema with no type cue is any primitive: one type list, one union."""
        wire, _, unions, _ = lowered(obj({"v": {"description": "d"}}, ["v"]))
        assert wire["properties"]["v"] == {**ANY, "description": "d"}
        assert unions == ["/properties/v"]

    def test_a_type_list_keeps_its_string_entries_only(self) -> None:
        """Entries of a type list that are not names are skipped; a list with none left is
        a string."""
        assert wire_of({"type": ["string", 5, "integer"]}) == {"type": ["string", "integer"]}
        assert wire_of({"type": [5]}) == {"type": "string"}

    def test_true_and_non_schema_values_lower_as_the_empty_schema(self) -> None:
        """``true`` (and any value that is no object) admits every primitive."""
        wire = wire_of(obj({"a": True, "b": 5}, ["a", "b"]))
        assert wire["properties"] == {"a": ANY, "b": ANY}


class TestTypeLists:
    def test_a_primitive_type_list_stays_one_type_list(self) -> None:
        """``["string", "null"]`` is sent as it is (one union), keeping the string's format."""
        node = {"type": ["string", "null"], "format": "email", "description": "d"}
        wire, shape, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "type": ["string", "null"],
            "format": "email",
            "description": "d",
        }
        assert (shape, unions) == (None, ["/properties/v"])

    def test_a_type_list_without_string_keeps_no_string_keyword(self) -> None:
        """A format or pattern beside a list with no string is no wire keyword, only text."""
        node = {"type": ["integer", "null"], "pattern": "^a"}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {
            "type": ["integer", "null"],
            "description": NOTE + "matches the regular expression ^a.",
        }

    def test_a_type_list_with_object_becomes_an_any_of_per_type(self) -> None:
        """An object or array in a type list: one branch per type, the caller's other
        keywords applied to each."""
        node = {"type": ["object", "null"], "properties": {"a": {"type": "string"}}}
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "anyOf": [closed({"a": {"type": "string"}}, []), {"type": "null"}]
        }
        assert unions == ["/properties/v"]

    def test_a_branch_of_a_type_list_is_refused_at_its_index(self) -> None:
        """A refusal inside one branch of a type list names that branch's position."""
        node = {"type": ["null", "object"], "properties": {"a": False}}
        refused = refusal(obj({"v": node}, ["v"]))
        assert refused.pointer == "/properties/v/1/properties/a"
        assert refused.description == "a false schema admits no value"

    def test_a_type_list_with_array_becomes_an_any_of_per_type(self) -> None:
        """An array in a type list is its own branch, with its items."""
        node = {"type": ["array", "null"], "items": {"type": "string"}}
        wire, _, unions, _ = lowered(obj({"v": node}, ["v"]))
        assert wire["properties"]["v"] == {
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
        }
        assert unions == ["/properties/v"]


class TestFalseSchemas:
    def test_a_false_property_is_refused_at_its_path(self) -> None:
        """``false`` where a value is expected admits nothing: refused, by path."""
        refused = refusal(obj({"a": {"type": "string"}, "b": False}))
        assert (refused.pointer, refused.description) == (
            "/properties/b",
            "a false schema admits no value",
        )

    def test_a_false_all_of_branch_is_refused_at_its_index(self) -> None:
        """A ``false`` branch of ``allOf`` is refused at that branch."""
        refused = refusal(obj({"a": {"allOf": [{"type": "string"}, False]}}))
        assert (refused.pointer, refused.description) == (
            "/properties/a/allOf/1",
            "a false schema admits no value",
        )


class TestWorkBound:
    def test_the_bound_on_lowered_schemas_is_inclusive(self) -> None:
        """The root and 9,999 properties are 10,000 schemas: served; one more is refused at
        the property past the bound, with the bound in the message."""
        fits = obj({f"p{i}": {} for i in range(MAX_LOWERED_SCHEMAS - 1)})
        assert len(wire_of(fits)["properties"]) == MAX_LOWERED_SCHEMAS - 1
        refused = refusal(obj({f"p{i}": {} for i in range(MAX_LOWERED_SCHEMAS)}))
        assert refused.pointer == f"/properties/p{MAX_LOWERED_SCHEMAS - 1}"
        assert refused.description == ("expands to more than 10000 schemas once $refs are inlined")

    def test_each_inlined_reference_counts_anew(self) -> None:
        """A definition referenced twice is lowered (and counted) twice, so diamonds of
        references are bounded too."""
        refs = {f"p{i}": {"$ref": "#/$defs/d"} for i in range(MAX_LOWERED_SCHEMAS // 2)}
        refused = refusal(obj(refs, **{"$defs": {"d": {"type": "string"}}}))
        assert refused.description.startswith("expands to more than")

    def test_all_of_branches_count_too(self) -> None:
        """Each merged ``allOf`` branch counts as a schema lowered."""
        branches = [{"type": "string"}] * MAX_LOWERED_SCHEMAS
        refused = refusal(obj({"a": {"allOf": branches}}))
        assert refused.pointer == f"/properties/a/allOf/{MAX_LOWERED_SCHEMAS - 2}"


class TestDepth:
    @staticmethod
    def arrays(levels: int) -> JsonObject:
        node: JsonObject = {"type": "string"}
        for _ in range(levels):
            node = {"type": "array", "items": node}
        return node

    def test_arrays_count_toward_the_data_depth(self) -> None:
        """Arrays nest like objects: 20 levels served, 21 refused at the deepest, saying so."""
        assert wire_of(self.arrays(MAX_DATA_DEPTH))["type"] == "array"
        refused = refusal(self.arrays(MAX_DATA_DEPTH + 1))
        assert refused.pointer == "/items" * MAX_DATA_DEPTH
        assert refused.description == "nests objects and arrays more than 20 deep"


class TestLiterals:
    def test_enum_and_const_keep_their_primitive_values(self) -> None:
        """Primitive ``enum`` and ``const`` values are sent as they are, with annotations."""
        wire = wire_of(
            obj(
                {
                    "e": {"enum": ["a", 1, 1.5, True, None], "description": "d", "default": "a"},
                    "c": {"const": "x", "title": "t"},
                },
                ["e", "c"],
            )
        )
        assert wire["properties"] == {
            "e": {"enum": ["a", 1, 1.5, True, None], "description": "d", "default": "a"},
            "c": {"const": "x", "title": "t"},
        }

    def test_values_outside_the_declared_type_are_dropped(self) -> None:
        """With a ``type``, only values of that type can be answered: the rest are left out."""
        node = {"type": ["string", "null"], "enum": ["a", 1, None, True]}
        assert wire_of(obj({"v": node}, ["v"]))["properties"]["v"] == {"enum": ["a", None]}

    @pytest.mark.parametrize(
        ("node", "pointer", "says"),
        [
            ({"type": "string", "const": 1}, "/const", "no const value has the declared type"),
            (
                {"type": "integer", "enum": ["a", 1.5]},
                "/enum",
                "no enum value has the declared type",
            ),
            ({"enum": []}, "/enum", "enum has no values"),
            ({"enum": "a"}, "/enum", "enum has no values"),
            (
                {"enum": ["a", 1, {"k": 1}]},
                "/enum/2",
                "enum values must be strings, numbers, booleans or null",
            ),
            ({"const": [1]}, "/const", "const values must be strings, numbers, booleans or null"),
        ],
    )
    def test_literals_no_answer_can_take_are_refused(
        self, node: JsonObject, pointer: str, says: str
    ) -> None:
        """Object or array values, an empty enum, and values none of which has the declared
        type are refused at the keyword (or the value's index)."""
        refused = refusal(obj({"v": node}))
        assert (refused.pointer, refused.description) == ("/properties/v" + pointer, says)
